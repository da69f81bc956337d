package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
)

// Bodies are JSON without HTML escaping: what a client reads is what was written.
func TestRespondDoesNotEscapeHTML(t *testing.T) {
	resp := fail(400, `thingName must start with "a<b>&c"; RSA ≥ 2048`)
	want := `{"status":false,"error":"thingName must start with \"a<b>&c\"; RSA ≥ 2048"}`
	if resp.Body != want {
		t.Errorf("fail() body = %s, want %s", resp.Body, want)
	}
}

// An Ed25519 CSR gets one clear 400: the key named as people name it, no Go type, no doubled prefix.
func TestRegisterEd25519CSR(t *testing.T) {
	_, h := setup(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "d1"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	resp := call(t, h, request(t, registerBody("d1", csr)))
	want := "invalid csr: Ed25519 keys are not accepted; use EC P-256/P-384 or RSA ≥ 2048"
	if got := errorOf(t, resp); resp.StatusCode != 400 || got != want {
		t.Errorf("Handle(Ed25519 csr) = %d %q, want 400 %q", resp.StatusCode, got, want)
	}
	if strings.Contains(resp.Body, `\u`) {
		t.Errorf("Handle(Ed25519 csr) body %s has escaped characters", resp.Body)
	}
}
