package rotation_test

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestRevokedCertificateRefused follows a revocation end to end: the CA's CRL lands in the CRL bucket, CRLProcessor
// gives it to IAM Roles Anywhere, and from then on the revoked certificate gets no credentials, so an install of it
// fails and the old pair stays live.
func TestRevokedCertificateRefused(t *testing.T) {
	e := newEnv(t)
	first, _, _ := e.rotate(host, "EC_prime256v1")
	// Revoke the next certificate before it is installed; the CA's CRL reaches Roles Anywhere.
	next, nextChain, nextSerial := e.issue(e.phase1(host, "EC_prime256v1"), 7)
	p := newCRLProcessor(t, e.srv)
	p.Config.TrustAnchorARN = e.anchor
	serial, _ := new(big.Int).SetString(nextSerial, 16)
	if res, err := deliver(e.srv, p, "crl/ca.crl", e.srv.PCA.SignCRL(1, time.Now().AddDate(0, 0, 7), serial)); err != nil || res.Action != "imported" {
		t.Fatalf("CRLProcessor: %+v, %v", res, err)
	}
	res := e.phase2(host, next, nextChain, nextSerial)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "revoked") {
		t.Fatalf("install of a revoked certificate: exit %d, stderr %q; want the helper's refusal", res.ExitCode, res.Stderr)
	}
	if got := e.live(host); got != first {
		t.Errorf("live serial = %s, want the old %s", got, first)
	}
}
