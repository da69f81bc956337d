package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
)

// An Ed25519 CSR is refused in words a producer understands: no Go type name, and one "parse csr" prefix.
func TestEd25519Refused(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	want := "parse csr: Ed25519 keys are not accepted; use EC P-256/P-384 or RSA ≥ 2048"
	if err == nil || err.Error() != want {
		t.Errorf("ParseCSR(Ed25519) = %v, want %q", err, want)
	}
	if err := CheckPublicKey(struct{}{}); err == nil || strings.Contains(err.Error(), "struct") {
		t.Errorf("CheckPublicKey(unknown type) = %v, want a refusal without a Go type name", err)
	}
}
