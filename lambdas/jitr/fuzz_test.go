package main

import (
	"crypto/x509/pkix"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bytes as the certificate PEM AWS IoT returns: verify never panics, and accepts nothing
// that our CA did not sign.
func FuzzVerify(f *testing.F) {
	ca := newTestCA(f, caSubject)
	other := newTestCA(f, pkix.Name{CommonName: "Other"})
	f.Add(ca.issue(f, deviceTemplate("thing-1"), nil))
	f.Add(other.issue(f, deviceTemplate("thing-1"), nil))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	h := &Handler{Config: Config{MinRSABits: 2048}, Now: time.Now}
	f.Fuzz(func(t *testing.T, certPEM []byte) {
		thing, _, reason := h.verify(certPEM, ca.cert)
		if reason != "" {
			if thing != "" {
				t.Fatalf("verify() = %q with refusal %q", thing, reason)
			}
			return
		}
		c, err := parseCertificate(certPEM)
		if err != nil || c.CheckSignatureFrom(ca.cert) != nil || c.Subject.CommonName != thing {
			t.Fatalf("verify() accepted %q: %v", certPEM, err)
		}
	})
}
