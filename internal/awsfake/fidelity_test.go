package awsfake_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// attachedThing defines a thing with a new INACTIVE certificate attached and returns the certificate.
func attachedThing(t *testing.T, c *iot.Client, name string) *iot.CreateKeysAndCertificateOutput {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(name), Principal: cert.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestDetachPropagates(t *testing.T) {
	ctx := context.Background()
	for _, delay := range []int{0, awsfake.DefaultDetachDelay, 3} {
		t.Run(fmt.Sprintf("delay=%d", delay), func(t *testing.T) {
			srv, c := newIoT(t)
			srv.IoT.SetDetachDelay(delay)
			cert := attachedThing(t, c, "dev-1")
			if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("dev-1"), Principal: cert.CertificateArn}); err != nil {
				t.Fatal(err)
			}
			if got := srv.IoT.ThingPrincipals("dev-1"); len(got) != 0 {
				t.Errorf("ThingPrincipals() = %v, want none once detached", got)
			}
			// Each observing operation sees the principal while the detach propagates, then no more.
			for i := range delay {
				var invalid *types.InvalidRequestException
				var conflict *types.DeleteConflictException
				switch i % 3 {
				case 0:
					_, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1")})
					if !errors.As(err, &invalid) {
						t.Fatalf("DeleteThing(call %d after detach) error = %v, want InvalidRequestException", i+1, err)
					}
				case 1:
					_, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: cert.CertificateId})
					if !errors.As(err, &conflict) {
						t.Fatalf("DeleteCertificate(call %d after detach) error = %v, want DeleteConflictException", i+1, err)
					}
				case 2:
					out, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: cert.CertificateArn})
					if err != nil || !slices.Equal(out.Things, []string{"dev-1"}) {
						t.Fatalf("ListPrincipalThings(call %d after detach) = %v, %v; want [dev-1]", i+1, out, err)
					}
				}
			}
			if got := srv.IoT.DetachingPrincipals("dev-1"); len(got) != 0 {
				t.Errorf("DetachingPrincipals() = %v after %d calls, want none", got, delay)
			}
			out, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("dev-1")})
			if err != nil || len(out.Principals) != 0 {
				t.Errorf("ListThingPrincipals() = %v, %v; want none", out, err)
			}
			if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: cert.CertificateId}); err != nil {
				t.Errorf("DeleteCertificate() error = %v", err)
			}
			if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("dev-1")}); err != nil {
				t.Errorf("DeleteThing() error = %v", err)
			}
		})
	}

	t.Run("list thing principals sees it", func(t *testing.T) {
		srv, c := newIoT(t)
		srv.IoT.SetDetachDelay(2)
		cert := attachedThing(t, c, "dev-2")
		if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("dev-2"), Principal: cert.CertificateArn}); err != nil {
			t.Fatal(err)
		}
		want := [][]string{{aws.ToString(cert.CertificateArn)}, {aws.ToString(cert.CertificateArn)}, nil}
		for i, w := range want {
			out, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("dev-2")})
			if err != nil || !slices.Equal(out.Principals, w) {
				t.Errorf("ListThingPrincipals(call %d) = %v, %v; want %v", i+1, out.Principals, err, w)
			}
		}
	})

	t.Run("attach again cancels", func(t *testing.T) {
		srv, c := newIoT(t)
		cert := attachedThing(t, c, "dev-3")
		p := &iot.DetachThingPrincipalInput{ThingName: aws.String("dev-3"), Principal: cert.CertificateArn}
		if _, err := c.DetachThingPrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("dev-3"), Principal: cert.CertificateArn}); err != nil {
			t.Fatal(err)
		}
		if got, want := srv.IoT.ThingPrincipals("dev-3"), []string{aws.ToString(cert.CertificateArn)}; !slices.Equal(got, want) || len(srv.IoT.DetachingPrincipals("dev-3")) != 0 {
			t.Errorf("ThingPrincipals() = %v, detaching %v; want %v attached and nothing detaching", got, srv.IoT.DetachingPrincipals("dev-3"), want)
		}
	})
}

func TestDeprecateThingType(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	srv.IoT.PutThingType("sensor")
	deprecate := func(undo bool) {
		t.Helper()
		if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("sensor"), UndoDeprecate: undo}); err != nil {
			t.Fatalf("DeprecateThingType(undo=%v) error = %v", undo, err)
		}
	}
	check := func(want bool) {
		t.Helper()
		d, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("sensor")})
		if err != nil {
			t.Fatal(err)
		}
		m := d.ThingTypeMetadata
		if m.Deprecated != want || (m.DeprecationDate != nil) != want {
			t.Errorf("DescribeThingType() metadata deprecated = %v, date %v; want deprecated %v", m.Deprecated, m.DeprecationDate, want)
		}
		l, err := c.ListThingTypes(ctx, &iot.ListThingTypesInput{})
		if err != nil || len(l.ThingTypes) != 1 || l.ThingTypes[0].ThingTypeMetadata.Deprecated != want {
			t.Errorf("ListThingTypes() = %v, %v; want sensor with deprecated %v", l, err, want)
		}
	}
	check(false)
	deprecate(false)
	check(true)
	var invalid *types.InvalidRequestException
	_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("d1"), ThingTypeName: aws.String("sensor")})
	if !errors.As(err, &invalid) {
		t.Errorf("CreateThing(deprecated type) error = %v, want InvalidRequestException", err)
	}
	deprecate(true)
	check(false)
	if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("d1"), ThingTypeName: aws.String("sensor")}); err != nil {
		t.Errorf("CreateThing(type no longer deprecated) error = %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Errorf("DeprecateThingType(missing) error = %v, want ResourceNotFoundException", err)
	}
}

func TestSizeLimits(t *testing.T) {
	srv, cfg := envConfig(t)
	_ = srv
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(cfg)
	c := iot.NewFromConfig(cfg)

	atLimit, over := strings.Repeat("s", 65536), strings.Repeat("s", 65537)
	var invalid *smtypes.InvalidParameterException
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("big"), SecretString: aws.String(over)}); !errors.As(err, &invalid) {
		t.Errorf("CreateSecret(65537 bytes) error = %v, want InvalidParameterException", err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("big"), SecretString: aws.String(atLimit)}); err != nil {
		t.Errorf("CreateSecret(65536 bytes) error = %v", err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("big"), SecretString: aws.String(over)}); !errors.As(err, &invalid) {
		t.Errorf("PutSecretValue(65537 bytes) error = %v, want InvalidParameterException", err)
	}
	if _, err := sm.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("big"), SecretBinary: []byte(over)}); !errors.As(err, &invalid) {
		t.Errorf("UpdateSecret(65537 bytes) error = %v, want InvalidParameterException", err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("big"), SecretString: aws.String(atLimit[1:])}); err != nil {
		t.Errorf("PutSecretValue(65535 bytes) error = %v", err)
	}

	// 2,048 characters without whitespace: `{"Statement":[],"x":"…"}` is 23 characters around the padding.
	doc := func(n int) string { return `{"Statement":[], "x":"` + strings.Repeat("a", n-23) + `"}` + "\n  \t" }
	var malformed *types.MalformedPolicyException
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(doc(2049))}); !errors.As(err, &malformed) {
		t.Errorf("CreatePolicy(2049 characters) error = %v, want MalformedPolicyException", err)
	}
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(doc(2048))}); err != nil {
		t.Errorf("CreatePolicy(2048 characters and whitespace) error = %v", err)
	}
}

func TestPCARequestInProgressAndBackdate(t *testing.T) {
	srv, cfg := envConfig(t)
	c := acmpca.NewFromConfig(cfg)
	ctx := context.Background()
	issue := func() *acmpca.GetCertificateInput {
		t.Helper()
		csr, _ := newCSR(t, "host-1")
		out, err := c.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
			CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), Csr: []byte(csr),
			SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
			Validity:         &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(1)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), CertificateArn: out.CertificateArn}
	}
	for _, pending := range []int{0, awsfake.DefaultPendingGets, 3} {
		t.Run(fmt.Sprintf("pending=%d", pending), func(t *testing.T) {
			srv.PCA.SetPendingGets(pending)
			get := issue()
			for i := range pending {
				var inProgress *pcatypes.RequestInProgressException
				if _, err := c.GetCertificate(ctx, get); !errors.As(err, &inProgress) {
					t.Fatalf("GetCertificate(call %d) error = %v, want RequestInProgressException", i+1, err)
				}
			}
			start := time.Now()
			out, err := c.GetCertificate(ctx, get)
			if err != nil {
				t.Fatalf("GetCertificate(call %d) error = %v", pending+1, err)
			}
			cert := parsePEMCert(t, aws.ToString(out.Certificate))
			if back := start.Sub(cert.NotBefore); back < 59*time.Minute || back > 62*time.Minute {
				t.Errorf("NotBefore = %v, %v before now; want about an hour", cert.NotBefore, back)
			}
			if d := cert.NotAfter.Sub(start); d < 23*time.Hour || d > 25*time.Hour {
				t.Errorf("NotAfter = %v, %v after now; want one day", cert.NotAfter, d)
			}
		})
	}
}

// tbRecorder is a testing.TB that records Errorf and keeps cleanups to run later.
type tbRecorder struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *tbRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *tbRecorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *tbRecorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestUntypedErrorCodesFailTheTest(t *testing.T) {
	tests := []struct {
		name, op, code string
		wantFail       bool
	}{
		{"typed for the operation", "DetachPolicy", "InvalidRequestException", false},
		{"AWS common error", "DetachPolicy", "AccessDeniedException", false},
		{"unknown to the operation", "DetachPolicy", "ResourceNotFoundException", true},
		{"operation not in the table", "SomeFutureOperation", "AnythingException", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &tbRecorder{TB: t}
			srv := awsfake.New(rec)
			srv.Inject(awsfake.ServiceIoT, tt.op, awsfake.Fault{Status: 400, Code: tt.code})
			rec.finish()
			if got := len(rec.errs) > 0; got != tt.wantFail {
				t.Errorf("Inject(%s, %s) reported %q, want failure %v", tt.op, tt.code, rec.errs, tt.wantFail)
			}
		})
	}
}

// TestErrorCodesAreTypedBySDK answers every code of the fake's SDK table through the real client and checks that the
// SDK gives the caller its typed error, so an errors.As branch in a handler can match it.
func TestErrorCodesAreTypedBySDK(t *testing.T) {
	srv, cfg := envConfig(t)
	ctx := context.Background()
	clients := map[string]any{
		awsfake.ServiceIoT:            iot.NewFromConfig(cfg),
		awsfake.ServiceSecretsManager: secretsmanager.NewFromConfig(cfg),
		awsfake.ServiceSSM:            ssm.NewFromConfig(cfg),
		awsfake.ServicePCA:            acmpca.NewFromConfig(cfg, func(o *acmpca.Options) { o.RetryMaxAttempts = 1 }),
		awsfake.ServiceSNS:            sns.NewFromConfig(cfg),
		awsfake.ServiceSFN:            sfn.NewFromConfig(cfg),
		awsfake.ServiceEvents:         eventbridge.NewFromConfig(cfg),
	}
	// The schema-serde clients type errors per service: one operation stands for all of them.
	representative := map[string]string{
		awsfake.ServiceSecretsManager: "GetSecretValue", awsfake.ServiceSSM: "GetParameter", awsfake.ServicePCA: "GetCertificate",
		awsfake.ServiceEvents: "PutEvents",
	}
	table := awsfake.SDKErrorCodes()
	if len(table) < 25 {
		t.Fatalf("SDKErrorCodes() has %d operations, want every operation the fake serves", len(table))
	}
	for key, codes := range table {
		service, op, _ := strings.Cut(key, "/")
		if op == "*" {
			op = representative[service]
		}
		method := reflect.ValueOf(clients[service]).MethodByName(op)
		if !method.IsValid() {
			t.Errorf("%s: the %s client has no operation %s", key, service, op)
			continue
		}
		for _, code := range codes {
			srv.Inject(service, op, awsfake.Fault{Status: 400, Code: code})
			in := reflect.New(method.Type().In(1).Elem())
			fill(in.Elem(), 0)
			res := method.Call([]reflect.Value{reflect.ValueOf(ctx), in})
			err, _ := res[1].Interface().(error)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
				t.Errorf("%s %s: error = %v, want an API error with code %s", service, op, err, code)
				continue
			}
			var generic *smithy.GenericAPIError
			if errors.As(err, &generic) {
				t.Errorf("%s %s: code %s reaches the caller as %T: the SDK does not type it", service, op, code, generic)
			}
		}
		srv.ClearFaults()
	}

	// The codes AWS answers outside the model reach the caller untyped, as documented.
	untypedOp := map[string]string{awsfake.ServiceSFN: "SendTaskFailure", awsfake.ServiceEvents: "PutEvents"}
	for service, codes := range awsfake.UntypedErrorCodes() {
		op := untypedOp[service]
		method := reflect.ValueOf(clients[service]).MethodByName(op)
		for _, code := range codes {
			srv.Inject(service, op, awsfake.Fault{Status: 400, Code: code})
			in := reflect.New(method.Type().In(1).Elem())
			fill(in.Elem(), 0)
			err, _ := method.Call([]reflect.Value{reflect.ValueOf(ctx), in})[1].Interface().(error)
			var generic *smithy.GenericAPIError
			if !errors.As(err, &generic) || generic.ErrorCode() != code {
				t.Errorf("%s %s: error = %v (%T), want an untyped API error with code %s", service, op, err, err, code)
			}
		}
		srv.ClearFaults()
	}
}

// fill sets every field an SDK input may require, so the client's validation passes and the request is sent.
// EventBridge's EndpointId stays unset: it selects a global endpoint signed with SigV4a.
func fill(v reflect.Value, depth int) {
	if depth > 4 {
		return
	}
	if v.Kind() == reflect.Struct {
		defer func() {
			if f := v.FieldByName("EndpointId"); f.IsValid() && f.CanSet() {
				f.Set(reflect.Zero(f.Type()))
			}
		}()
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Pointer:
		if v.Type() == reflect.TypeOf(&time.Time{}) {
			v.Set(reflect.ValueOf(aws.Time(time.Now())))
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() && v.Type().Field(i).IsExported() {
				fill(f, depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte("x"))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	}
}

// TestProducedErrorsAreTyped drives the fake into the answers that once carried codes the SDK could not type.
func TestProducedErrorsAreTyped(t *testing.T) {
	srv, cfg := envConfig(t)
	ctx := context.Background()
	c := iot.NewFromConfig(cfg)
	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	var invalid *types.InvalidRequestException
	if _, err := c.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String("missing"), Target: cert.CertificateArn}); !errors.As(err, &invalid) {
		t.Errorf("DetachPolicy(missing policy) error = %v, want InvalidRequestException", err)
	}

	pca := acmpca.NewFromConfig(cfg)
	csr, _ := newCSR(t, "host-1")
	var args *pcatypes.InvalidArgsException
	_, err = pca.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), Csr: []byte(csr),
		SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
		Validity:         &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeYears, Value: aws.Int64(200)},
	})
	if !errors.As(err, &args) {
		t.Errorf("IssueCertificate(beyond the CA's validity) error = %v, want InvalidArgsException", err)
	}

	sm := secretsmanager.NewFromConfig(cfg)
	var param *smtypes.InvalidParameterException
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!")}); !errors.As(err, &param) {
		t.Errorf("CreateSecret(bad name) error = %v, want InvalidParameterException", err)
	}
}
