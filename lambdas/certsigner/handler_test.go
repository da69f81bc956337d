package main

import (
	"context"
	"crypto"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/pki"
)

var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// setup starts the fake and builds the handler the way main does.
func setup(t *testing.T) (*awsfake.Server, *Handler, *iot.Client) {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatalf("newHandler = %v", err)
	}
	h.Now = func() time.Time { return testNow }
	return srv, h, iot.NewFromConfig(srv.Config(context.Background()))
}

func event(t *testing.T, name string) Request {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

var iotOps = []string{"DescribeEndpoint", "DescribeCertificate", "UpdateCertificate", "RegisterCertificateWithoutCA",
	"CreateCertificateFromCsr", "DeleteCertificate"}

func totalCalls(srv *awsfake.Server) map[string]int {
	m := map[string]int{}
	for _, op := range iotOps {
		if n := srv.Calls(awsfake.ServiceIoT, op); n > 0 {
			m[op] = n
		}
	}
	return m
}

func TestSignerCreate(t *testing.T) {
	srv, h, client := setup(t)
	ctx := context.Background()
	wantNotBefore := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	csr, err := pki.ParseCSR([]byte(event(t, "signer-create.json").ResourceProperties["CSR"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fixture      string
		wantNotAfter time.Time
	}{
		// notAfter counts from the issuing time, not from the backdated notBefore.
		{"signer-create.json", testNow.AddDate(0, 0, 30)},
		{"signer-create-default-validity.json", testNow.AddDate(0, 0, 365)},
	}
	serials := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			resp, err := h.Handle(ctx, event(t, tt.fixture))
			if err != nil {
				t.Fatalf("Handle(%s) = %v", tt.fixture, err)
			}
			cert, err := pki.ParseCertificate([]byte(resp.Data["pem"]))
			if err != nil {
				t.Fatalf("Handle(%s) pem: %v", tt.fixture, err)
			}
			id := pki.CertificateID(cert.Raw)
			if resp.PhysicalResourceID != id || resp.Data["fingerprint"] != id {
				t.Errorf("Handle(%s) = id %s, fingerprint %s, want %s", tt.fixture, resp.PhysicalResourceID, resp.Data["fingerprint"], id)
			}
			if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Errorf("Handle(%s): certificate key is not the CSR's", tt.fixture)
			}
			if got, want := cert.Issuer.CommonName, srv.IoT.Endpoint(); got != want {
				t.Errorf("Handle(%s) issuer CN = %q, want %q", tt.fixture, got, want)
			}
			if got := cert.Subject.CommonName; got != "producer1/data" {
				t.Errorf("Handle(%s) subject CN = %q, want producer1/data", tt.fixture, got)
			}
			if !cert.NotBefore.Equal(wantNotBefore) || !cert.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("Handle(%s) validity = %v .. %v, want %v .. %v", tt.fixture, cert.NotBefore, cert.NotAfter, wantNotBefore, tt.wantNotAfter)
			}
			if n := cert.SerialNumber.BitLen(); n < 100 || n > 128 {
				t.Errorf("Handle(%s) serial has %d bits, want a random 128-bit value", tt.fixture, n)
			}
			serials[cert.SerialNumber.String()] = tt.fixture

			// What CloudFormation then does with the PEM: AWS::IoT::Certificate, CertificateMode SNI_ONLY.
			out, err := client.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
				CertificatePem: aws.String(resp.Data["pem"]), Status: types.CertificateStatusInactive,
			})
			if err != nil {
				t.Fatalf("RegisterCertificateWithoutCA = %v", err)
			}
			if got := aws.ToString(out.CertificateId); got != resp.PhysicalResourceID {
				t.Errorf("registered certificate id = %s, want %s", got, resp.PhysicalResourceID)
			}
		})
	}
	if len(serials) != 2 {
		t.Errorf("two issues gave serials %v, want two different ones", serials)
	}
	if got := srv.Calls(awsfake.ServiceIoT, "DescribeEndpoint"); got != 2 {
		t.Errorf("DescribeEndpoint calls = %d, want 2", got)
	}
}

func TestSignerUpdate(t *testing.T) {
	srv, h, client := setup(t)
	ctx := context.Background()
	created, err := h.Handle(ctx, event(t, "signer-create.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
		CertificatePem: aws.String(created.Data["pem"]), Status: types.CertificateStatusActive,
	}); err != nil {
		t.Fatal(err)
	}
	endpointCalls := srv.Calls(awsfake.ServiceIoT, "DescribeEndpoint")

	t.Run("unchanged keeps the certificate", func(t *testing.T) {
		req := event(t, "signer-update-unchanged.json")
		req.PhysicalResourceID = created.PhysicalResourceID
		resp, err := h.Handle(ctx, req)
		if err != nil {
			t.Fatalf("Handle(update unchanged) = %v", err)
		}
		if resp.PhysicalResourceID != created.PhysicalResourceID || resp.Data["fingerprint"] != created.PhysicalResourceID {
			t.Errorf("Handle(update unchanged) = %s, want %s", resp.PhysicalResourceID, created.PhysicalResourceID)
		}
		if resp.Data["pem"] != created.Data["pem"] {
			t.Errorf("Handle(update unchanged) pem = %q, want the registered one", resp.Data["pem"])
		}
		if got := srv.Calls(awsfake.ServiceIoT, "DescribeEndpoint"); got != endpointCalls {
			t.Errorf("DescribeEndpoint calls = %d, want %d (nothing issued)", got, endpointCalls)
		}
	})
	t.Run("unchanged keeps the issued PEM bytes", func(t *testing.T) {
		// AWS IoT may hand back the PEM with other line endings; Data.pem must not change, or CloudFormation
		// would replace the AWS::IoT::Certificate with an identical one.
		crlf := &Handler{IoT: crlfIoT{h.IoT}, Now: h.Now}
		req := event(t, "signer-update-unchanged.json")
		req.PhysicalResourceID = created.PhysicalResourceID
		resp, err := crlf.Handle(ctx, req)
		if err != nil {
			t.Fatalf("Handle(update unchanged, CRLF PEM) = %v", err)
		}
		if resp.Data["pem"] != created.Data["pem"] {
			t.Errorf("Handle(update unchanged, CRLF PEM) pem = %q, want %q", resp.Data["pem"], created.Data["pem"])
		}
	})
	t.Run("unchanged but gone issues a new one", func(t *testing.T) {
		req := event(t, "signer-update-unchanged.json")
		req.PhysicalResourceID = strings.Repeat("ab", 32)
		resp, err := h.Handle(ctx, req)
		if err != nil {
			t.Fatalf("Handle(update, certificate gone) = %v", err)
		}
		if resp.PhysicalResourceID == req.PhysicalResourceID || resp.PhysicalResourceID == created.PhysicalResourceID {
			t.Errorf("Handle(update, certificate gone) = %s, want a new id", resp.PhysicalResourceID)
		}
	})
	t.Run("validity changed issues a new one", func(t *testing.T) {
		req := event(t, "signer-update-validity.json")
		req.PhysicalResourceID = created.PhysicalResourceID
		resp, err := h.Handle(ctx, req)
		if err != nil {
			t.Fatalf("Handle(update validity) = %v", err)
		}
		if resp.PhysicalResourceID == created.PhysicalResourceID {
			t.Errorf("Handle(update validity) kept %s, want a new certificate", resp.PhysicalResourceID)
		}
		cert, _ := pki.ParseCertificate([]byte(resp.Data["pem"]))
		if got := cert.NotAfter.Sub(testNow); got != 60*24*time.Hour {
			t.Errorf("Handle(update validity) notAfter - issue time = %v, want 60 days", got)
		}
	})
	t.Run("describe failure is an error", func(t *testing.T) {
		srv.Inject(awsfake.ServiceIoT, "DescribeCertificate", awsfake.Fault{Status: 403, Code: "AccessDeniedException"})
		defer srv.ClearFaults()
		req := event(t, "signer-update-unchanged.json")
		req.PhysicalResourceID = created.PhysicalResourceID
		if _, err := h.Handle(ctx, req); err == nil || !strings.Contains(err.Error(), "describe certificate") {
			t.Errorf("Handle(update, describe denied) = %v, want a describe certificate error", err)
		}
	})
}

func TestSignerRefuses(t *testing.T) {
	tests := []struct {
		fixture, wantErr string
	}{
		{"signer-not-a-csr.json", `property CSR: parse csr: input is neither a PEM "CERTIFICATE REQUEST" block nor DER`},
		{"signer-bad-signature.json", "signature does not verify"},
		{"signer-weak-key.json", "rsa key of 1024 bits is too weak"},
		{"signer-mqtt-wildcard.json", `contains MQTT wildcard "+": the policy uses IAM wildcards, write "*" instead`},
		{"signer-topic-mismatch.json", `property AllowedTopic "producer2/data" does not match the topic "producer1/data" in the CSR common name`},
		{"signer-bad-validity.json", `property ValidityDays is "forever": want a whole number of days from 1 to 36500`},
		{"signer-missing-csr.json", "property CSR is required"},
		{"unknown-request-type.json", `unknown request type "Frobnicate"`},
		{"unknown-resource-type.json", `unknown resource type "Custom::Something"`},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			srv, h, _ := setup(t)
			resp, err := h.Handle(context.Background(), event(t, tt.fixture))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Handle(%s) = %+v, %v, want error containing %q", tt.fixture, resp, err, tt.wantErr)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("Handle(%s) error spans lines: %q", tt.fixture, err)
			}
			if calls := totalCalls(srv); len(calls) != 0 {
				t.Errorf("Handle(%s) made IoT calls %v, want none", tt.fixture, calls)
			}
			if certs := srv.IoT.Certificates(); len(certs) != 0 {
				t.Errorf("Handle(%s) left %d certificates, want none", tt.fixture, len(certs))
			}
		})
	}
}

func TestSignerEndpointError(t *testing.T) {
	srv, h, _ := setup(t)
	srv.Inject(awsfake.ServiceIoT, "DescribeEndpoint", awsfake.Fault{Status: 403, Code: "AccessDeniedException", Message: "not authorized"})
	_, err := h.Handle(context.Background(), event(t, "signer-create.json"))
	if err == nil || !strings.Contains(err.Error(), "describe iot:Data-ATS endpoint") {
		t.Fatalf("Handle(create, endpoint denied) = %v, want a describe endpoint error", err)
	}
}

func TestSignerDelete(t *testing.T) {
	srv, h, _ := setup(t)
	req := event(t, "signer-delete.json")
	resp, err := h.Handle(context.Background(), req)
	if err != nil || resp.PhysicalResourceID != req.PhysicalResourceID {
		t.Fatalf("Handle(delete) = %+v, %v, want physical id %s", resp, err, req.PhysicalResourceID)
	}
	if calls := totalCalls(srv); len(calls) != 0 {
		t.Errorf("Handle(delete) made IoT calls %v, want none", calls)
	}
}

func TestReleaser(t *testing.T) {
	ctx := context.Background()
	register := func(t *testing.T, h *Handler, client *iot.Client, status types.CertificateStatus) string {
		t.Helper()
		created, err := h.Handle(ctx, event(t, "signer-create.json"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := client.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
			CertificatePem: aws.String(created.Data["pem"]), Status: status,
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.CertificateId)
	}
	deleteEvent := func(t *testing.T, id string) Request {
		req := event(t, "releaser-delete.json")
		req.PhysicalResourceID, req.ResourceProperties["CertificateId"] = id, id
		return req
	}
	tests := []struct {
		name        string
		status      types.CertificateStatus // empty: not registered
		wantStatus  string
		wantUpdates int
	}{
		{"active is deactivated", types.CertificateStatusActive, "INACTIVE", 1},
		{"inactive is left alone", types.CertificateStatusInactive, "INACTIVE", 0},
		{"revoked is left alone", types.CertificateStatusRevoked, "REVOKED", 0},
		{"missing is not an error", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, h, client := setup(t)
			id := strings.Repeat("cd", 32)
			if tt.status != "" {
				id = register(t, h, client, tt.status)
			}
			resp, err := h.Handle(ctx, deleteEvent(t, id))
			if err != nil {
				t.Fatalf("Handle(releaser delete, %s) = %v", tt.name, err)
			}
			if resp.PhysicalResourceID != id {
				t.Errorf("Handle(releaser delete) = %s, want %s", resp.PhysicalResourceID, id)
			}
			if got := srv.Calls(awsfake.ServiceIoT, "UpdateCertificate"); got != tt.wantUpdates {
				t.Errorf("UpdateCertificate calls = %d, want %d", got, tt.wantUpdates)
			}
			if tt.status != "" {
				c, ok := srv.IoT.Certificate(id)
				if !ok || c.Status != tt.wantStatus {
					t.Errorf("certificate status = %q (found %v), want %s", c.Status, ok, tt.wantStatus)
				}
			}
		})
	}

	t.Run("create and update do nothing", func(t *testing.T) {
		srv, h, _ := setup(t)
		req := event(t, "releaser-create.json")
		resp, err := h.Handle(ctx, req)
		if err != nil || resp.PhysicalResourceID != req.ResourceProperties["CertificateId"] {
			t.Fatalf("Handle(releaser create) = %+v, %v", resp, err)
		}
		req.RequestType = "Update"
		if _, err := h.Handle(ctx, req); err != nil {
			t.Fatalf("Handle(releaser update) = %v", err)
		}
		if calls := totalCalls(srv); len(calls) != 0 {
			t.Errorf("releaser create/update made IoT calls %v", calls)
		}
	})
	t.Run("create with a bad id fails", func(t *testing.T) {
		_, h, _ := setup(t)
		req := event(t, "releaser-create.json")
		req.ResourceProperties["CertificateId"] = "not-an-id"
		if _, err := h.Handle(ctx, req); err == nil || !strings.Contains(err.Error(), "not an AWS IoT certificate id") {
			t.Errorf("Handle(releaser create, bad id) = %v, want an error", err)
		}
	})
	t.Run("update failure is an error", func(t *testing.T) {
		srv, h, client := setup(t)
		id := register(t, h, client, types.CertificateStatusActive)
		srv.Inject(awsfake.ServiceIoT, "UpdateCertificate", awsfake.Fault{Status: 403, Code: "AccessDeniedException"})
		if _, err := h.Handle(ctx, deleteEvent(t, id)); err == nil || !strings.Contains(err.Error(), "deactivate certificate") {
			t.Errorf("Handle(releaser delete, update denied) = %v, want a deactivate error", err)
		}
	})
}

// crlfIoT passes calls to the real client and rewrites described PEMs with CRLF line endings.
type crlfIoT struct{ IoTAPI }

func (c crlfIoT) DescribeCertificate(ctx context.Context, in *iot.DescribeCertificateInput, opts ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error) {
	out, err := c.IoTAPI.DescribeCertificate(ctx, in, opts...)
	if err == nil && out.CertificateDescription != nil {
		out.CertificateDescription.CertificatePem = aws.String(strings.ReplaceAll(aws.ToString(out.CertificateDescription.CertificatePem), "\n", "\r\n"))
	}
	return out, err
}
