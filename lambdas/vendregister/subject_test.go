package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/pki"
)

// csrIoT records the CSR each CreateCertificateFromCsr call sends to AWS IoT.
type csrIoT struct {
	IoTAPI
	sent []string
}

func (c *csrIoT) CreateCertificateFromCsr(ctx context.Context, in *iot.CreateCertificateFromCsrInput, optFns ...func(*iot.Options)) (*iot.CreateCertificateFromCsrOutput, error) {
	c.sent = append(c.sent, *in.CertificateSigningRequest)
	return c.IoTAPI.CreateCertificateFromCsr(ctx, in, optFns...)
}

// attackerCSR signs a CSR of any subject and SANs with a fresh key.
func attackerCSR(t testing.TB, tmpl *x509.CertificateRequest) string {
	t.Helper()
	k, err := pki.GenerateKey(pki.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestRegisterCSRSubject: in CSR mode the certificate's subject is the thing and nothing else; a CSR field holds one
// PEM block, and that block is what AWS IoT receives.
func TestRegisterCSRSubject(t *testing.T) {
	env, h := setup(t)
	rec := &csrIoT{IoTAPI: h.IoT}
	h.IoT = rec
	_, sensor9 := newCSR(t, "sensor-9")
	_, other := newCSR(t, "sensor-10")
	long := strings.Repeat("s", 65)
	refused := []struct {
		name, thing, csr, wantErr string
	}{
		{"other common name", "sensor-9", attackerCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin-console"}}),
			"invalid csr: csr subject must be exactly CN=sensor-9, got CN=admin-console"},
		{"extra subject attribute", "sensor-9", attackerCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9", Organization: []string{"Amazon"}}}),
			"csr subject must be exactly CN=sensor-9"},
		{"subject alternative name", "sensor-9", attackerCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}, DNSNames: []string{"admin.example.com"}}),
			"csr has subject alternative names"},
		{"two PEM blocks", "sensor-9", sensor9 + other, "csr holds more than one PEM block"},
		{"second block first checked", "sensor-10", sensor9 + other, "csr holds more than one PEM block"},
		{"name too long for a common name", long, attackerCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: long[:64]}}),
			"is 65 characters: a certificate's common name holds at most 64"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, h, request(t, registerBody(tt.thing, tt.csr)))
			if resp.StatusCode != 400 || !strings.Contains(errorOf(t, resp), tt.wantErr) {
				t.Errorf("Handle(%s) = %d %s, want 400 with %q", tt.name, resp.StatusCode, resp.Body, tt.wantErr)
			}
		})
	}
	if n := len(env.Srv.IoT.Certificates()); n != 0 {
		t.Errorf("certificates after refused CSRs = %d, want 0", n)
	}
	if n := env.Srv.Calls(awsfake.ServiceIoT, "CreateThing"); n != 0 {
		t.Errorf("CreateThing calls after refused CSRs = %d, want 0", n)
	}
	if len(rec.sent) != 0 {
		t.Errorf("CSRs sent to AWS IoT for refused requests = %d, want 0", len(rec.sent))
	}

	t.Run("accepted CSR is sent as the block that was checked", func(t *testing.T) {
		padded := "\r\n  " + strings.ReplaceAll(sensor9, "\n", "\r\n") + "\n\n"
		resp := call(t, h, request(t, registerBody("sensor-9", padded)))
		if resp.StatusCode != 200 {
			t.Fatalf("Handle(sensor-9) = %d %s, want 200", resp.StatusCode, resp.Body)
		}
		if len(rec.sent) != 1 {
			t.Fatalf("CSRs sent = %d, want 1", len(rec.sent))
		}
		if rec.sent[0] != sensor9 {
			t.Errorf("CSR sent to AWS IoT = %q, want the canonical single block %q", rec.sent[0], sensor9)
		}
	})

	t.Run("SANs accepted when configured", func(t *testing.T) {
		h.AllowCSRSANs = true
		defer func() { h.AllowCSRSANs = false }()
		csr := attackerCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-11"}, DNSNames: []string{"sensor-11.local"}})
		if resp := call(t, h, request(t, registerBody("sensor-11", csr))); resp.StatusCode != 200 {
			t.Errorf("Handle(SAN, allowed) = %d %s, want 200", resp.StatusCode, resp.Body)
		}
		bad := attackerCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin"}, DNSNames: []string{"sensor-12.local"}})
		if resp := call(t, h, request(t, registerBody("sensor-12", bad))); resp.StatusCode != 400 {
			t.Errorf("Handle(SAN allowed, wrong CN) = %d %s, want 400", resp.StatusCode, resp.Body)
		}
	})
}
