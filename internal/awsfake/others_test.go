package awsfake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestPCAIssueCertificate(t *testing.T) {
	srv, cfg := envConfig(t)
	c := acmpca.NewFromConfig(cfg)
	ctx := context.Background()
	csr, key := newCSR(t, "device.example")
	issue := &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(srv.PCA.CAARN()),
		Csr:                     []byte(csr),
		SigningAlgorithm:        pcatypes.SigningAlgorithmSha256withrsa,
		Validity:                &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(365)},
		IdempotencyToken:        aws.String("registration_cert"),
	}
	out, err := c.IssueCertificate(ctx, issue)
	if err != nil {
		t.Fatalf("IssueCertificate() error = %v", err)
	}
	again, err := c.IssueCertificate(ctx, issue)
	if err != nil || aws.ToString(again.CertificateArn) != aws.ToString(out.CertificateArn) || srv.PCA.Issued() != 1 {
		t.Errorf("IssueCertificate(same token) = %v, %v; Issued() = %d, want the same ARN and 1 issued", again, err, srv.PCA.Issued())
	}
	get := &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), CertificateArn: out.CertificateArn}
	if err := acmpca.NewCertificateIssuedWaiter(c).Wait(ctx, get, 5*time.Second); err != nil {
		t.Fatalf("CertificateIssuedWaiter error = %v", err)
	}
	g, err := c.GetCertificate(ctx, get)
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEMCert(t, aws.ToString(g.Certificate))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srv.PCA.CACertPEM())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("issued certificate does not verify against CACertPEM(): %v", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) || cert.Subject.CommonName != "device.example" {
		t.Errorf("issued certificate subject %q or key does not come from the CSR", cert.Subject)
	}
	if days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24; days < 364.9 || days > 365.1 {
		t.Errorf("validity = %.2f days, want 365", days)
	}
	if aws.ToString(g.CertificateChain) != strings.TrimSpace(string(srv.PCA.CACertPEM())) {
		t.Error("CertificateChain is not the CA certificate")
	}
	ca, err := c.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: aws.String(srv.PCA.CAARN())})
	if err != nil || !strings.Contains(aws.ToString(ca.Certificate), "BEGIN CERTIFICATE") {
		t.Errorf("GetCertificateAuthorityCertificate() = %v, %v", ca, err)
	}

	tests := []struct {
		name   string
		modify func(*acmpca.IssueCertificateInput)
		want   any
	}{
		{"bad csr", func(in *acmpca.IssueCertificateInput) { in.Csr = []byte("junk") }, new(*pcatypes.MalformedCSRException)},
		{"unknown ca", func(in *acmpca.IssueCertificateInput) {
			in.CertificateAuthorityArn = aws.String("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/nope")
		}, new(*pcatypes.ResourceNotFoundException)},
		{"ecdsa on rsa ca", func(in *acmpca.IssueCertificateInput) { in.SigningAlgorithm = pcatypes.SigningAlgorithmSha256withecdsa },
			new(*pcatypes.InvalidArgsException)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := *issue
			in.IdempotencyToken = nil
			tt.modify(&in)
			if _, err := c.IssueCertificate(ctx, &in); !errors.As(err, tt.want) {
				t.Errorf("IssueCertificate(%s) error = %v, want %T", tt.name, err, tt.want)
			}
		})
	}

	srv.PCA.SetKeyAlgorithm("EC_prime256v1")
	in := *issue
	in.IdempotencyToken = nil
	in.SigningAlgorithm = pcatypes.SigningAlgorithmSha256withecdsa
	if _, err := c.IssueCertificate(ctx, &in); err != nil {
		t.Errorf("IssueCertificate(ECDSA on an EC CA) error = %v", err)
	}
}

func TestSNSPublish(t *testing.T) {
	srv, cfg := envConfig(t)
	c := sns.NewFromConfig(cfg)
	ctx := context.Background()
	topic := "arn:aws:sns:us-east-1:123456789012:FailedCertRotationTopic"
	out, err := c.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(topic), Subject: aws.String("rotation failed"), Message: aws.String("host-1"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"host": {DataType: aws.String("String"), StringValue: aws.String("h1")}},
	})
	if err != nil || aws.ToString(out.MessageId) == "" {
		t.Fatalf("Publish() = %v, %v, want a message id", out, err)
	}
	msgs := srv.SNS.Messages()
	if len(msgs) != 1 || msgs[0].TopicArn != topic || msgs[0].Subject != "rotation failed" || msgs[0].Message != "host-1" || msgs[0].Attributes["host"] != "h1" {
		t.Errorf("Messages() = %+v", msgs)
	}
	var invalid *snstypes.InvalidParameterException
	if _, err := c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String("not-an-arn"), Message: aws.String("m")}); !errors.As(err, &invalid) {
		t.Errorf("Publish(bad topic) error = %v, want InvalidParameterException", err)
	}
	srv.Inject("sns", "Publish", awsfake.Fault{Status: 400, Code: "Throttling", Times: 1})
	if _, err := c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m")}); err != nil {
		t.Errorf("Publish() after one throttle error = %v, want a retried success", err)
	}
	if got := srv.Calls("sns", "Publish"); got != 4 {
		t.Errorf("Calls(sns, Publish) = %d, want 4", got)
	}
}

// callJSON sends one signed awsJson request, as the SDK clients for these services would.
func callJSON(t *testing.T, srv *awsfake.Server, version, target, signingName string, in any) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", srv.URL()+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-"+version)
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256(body)
	creds, err := srv.Config(context.Background()).Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), signingName, awsfake.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get("Content-Type"); got != "application/x-amz-json-"+version {
		t.Errorf("%s answer Content-Type = %q, want application/x-amz-json-%s", target, got, version)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s answer %q: %v", target, b, err)
	}
	return resp.StatusCode, out
}

func TestStepFunctions(t *testing.T) {
	srv := awsfake.New(t)
	sm := "arn:aws:states:us-east-1:123456789012:stateMachine:Provisioning"
	status, out := callJSON(t, srv, "1.0", "AWSStepFunctions.StartExecution", "states",
		map[string]string{"stateMachineArn": sm, "name": "run-1", "input": `{"thing":"t1"}`})
	if status != 200 || out["executionArn"] != "arn:aws:states:us-east-1:123456789012:execution:Provisioning:run-1" {
		t.Errorf("StartExecution() = %d %v", status, out)
	}
	if got := srv.SFN.Executions(); len(got) != 1 || got[0].StateMachineArn != sm || got[0].Input != `{"thing":"t1"}` || got[0].Name != "run-1" {
		t.Errorf("Executions() = %+v", got)
	}
	status, out = callJSON(t, srv, "1.0", "AWSStepFunctions.StartExecution", "states",
		map[string]string{"stateMachineArn": sm, "name": "run-1", "input": `{"thing":"t2"}`})
	if status != 400 || out["__type"] != "ExecutionAlreadyExists" {
		t.Errorf("StartExecution(same name, other input) = %d %v, want ExecutionAlreadyExists", status, out)
	}
	if status, out = callJSON(t, srv, "1.0", "AWSStepFunctions.SendTaskSuccess", "states",
		map[string]string{"taskToken": "tok", "output": `{"ok":true}`}); status != 200 {
		t.Errorf("SendTaskSuccess() = %d %v", status, out)
	}
	if status, out = callJSON(t, srv, "1.0", "AWSStepFunctions.SendTaskFailure", "states",
		map[string]string{"taskToken": "tok2", "error": "Failed", "cause": "why"}); status != 200 {
		t.Errorf("SendTaskFailure() = %d %v", status, out)
	}
	if got := srv.SFN.TaskResults(); len(got) != 2 || !got[0].Success || got[1].Error != "Failed" || got[1].Cause != "why" {
		t.Errorf("TaskResults() = %+v", got)
	}
}

func TestEventBridgePutEvents(t *testing.T) {
	srv := awsfake.New(t)
	status, out := callJSON(t, srv, "1.1", "AWSEvents.PutEvents", "events", map[string]any{"Entries": []map[string]string{
		{"Source": "iotcert.rotation", "DetailType": "CertificateRotated", "Detail": `{"host":"h1"}`},
		{"Source": "iotcert.rotation", "DetailType": "CertificateRotated", "Detail": `not json`},
	}})
	if status != 200 || out["FailedEntryCount"] != float64(1) {
		t.Errorf("PutEvents() = %d %v, want one failed entry", status, out)
	}
	got := srv.Events.Entries()
	if len(got) != 1 || got[0].Source != "iotcert.rotation" || got[0].DetailType != "CertificateRotated" || got[0].Detail != `{"host":"h1"}` || got[0].EventBusName != "default" {
		t.Errorf("Entries() = %+v", got)
	}
}
