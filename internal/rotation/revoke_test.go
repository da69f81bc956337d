package rotation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/iotcert/iotcert/internal/rotation"
)

// TestRevokedCertificateRefused follows a revocation end to end: the CA's CRL lands in the CRL bucket, CRLProcessor
// gives it to IAM Roles Anywhere, and from then on the revoked certificate gets no credentials, so an install of it
// fails and the old pair stays live.
func TestRevokedCertificateRefused(t *testing.T) {
	e := newEnv(t)
	ca, caKey := testCA(t)
	e.anchor = e.srv.RolesAnywhere.AddTrustAnchor(ca.pem)
	sign := func(csr string, serial int64) (string, string, string) {
		b, _ := pem.Decode([]byte(csr))
		req, err := x509.ParseCertificateRequest(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: req.Subject, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(7 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca.cert, req.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(ca.pem),
			strings.ToUpper(big.NewInt(serial).Text(16))
	}
	first, firstChain, firstSerial := sign(e.phase1(host, "EC_prime256v1"), 0x1001)
	if res := e.phase2(host, first, firstChain, firstSerial); res.ExitCode != 0 {
		t.Fatalf("first install: %q", res.Stderr)
	}

	// Revoke the next certificate before it is installed; the CRL reaches Roles Anywhere.
	next, nextChain, nextSerial := sign(e.phase1(host, "EC_prime256v1"), 0x1002)
	crl := revocationList(t, ca, caKey, 0x1002)
	const bucket = "crl-bucket"
	e.srv.S3.Put(bucket, "crl/ca.crl", crl)
	cfg := fastConfig(t)
	p := &rotation.CRLProcessor{Objects: s3.NewFromConfig(cfg), CRLs: rolesanywhere.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg),
		Config: rotation.Config{CRLBucket: bucket, CRLName: "IAMRA-CRL", TrustAnchorARN: e.anchor, TopicARN: topicARN}}
	if _, err := p.Handle(context.Background(), s3Event(bucket, "crl/ca.crl", len(crl))); err != nil {
		t.Fatalf("CRLProcessor: %v", err)
	}
	res := e.phase2(host, next, nextChain, nextSerial)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "revoked") {
		t.Fatalf("install of a revoked certificate: exit %d, stderr %q; want the helper's refusal", res.ExitCode, res.Stderr)
	}
	if got := e.live(host); got != firstSerial {
		t.Errorf("live serial = %s, want the old %s", got, firstSerial)
	}
}

func revocationList(t *testing.T, ca caCert, key *ecdsa.PrivateKey, serial int64) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().AddDate(0, 0, 7),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(serial), RevocationTime: time.Now()}},
	}, ca.cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
