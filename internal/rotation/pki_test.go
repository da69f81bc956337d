package rotation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type caCert struct {
	cert *x509.Certificate
	pem  []byte
}

func testCA(t testing.TB) (caCert, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotation test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return caCert{cert: c, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, key
}

// crlDER is a DER CRL (as Private CA writes it to S3) numbered n, revoking one serial.
func crlDER(t testing.TB, ca caCert, key *ecdsa.PrivateKey, n int64) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(n), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().AddDate(0, 0, 7),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(1000 + n), RevocationTime: time.Now()}},
	}, ca.cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// csrPEM makes an RSA CSR with the given CN, key size and DNS names.
func csrPEM(t testing.TB, cn string, bits int, dns []string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// s3Event is the EventBridge event S3 sends for a new object.
func s3Event(bucket, key string, size int) events.EventBridgeEvent {
	detail, _ := json.Marshal(map[string]any{
		"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key, "size": size}, "reason": "PutObject",
	})
	return events.EventBridgeEvent{Source: "aws.s3", DetailType: "Object Created", Detail: detail}
}
