package awsfake_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	ratypes "github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// echoDoc is a one-parameter document: prints its parameter, and exits with the code in it when it is a number.
func echoDoc() rotation.Document {
	return rotation.Document{
		SchemaVersion: "2.2",
		Parameters: map[string]rotation.Parameter{
			"Word": {Type: "String", AllowedPattern: `^[a-z0-9]+$`, InterpolationType: "ENV_VAR"},
		},
		MainSteps: []rotation.Step{{Action: "aws:runShellScript", Name: "echo", Inputs: rotation.StepInput{RunCommand: []string{
			"set -eu", `echo "word=$SSM_Word"`, `echo "err=$SSM_Word" >&2`, `case "$SSM_Word" in [0-9]*) exit "$SSM_Word";; esac`,
			`if [ "$SSM_Word" = long ]; then head -c 30000 /dev/zero | tr '\0' x; fi`,
		}}}},
	}
}

func TestSSMCommands(t *testing.T) {
	srv, cfg := envConfig(t)
	c := ssm.NewFromConfig(cfg)
	ctx := context.Background()
	srv.Commands.PutDocument("Echo", echoDoc())
	srv.Commands.AddHost("i-01234567", awsfake.SSMHost{WorkDir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}})
	srv.Commands.AddHost("mi-0123456789abcdef0", awsfake.SSMHost{Offline: true})
	send := func(host, word, doc string) (string, error) {
		out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(doc), InstanceIds: []string{host},
			Parameters: map[string][]string{"Word": {word}}, TimeoutSeconds: aws.Int32(60)})
		if err != nil {
			return "", err
		}
		return *out.Command.CommandId, nil
	}
	for _, tc := range []struct{ host, word, doc, code string }{
		{"i-01234567", "ok", "Missing", "InvalidDocument"},
		{"i-01234567", "$(reboot)", "Echo", "InvalidParameters"},
		{"i-76543210", "ok", "Echo", "InvalidInstanceId"},
		{"i-1;reboot", "ok", "Echo", "ValidationException"},
	} {
		if _, err := send(tc.host, tc.word, tc.doc); apiCode(err) != tc.code {
			t.Errorf("SendCommand(%s, %q, %s) error = %v, want %s", tc.host, tc.word, tc.doc, err, tc.code)
		}
	}
	if len(srv.Commands.Sent()) != 0 {
		t.Fatalf("refused commands were recorded: %+v", srv.Commands.Sent())
	}
	if _, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String("nope"), InstanceId: aws.String("i-01234567")}); apiCode(err) != "InvocationDoesNotExist" {
		t.Errorf("GetCommandInvocation(unknown) = %v, want InvocationDoesNotExist", err)
	}
	result := func(id, host string) *ssm.GetCommandInvocationOutput {
		t.Helper()
		srv.Commands.Wait()
		out, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(host)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	id, err := send("i-01234567", "hello", "Echo")
	if err != nil {
		t.Fatal(err)
	}
	if out := result(id, "i-01234567"); out.Status != ssmtypes.CommandInvocationStatusSuccess || *out.StandardOutputContent != "word=hello\n" || *out.StandardErrorContent != "err=hello\n" {
		t.Errorf("invocation = %s %q %q", out.Status, *out.StandardOutputContent, *out.StandardErrorContent)
	}
	id, _ = send("i-01234567", "3", "Echo")
	if out := result(id, "i-01234567"); out.Status != ssmtypes.CommandInvocationStatusFailed || out.ResponseCode != 3 {
		t.Errorf("failing invocation = %s code %d, want Failed 3", out.Status, out.ResponseCode)
	}
	id, _ = send("i-01234567", "long", "Echo")
	if out := result(id, "i-01234567"); len(*out.StandardOutputContent) != 24000 {
		t.Errorf("stdout length = %d, want SSM's 24000", len(*out.StandardOutputContent))
	}
	id, _ = send("mi-0123456789abcdef0", "hello", "Echo")
	if out := result(id, "mi-0123456789abcdef0"); out.Status != ssmtypes.CommandInvocationStatusInProgress {
		t.Errorf("offline host invocation = %s, want InProgress", out.Status)
	}
	srv.Commands.SetNow(func() time.Time { return time.Now().Add(2 * time.Minute) })
	if out := result(id, "mi-0123456789abcdef0"); out.Status != ssmtypes.CommandInvocationStatusTimedOut {
		t.Errorf("offline host after the timeout = %s, want TimedOut", out.Status)
	}
}

func TestRolesAnywhereCRLs(t *testing.T) {
	srv, cfg := envConfig(t)
	ra := rolesanywhere.NewFromConfig(cfg)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	ca, _ := x509.ParseCertificate(der)
	anchor := srv.RolesAnywhere.AddTrustAnchor(pemBytes("CERTIFICATE", der))
	crl, _ := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, ca, key)
	crlPEM := pemBytes("X509 CRL", crl)

	if _, err := ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{CrlData: crl, Name: aws.String("c"), TrustAnchorArn: aws.String(anchor)}); apiCode(err) != "ValidationException" {
		t.Errorf("ImportCrl(DER) = %v, want ValidationException (PEM only)", err)
	}
	if _, err := ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{CrlData: crlPEM, Name: aws.String("c"), TrustAnchorArn: aws.String(anchor + "x")}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("ImportCrl(unknown anchor) = %v, want ResourceNotFoundException", err)
	}
	if _, err := ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{CrlData: bytes.Repeat([]byte("x"), 300001), Name: aws.String("c"), TrustAnchorArn: aws.String(anchor)}); apiCode(err) != "ValidationException" {
		t.Errorf("ImportCrl(300,001 bytes) = %v, want ValidationException", err)
	}
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		out, err := ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{CrlData: crlPEM, Name: aws.String(name), TrustAnchorArn: aws.String(anchor), Enabled: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *out.Crl.CrlId)
	}
	var listed []ratypes.CrlDetail
	p := rolesanywhere.NewListCrlsPaginator(ra, &rolesanywhere.ListCrlsInput{PageSize: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		listed = append(listed, page.Crls...)
	}
	if pages != 2 || len(listed) != 3 || *listed[1].Name != "b" || !*listed[0].Enabled {
		t.Errorf("ListCrls = %d pages, %d CRLs, want 2 pages of 3 enabled CRLs", pages, len(listed))
	}
	if _, err := ra.UpdateCrl(ctx, &rolesanywhere.UpdateCrlInput{CrlId: aws.String(ids[1]), CrlData: crlPEM}); err != nil {
		t.Fatal(err)
	}
	if _, err := ra.UpdateCrl(ctx, &rolesanywhere.UpdateCrlInput{CrlId: aws.String("nope"), CrlData: crlPEM}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("UpdateCrl(unknown) = %v, want ResourceNotFoundException", err)
	}
	if got := srv.RolesAnywhere.CRLs(); got[1].Updates != 1 || got[0].Updates != 0 {
		t.Errorf("updates = %d, %d; want 0, 1", got[0].Updates, got[1].Updates)
	}
}

// CreateSession must be X.509-signed: a request signed with access keys, or not at all, is refused.
func TestRolesAnywhereCreateSessionNeedsX509(t *testing.T) {
	srv := awsfake.New(t)
	for _, auth := range []string{"", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/rolesanywhere/aws4_request, SignedHeaders=host, Signature=00",
		"AWS4-X509-RSA-SHA256 Credential=1/20260101/us-east-1/rolesanywhere/aws4_request, SignedHeaders=host, Signature=00"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/sessions?profileArn=a&roleArn=b&trustAnchorArn=c", strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("CreateSession with %q = %d %s, want 403", auth, resp.StatusCode, body)
		}
	}
	if n := len(srv.RolesAnywhere.Sessions()); n != 0 {
		t.Errorf("sessions = %d, want 0", n)
	}
}

func TestS3Objects(t *testing.T) {
	srv, cfg := envConfig(t)
	c := s3.NewFromConfig(cfg)
	ctx := context.Background()
	srv.S3.CreateBucket("b")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("m/one.json"), Body: strings.NewReader(`[1]`)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.S3.Object("b", "m/one.json"); string(got) != `[1]` {
		t.Errorf("stored object = %q", got)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("m/one.json")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	if string(b) != `[1]` {
		t.Errorf("GetObject = %q", b)
	}
	var nsk *s3types.NoSuchKey
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("none")}); !errors.As(err, &nsk) {
		t.Errorf("GetObject(missing) = %v, want NoSuchKey", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k"), Body: strings.NewReader("x")}); apiCode(err) != "NoSuchBucket" {
		t.Errorf("PutObject(missing bucket) = %v, want NoSuchBucket", err)
	}
}

func TestPCARotationRules(t *testing.T) {
	srv, cfg := envConfig(t)
	c := acmpca.NewFromConfig(cfg)
	ctx := context.Background()
	srv.PCA.SetPendingGets(0)
	csr, _ := newCSR(t, "i-01234567")
	issue := func(days int64, template string) (*acmpca.IssueCertificateOutput, error) {
		return c.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
			CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), Csr: []byte(csr), SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
			TemplateArn: aws.String(template), Validity: &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(days)},
		})
	}
	srv.PCA.SetUsageMode("SHORT_LIVED_CERTIFICATE")
	if _, err := issue(8, rotation.DefaultTemplateARN); apiCode(err) != "InvalidArgsException" {
		t.Errorf("8 days on a short-lived CA = %v, want InvalidArgsException", err)
	}
	if _, err := issue(7, "arn:aws:acm-pca:::template/NoSuchTemplate/V1"); apiCode(err) != "InvalidArgsException" {
		t.Errorf("unknown template = %v, want InvalidArgsException", err)
	}
	out, err := issue(7, rotation.DefaultTemplateARN)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), CertificateArn: out.CertificateArn})
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEMCert(t, *got.Certificate)
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("client-auth template gave EKU %v, want client authentication only", cert.ExtKeyUsage)
	}
	d, err := c.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(srv.PCA.CAARN())})
	if err != nil {
		t.Fatal(err)
	}
	if d.CertificateAuthority.UsageMode != pcatypes.CertificateAuthorityUsageModeShortLivedCertificate || d.CertificateAuthority.NotAfter.Before(time.Now().AddDate(9, 0, 0)) {
		t.Errorf("DescribeCertificateAuthority = %+v", d.CertificateAuthority)
	}
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
