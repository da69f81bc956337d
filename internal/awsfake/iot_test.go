package awsfake_test

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func newIoT(t *testing.T) (*awsfake.Server, *iot.Client) {
	t.Helper()
	srv, cfg := envConfig(t)
	return srv, iot.NewFromConfig(cfg)
}

func TestDescribeEndpoint(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	tests := []struct {
		name, typ string
		want      *regexp.Regexp
	}{
		{"ats", "iot:Data-ATS", regexp.MustCompile(`^` + regexp.QuoteMeta(srv.IoT.Endpoint()) + `$`)},
		{"legacy data", "iot:Data", regexp.MustCompile(`^[a-z0-9]{14}\.iot\.us-east-1\.amazonaws\.com$`)},
		{"credentials", "iot:CredentialProvider", regexp.MustCompile(`^[a-z0-9]{14}\.credentials\.iot\.us-east-1\.amazonaws\.com$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String(tt.typ)})
			if err != nil {
				t.Fatalf("DescribeEndpoint(%s) error = %v", tt.typ, err)
			}
			if got := aws.ToString(out.EndpointAddress); !tt.want.MatchString(got) {
				t.Errorf("DescribeEndpoint(%s) = %q, want match %s", tt.typ, got, tt.want)
			}
		})
	}
	if !strings.HasSuffix(srv.IoT.Endpoint(), "-ats.iot.us-east-1.amazonaws.com") {
		t.Errorf("Endpoint() = %q, want suffix -ats.iot.us-east-1.amazonaws.com", srv.IoT.Endpoint())
	}
	_, err := c.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Nope")})
	var invalid *types.InvalidRequestException
	if !errors.As(err, &invalid) {
		t.Errorf("DescribeEndpoint(iot:Nope) error = %v, want InvalidRequestException", err)
	}
}

func TestCreateCertificateFromCsr(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(srv.IoT.CAPEM()) {
		t.Fatal("CAPEM() holds no certificate")
	}
	for _, active := range []bool{true, false} {
		t.Run(fmt.Sprintf("setAsActive=%v", active), func(t *testing.T) {
			csr, key := newCSR(t, "device-1")
			out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{
				CertificateSigningRequest: aws.String(csr), SetAsActive: active,
			})
			if err != nil {
				t.Fatalf("CreateCertificateFromCsr() error = %v", err)
			}
			cert := parsePEMCert(t, aws.ToString(out.CertificatePem))
			sum := sha256.Sum256(cert.Raw)
			if got, want := aws.ToString(out.CertificateId), hex.EncodeToString(sum[:]); got != want {
				t.Errorf("certificateId = %s, want SHA-256 of DER %s", got, want)
			}
			if got, want := aws.ToString(out.CertificateArn), "arn:aws:iot:us-east-1:123456789012:cert/"+aws.ToString(out.CertificateId); got != want {
				t.Errorf("certificateArn = %s, want %s", got, want)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("issued certificate does not verify against CAPEM(): %v", err)
			}
			if !key.PublicKey.Equal(cert.PublicKey) {
				t.Error("issued certificate does not carry the CSR's public key")
			}
			want := "INACTIVE"
			if active {
				want = "ACTIVE"
			}
			got, ok := srv.IoT.Certificate(aws.ToString(out.CertificateId))
			if !ok || got.Status != want || got.Mode != "DEFAULT" {
				t.Errorf("Certificate() = %+v, %v, want status %s mode DEFAULT", got, ok, want)
			}
		})
	}

	t.Run("bad signature", func(t *testing.T) {
		csr, _ := newCSR(t, "device-2")
		block, _ := pem.Decode([]byte(csr))
		block.Bytes[len(block.Bytes)-3] ^= 0xff // inside the signature
		_, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{
			CertificateSigningRequest: aws.String(string(pem.EncodeToMemory(block))),
		})
		var invalid *types.InvalidRequestException
		if !errors.As(err, &invalid) {
			t.Errorf("CreateCertificateFromCsr(tampered) error = %v, want InvalidRequestException", err)
		}
	})
}

func TestCreateKeysAndCertificate(t *testing.T) {
	srv, c := newIoT(t)
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatalf("CreateKeysAndCertificate() error = %v", err)
	}
	block, _ := pem.Decode([]byte(aws.ToString(out.KeyPair.PrivateKey)))
	if block == nil || block.Type != "RSA PRIVATE KEY" {
		t.Fatalf("PrivateKey is not an RSA PRIVATE KEY PEM")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if key.N.BitLen() != 2048 {
		t.Errorf("key size = %d, want 2048", key.N.BitLen())
	}
	cert := parsePEMCert(t, aws.ToString(out.CertificatePem))
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Error("certificate public key does not match the returned private key")
	}
	if !strings.Contains(aws.ToString(out.KeyPair.PublicKey), "BEGIN PUBLIC KEY") {
		t.Errorf("PublicKey = %q, want a PUBLIC KEY PEM", aws.ToString(out.KeyPair.PublicKey))
	}
	if got, ok := srv.IoT.Certificate(aws.ToString(out.CertificateId)); !ok || got.Status != "ACTIVE" {
		t.Errorf("Certificate() = %+v, %v, want ACTIVE", got, ok)
	}
}

func TestRegisterCertificateWithoutCA(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	pemText := selfSigned(t, "topic%2Fa")
	out, err := c.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
		CertificatePem: aws.String(pemText), Status: types.CertificateStatusInactive,
	})
	if err != nil {
		t.Fatalf("RegisterCertificateWithoutCA() error = %v", err)
	}
	id := aws.ToString(out.CertificateId)
	d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeCertificate() error = %v", err)
	}
	desc := d.CertificateDescription
	if desc.CertificateMode != types.CertificateModeSniOnly || desc.Status != types.CertificateStatusInactive ||
		aws.ToString(desc.CertificatePem) != pemText || aws.ToString(desc.OwnedBy) != awsfake.AccountID ||
		desc.CreationDate == nil || desc.Validity == nil || desc.Validity.NotAfter == nil {
		t.Errorf("DescribeCertificate() = %+v, want SNI_ONLY INACTIVE with the registered PEM", desc)
	}
	if got, _ := srv.IoT.Certificate(id); got.Mode != "SNI_ONLY" {
		t.Errorf("Certificate().Mode = %q, want SNI_ONLY", got.Mode)
	}

	_, err = c.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{CertificatePem: aws.String(pemText)})
	var exists *types.ResourceAlreadyExistsException
	if !errors.As(err, &exists) || aws.ToString(exists.ResourceId) != id {
		t.Errorf("RegisterCertificateWithoutCA(duplicate) error = %v, want ResourceAlreadyExistsException for %s", err, id)
	}
	_, err = c.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{CertificatePem: aws.String("junk")})
	var invalid *types.CertificateValidationException
	if !errors.As(err, &invalid) {
		t.Errorf("RegisterCertificateWithoutCA(junk) error = %v, want CertificateValidationException", err)
	}
}

func TestCertificateLifecycle(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	csr, _ := newCSR(t, "device")
	out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	id, arn := out.CertificateId, out.CertificateArn
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("p"), Target: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("t1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("t1"), Principal: arn}); err != nil {
		t.Fatal(err)
	}

	var state *types.CertificateStateException
	_, err = c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: id})
	if !errors.As(err, &state) || !strings.Contains(aws.ToString(state.Message), "Certificate must be deactivated (not ACTIVE) before deletion") {
		t.Fatalf("DeleteCertificate(ACTIVE) error = %v, want CertificateStateException", err)
	}
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: id, NewStatus: types.CertificateStatusInactive}); err != nil {
		t.Fatalf("UpdateCertificate(INACTIVE) error = %v", err)
	}
	var conflict *types.DeleteConflictException
	if _, err = c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: id}); !errors.As(err, &conflict) {
		t.Fatalf("DeleteCertificate(thing attached) error = %v, want DeleteConflictException", err)
	}
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("t1"), Principal: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err = c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: id}); !errors.As(err, &conflict) {
		t.Fatalf("DeleteCertificate(policy attached) error = %v, want DeleteConflictException", err)
	}
	if _, err := c.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String("p"), Target: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: id}); err != nil {
		t.Fatalf("DeleteCertificate(detached, INACTIVE) error = %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err = c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: id}); !errors.As(err, &nf) {
		t.Errorf("DescribeCertificate(deleted) error = %v, want ResourceNotFoundException", err)
	}
	if _, ok := srv.IoT.Certificate(aws.ToString(id)); ok {
		t.Error("Certificate(deleted) found")
	}

	tests := []struct {
		name string
		in   iot.UpdateCertificateInput
	}{
		{"bad id", iot.UpdateCertificateInput{CertificateId: aws.String("xyz"), NewStatus: types.CertificateStatusActive}},
		{"bad status", iot.UpdateCertificateInput{CertificateId: aws.String(strings.Repeat("a", 64)), NewStatus: "PENDING_TRANSFER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var invalid *types.InvalidRequestException
			if _, err := c.UpdateCertificate(ctx, &tt.in); !errors.As(err, &invalid) {
				t.Errorf("UpdateCertificate(%s) error = %v, want InvalidRequestException", tt.name, err)
			}
		})
	}
}

func TestThings(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	attrs := map[string]string{"serial": "123"}
	var nf *types.ResourceNotFoundException
	_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("dev-1"), ThingTypeName: aws.String("sensor")})
	if !errors.As(err, &nf) {
		t.Fatalf("CreateThing(missing type) error = %v, want ResourceNotFoundException", err)
	}
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("sensor")}); err != nil {
		t.Fatal(err)
	}
	in := &iot.CreateThingInput{ThingName: aws.String("dev-1"), ThingTypeName: aws.String("sensor"),
		AttributePayload: &types.AttributePayload{Attributes: attrs}}
	first, err := c.CreateThing(ctx, in)
	if err != nil {
		t.Fatalf("CreateThing() error = %v", err)
	}
	again, err := c.CreateThing(ctx, in)
	if err != nil || aws.ToString(again.ThingId) != aws.ToString(first.ThingId) {
		t.Fatalf("CreateThing(identical) = %v, %v, want the same thing", again, err)
	}
	var exists *types.ResourceAlreadyExistsException
	_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("dev-1")})
	if !errors.As(err, &exists) {
		t.Fatalf("CreateThing(different) error = %v, want ResourceAlreadyExistsException", err)
	}
	d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("dev-1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ThingArn) != "arn:aws:iot:us-east-1:123456789012:thing/dev-1" || aws.ToString(d.ThingTypeName) != "sensor" ||
		d.Attributes["serial"] != "123" || d.Version != 1 || aws.ToString(d.DefaultClientId) != "dev-1" {
		t.Errorf("DescribeThing() = %+v", d)
	}
	if got, ok := srv.IoT.Thing("dev-1"); !ok || got.TypeName != "sensor" || got.Attributes["serial"] != "123" {
		t.Errorf("Thing(dev-1) = %+v, %v", got, ok)
	}

	for _, name := range []string{"", "has space", "a/b", strings.Repeat("x", 129)} {
		var invalid *types.InvalidRequestException
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name)}); !errors.As(err, &invalid) {
			// An empty name fails client-side validation; anything else must reach the server.
			if name != "" {
				t.Errorf("CreateThing(%q) error = %v, want InvalidRequestException", name, err)
			}
		}
	}

	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("dev-1"), Principal: cert.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	var invalid *types.InvalidRequestException
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1")}); !errors.As(err, &invalid) {
		t.Errorf("DeleteThing(principal attached) error = %v, want InvalidRequestException", err)
	}
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("dev-1"), Principal: cert.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	var conflict *types.VersionConflictException
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1"), ExpectedVersion: aws.Int64(7)}); !errors.As(err, &conflict) {
		t.Errorf("DeleteThing(wrong version) error = %v, want VersionConflictException", err)
	}
	// The detach has not propagated yet (DefaultDetachDelay): the next DeleteThing still sees the principal.
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1")}); !errors.As(err, &invalid) {
		t.Errorf("DeleteThing(detach propagating) error = %v, want InvalidRequestException", err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1")}); err != nil {
		t.Errorf("DeleteThing() error = %v", err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1")}); err != nil {
		t.Errorf("DeleteThing(gone) error = %v, want success as AWS answers", err)
	}
	if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("dev-1")}); !errors.As(err, &nf) {
		t.Errorf("DescribeThing(deleted) error = %v, want ResourceNotFoundException", err)
	}
}

func TestThingTypes(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("type-%d", i)
		want = append(want, name)
		if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String(name),
			ThingTypeProperties: &types.ThingTypeProperties{ThingTypeDescription: aws.String("d" + name)}}); err != nil {
			t.Fatal(err)
		}
	}
	var exists *types.ResourceAlreadyExistsException
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("type-0")}); !errors.As(err, &exists) {
		t.Errorf("CreateThingType(existing) error = %v, want ResourceAlreadyExistsException", err)
	}
	d, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("type-3")})
	if err != nil || aws.ToString(d.ThingTypeProperties.ThingTypeDescription) != "dtype-3" || d.ThingTypeMetadata.CreationDate == nil {
		t.Errorf("DescribeThingType(type-3) = %+v, %v", d, err)
	}

	var got []string
	pages := 0
	p := iot.NewListThingTypesPaginator(c, &iot.ListThingTypesInput{MaxResults: aws.Int32(3)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListThingTypes page %d error = %v", pages, err)
		}
		pages++
		for _, tt := range out.ThingTypes {
			got = append(got, aws.ToString(tt.ThingTypeName))
		}
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("ListThingTypes(maxResults 3) = %v in %d pages, want %v in 3", got, pages, want)
	}
	if n := srv.Calls("iot", "ListThingTypes"); n != 3 {
		t.Errorf("Calls(iot, ListThingTypes) = %d, want 3", n)
	}
	srv.IoT.PutThingType("zz-direct")
	if _, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("zz-direct")}); err != nil {
		t.Errorf("DescribeThingType(PutThingType) error = %v", err)
	}
}

func TestPolicies(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}`
	out, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("pol"), PolicyDocument: aws.String(doc)})
	if err != nil || aws.ToString(out.PolicyArn) != "arn:aws:iot:us-east-1:123456789012:policy/pol" {
		t.Fatalf("CreatePolicy() = %+v, %v", out, err)
	}
	var exists *types.ResourceAlreadyExistsException
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("pol"), PolicyDocument: aws.String(doc)}); !errors.As(err, &exists) {
		t.Errorf("CreatePolicy(existing) error = %v, want ResourceAlreadyExistsException", err)
	}
	var malformed *types.MalformedPolicyException
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("bad"), PolicyDocument: aws.String("{")}); !errors.As(err, &malformed) {
		t.Errorf("CreatePolicy(bad JSON) error = %v, want MalformedPolicyException", err)
	}
	g, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String("pol")})
	if err != nil || aws.ToString(g.PolicyDocument) != doc || aws.ToString(g.DefaultVersionId) != "1" {
		t.Errorf("GetPolicy() = %+v, %v", g, err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Errorf("GetPolicy(missing) error = %v, want ResourceNotFoundException", err)
	}

	srv.IoT.PutPolicy("second", doc)
	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pol", "second", "pol"} {
		if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(p), Target: cert.CertificateArn}); err != nil {
			t.Fatalf("AttachPolicy(%s) error = %v", p, err)
		}
	}
	l, err := c.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: cert.CertificateArn})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range l.Policies {
		names = append(names, aws.ToString(p.PolicyName))
	}
	if !slices.Equal(names, []string{"pol", "second"}) {
		t.Errorf("ListAttachedPolicies() = %v, want [pol second]", names)
	}
	if got := srv.IoT.PrincipalPolicies(aws.ToString(cert.CertificateArn)); !slices.Equal(got, names) {
		t.Errorf("PrincipalPolicies() = %v, want %v", got, names)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("nope"), Target: cert.CertificateArn}); !errors.As(err, &nf) {
		t.Errorf("AttachPolicy(missing policy) error = %v, want ResourceNotFoundException", err)
	}
	if _, err := c.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String("pol"), Target: cert.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	if got := srv.IoT.PrincipalPolicies(aws.ToString(cert.CertificateArn)); !slices.Equal(got, []string{"second"}) {
		t.Errorf("PrincipalPolicies(after detach) = %v, want [second]", got)
	}
}

func TestThingPrincipals(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b-thing", "a-thing"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(name), Principal: cert.CertificateArn}); err != nil {
			t.Fatalf("AttachThingPrincipal(%s) error = %v", name, err)
		}
	}
	lp, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("a-thing")})
	if err != nil || !slices.Equal(lp.Principals, []string{aws.ToString(cert.CertificateArn)}) {
		t.Errorf("ListThingPrincipals() = %v, %v, want [%s]", lp, err, aws.ToString(cert.CertificateArn))
	}
	pt, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: cert.CertificateArn})
	if err != nil || !slices.Equal(pt.Things, []string{"a-thing", "b-thing"}) {
		t.Errorf("ListPrincipalThings() = %v, %v, want [a-thing b-thing]", pt, err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("none"), Principal: cert.CertificateArn}); !errors.As(err, &nf) {
		t.Errorf("AttachThingPrincipal(missing thing) error = %v, want ResourceNotFoundException", err)
	}
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("a-thing"), Principal: cert.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	if got := srv.IoT.ThingPrincipals("a-thing"); len(got) != 0 {
		t.Errorf("ThingPrincipals(a-thing) = %v, want none", got)
	}
}

func TestEventConfigurations(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	_, err := c.UpdateEventConfigurations(ctx, &iot.UpdateEventConfigurationsInput{
		EventConfigurations: map[string]types.Configuration{"THING": {Enabled: true}, "CERTIFICATE": {Enabled: true}},
	})
	if err != nil {
		t.Fatalf("UpdateEventConfigurations() error = %v", err)
	}
	out, err := c.DescribeEventConfigurations(ctx, &iot.DescribeEventConfigurationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !out.EventConfigurations["THING"].Enabled || out.EventConfigurations["POLICY"].Enabled {
		t.Errorf("DescribeEventConfigurations() = %+v, want THING on, POLICY off", out.EventConfigurations)
	}
	if got := srv.IoT.EventConfigurations(); !got["CERTIFICATE"] || got["JOB"] {
		t.Errorf("EventConfigurations() = %v", got)
	}
}
