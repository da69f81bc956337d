package awsfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// authority is a certificate authority that signs certificates for public keys it is given.
type authority struct {
	key     crypto.Signer
	cert    *x509.Certificate
	certPEM []byte
}

// Keys are generated once per process: RSA generation is slow, and tests start many servers.
var (
	iotCAKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	pcaCAKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("awsfake: generate RSA key: " + err.Error())
	}
	return k
}

// newAuthority makes a self-signed CA certificate for key.
func newAuthority(subject pkix.Name, key crypto.Signer) *authority {
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic("awsfake: create CA certificate: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic("awsfake: parse CA certificate: " + err.Error())
	}
	return &authority{key: key, cert: cert, certPEM: pemEncode("CERTIFICATE", der)}
}

// issue signs a leaf certificate for pub from tmpl (subject, validity and extensions) and returns its DER.
// The serial number is random.
func (a *authority) issue(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	t := *tmpl
	t.SerialNumber = randomSerial()
	t.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, &t, a.cert, pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return der, nil
}

// iotLeaf is the template of the certificates AWS IoT issues.
func iotLeaf(subject pkix.Name) *x509.Certificate {
	return &x509.Certificate{
		Subject:     subject,
		NotBefore:   time.Now().UTC().Add(-5 * time.Minute),
		NotAfter:    iotNotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// randomSerial is a positive serial number of up to 159 bits, as RFC 5280 allows (at most 20 octets).
func randomSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 159)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		panic("awsfake: random serial: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// certificateID is how AWS IoT names a certificate: the lower-case hex SHA-256 of its DER.
func certificateID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// parseCSR reads a PEM (or DER) certificate signing request and checks its signature.
func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("PEM block is %q, want CERTIFICATE REQUEST", block.Type)
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	return csr, nil
}

// parseCertificatePEM reads the first certificate of a PEM document.
func parseCertificatePEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}
