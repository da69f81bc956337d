package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
	"unicode/utf8"
)

// DefaultValidity is the lifetime of a cross-account certificate when IssueRequest.Validity is zero: one year,
// counted from the moment of issuance. The seed issued certificates valid until 2049; a year keeps
// the partner's credential short-lived while leaving a comfortable window to rotate it by redeploying with a new CSR.
const DefaultValidity = 365 * 24 * time.Hour

// IssueRequest describes one cross-account certificate.
type IssueRequest struct {
	// CSR supplies the public key. It should come from ParseCSR, which has verified its signature.
	CSR *x509.CertificateRequest
	// Topic becomes the subject CN (decoded form, "/" not "%2F").
	Topic string
	// Endpoint is the account's iot:Data-ATS host; it becomes the issuer CN, which producer clients read.
	Endpoint string
	// Validity is the lifetime from the issuing time (notAfter = Now + Validity). Default: DefaultValidity.
	Validity time.Duration
	// Now is the issuing time. Default: time.Now().
	Now time.Time
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// IssueCrossAccount issues the certificate contract that the seed's producer clients (publish.py, publish.js)
// read: issuer CN = the IoT data endpoint, subject CN = the topic. It is an X.509 v3 end-entity certificate
// (BasicConstraints CA:false, KeyUsage digitalSignature, ExtKeyUsage clientAuth) with a random positive 128-bit
// serial, notBefore at the start of yesterday (UTC) so clock skew never makes it "not yet valid", notAfter the
// issuing time plus the validity (so a one-day certificate is usable for a day, not already expired), and signed
// ECDSA-SHA256 by a freshly generated P-256 key that is discarded on return. AWS IoT registers such a certificate
// without a CA (RegisterCertificateWithoutCA, CertificateMode SNI_ONLY); it carries no AuthorityKeyId since no
// issuer exists. It returns the PEM certificate and its AWS IoT certificate id.
func IssueCrossAccount(req IssueRequest) (certPEM []byte, id string, err error) {
	if req.CSR == nil {
		return nil, "", errors.New("issue certificate: no csr")
	}
	if err := CheckPublicKey(req.CSR.PublicKey); err != nil {
		return nil, "", fmt.Errorf("issue certificate: %w", err)
	}
	if err := ValidateTopic(req.Topic); err != nil {
		return nil, "", fmt.Errorf("issue certificate: %w", err)
	}
	if n := utf8.RuneCountInString(req.Topic); n > MaxCommonNameLength {
		return nil, "", fmt.Errorf("issue certificate: topic is %d characters: a certificate common name holds at most %d", n, MaxCommonNameLength)
	}
	if req.Endpoint == "" {
		return nil, "", errors.New("issue certificate: no endpoint")
	}
	if n := utf8.RuneCountInString(req.Endpoint); n > MaxCommonNameLength || !utf8.ValidString(req.Endpoint) {
		return nil, "", fmt.Errorf("issue certificate: endpoint %q is not a valid common name", req.Endpoint)
	}
	validity := req.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	if validity < 0 {
		return nil, "", fmt.Errorf("issue certificate: validity %s is negative", validity)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	notBefore, notAfter := ValidityWindow(now, validity)

	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, "", fmt.Errorf("issue certificate: serial: %w", err)
	}
	if serial.Sign() == 0 { // zero is not a positive serial; a chance of 2^-128
		serial.SetInt64(1)
	}

	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("issue certificate: issuer key: %w", err)
	}
	// The issuer exists only as a name: its SubjectKeyId stays empty so the certificate gets no AuthorityKeyId.
	issuer := &x509.Certificate{
		Subject:   pkix.Name{CommonName: req.Endpoint},
		PublicKey: issuerKey.Public(),
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Topic},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, req.CSR.PublicKey, issuerKey)
	if err != nil {
		return nil, "", fmt.Errorf("issue certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), CertificateID(der), nil
}

// ValidityWindow returns the validity of a certificate issued at now for the given lifetime: notBefore is the start
// of the day before now (UTC), which absorbs any clock skew of the relying party, and notAfter is now plus the
// lifetime. Both are whole seconds, as X.509 encodes them.
func ValidityWindow(now time.Time, validity time.Duration) (notBefore, notAfter time.Time) {
	now = now.UTC().Truncate(time.Second)
	y, m, d := now.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1), now.Add(validity)
}

// ParseCertificate reads the first PEM "CERTIFICATE" block of data, or DER.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != pemCertificate {
			return nil, fmt.Errorf("parse certificate: PEM block is %q, want %q", block.Type, pemCertificate)
		}
		der = block.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}
