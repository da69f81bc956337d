// Package pki holds the key, CSR and certificate code shared by the Lambda handlers, the producer tools and
// synth-time validation. It is pure Go: no network, no AWS SDK, no CDK.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Key algorithms accepted by GenerateKey.
const (
	KeyECP256  = "EC_P256"
	KeyECP384  = "EC_P384"
	KeyRSA2048 = "RSA_2048"
)

// PEM block types.
const (
	pemECPrivateKey  = "EC PRIVATE KEY"
	pemRSAPrivateKey = "RSA PRIVATE KEY"
	pemPKCS8         = "PRIVATE KEY"
	pemECParameters  = "EC PARAMETERS"
	pemCSR           = "CERTIFICATE REQUEST"
	pemCSRLegacy     = "NEW CERTIFICATE REQUEST"
	pemCertificate   = "CERTIFICATE"
)

// MinRSABits is the smallest RSA modulus accepted in a CSR or a private key.
const MinRSABits = 2048

// maxRSABits bounds the cost of verifying a signature made by an outside key.
const maxRSABits = 8192

// maxCSRBytes bounds the input ParseCSR reads; a real CSR is well under 4 KiB.
const maxCSRBytes = 64 << 10

// GenerateKey returns a new private key. alg is one of "EC_P256" (the default when empty), "EC_P384" or "RSA_2048".
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "", KeyECP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyECP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q: want %q, %q or %q", alg, KeyECP256, KeyECP384, KeyRSA2048)
	}
}

// EncodePrivateKey writes k as unencrypted PEM in the traditional OpenSSL forms: an EC key as SEC 1
// ("EC PRIVATE KEY", what `openssl ecparam -genkey` writes), an RSA key as PKCS #1 ("RSA PRIVATE KEY").
func EncodePrivateKey(k crypto.Signer) ([]byte, error) {
	switch key := k.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encode ec private key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemECPrivateKey, Bytes: der}), nil
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: pemRSAPrivateKey, Bytes: x509.MarshalPKCS1PrivateKey(key)}), nil
	default:
		return nil, fmt.Errorf("encode private key: unsupported key type %T", k)
	}
}

// ParsePrivateKey reads the first private key in PEM data: SEC 1 ("EC PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY")
// or PKCS #8 ("PRIVATE KEY"). An "EC PARAMETERS" block, which `openssl ecparam -genkey` writes before the key,
// is skipped. Encrypted keys and weak keys are refused. Errors never include key material.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("parse private key: no PEM private key block found")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("parse private key: encrypted PEM keys are not supported")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case pemECParameters:
			continue
		case pemECPrivateKey:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case pemRSAPrivateKey:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case pemPKCS8:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("parse private key: encrypted PKCS #8 keys are not supported")
		default:
			return nil, fmt.Errorf("parse private key: unexpected PEM block %q", block.Type)
		}
		if err != nil {
			// The x509 parse errors describe the structure, never the key bytes.
			return nil, fmt.Errorf("parse private key (%s): %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("parse private key: unsupported key type %T", key)
		}
		if err := CheckPublicKey(signer.Public()); err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		return signer, nil
	}
}

// signatureAlgorithm picks SHA-256, or SHA-384 for an ECDSA P-384 key.
func signatureAlgorithm(k crypto.Signer) x509.SignatureAlgorithm {
	switch key := k.Public().(type) {
	case *ecdsa.PublicKey:
		if key.Curve == elliptic.P384() {
			return x509.ECDSAWithSHA384
		}
		return x509.ECDSAWithSHA256
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	default:
		return x509.UnknownSignatureAlgorithm
	}
}

// NewCSR returns a PEM certificate signing request for k whose subject is CN=commonName.
// It is signed with SHA-256 (SHA-384 for an ECDSA P-384 key).
func NewCSR(k crypto.Signer, commonName string) ([]byte, error) {
	if err := CheckPublicKey(k.Public()); err != nil {
		return nil, fmt.Errorf("create csr: %w", err)
	}
	tmpl := &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: commonName},
		SignatureAlgorithm: signatureAlgorithm(k),
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
	if err != nil {
		return nil, fmt.Errorf("create csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// ParseCSR reads a certificate signing request in PEM ("CERTIFICATE REQUEST" or the older "NEW CERTIFICATE
// REQUEST") or DER form, verifies its self-signature (proof that the requester holds the private key) and
// refuses weak keys (see CheckPublicKey).
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > maxCSRBytes {
		return nil, fmt.Errorf("parse csr: input is %d bytes, more than the %d accepted", len(data), maxCSRBytes)
	}
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != pemCSR && block.Type != pemCSRLegacy {
			return nil, fmt.Errorf("parse csr: PEM block is %q, want %q", block.Type, pemCSR)
		}
		der = block.Bytes
	} else if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("parse csr: malformed PEM")
	}
	if len(bytes.TrimSpace(der)) == 0 {
		return nil, errors.New("parse csr: empty input")
	}
	if der[0] != 0x30 { // a DER SEQUENCE
		return nil, fmt.Errorf("parse csr: input is neither a PEM %q block nor DER", pemCSR)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("parse csr: %w", err)
	}
	if err := CheckPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("parse csr: %w", err)
	}
	// Go still verifies SHA-1 CSR signatures; a SHA-1 proof of possession is not accepted here.
	switch csr.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
	default:
		return nil, fmt.Errorf("parse csr: signature algorithm %v is not accepted: sign the CSR with SHA-256 or stronger", csr.SignatureAlgorithm)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("parse csr: signature does not verify (the CSR was altered or not signed by its key): %w", err)
	}
	return csr, nil
}

// CheckPublicKey accepts ECDSA keys on P-256 or P-384 and RSA keys of 2048 to 8192 bits, and refuses all others.
func CheckPublicKey(pub any) error {
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		if key.Curve == elliptic.P256() || key.Curve == elliptic.P384() {
			return nil
		}
		name := "unknown"
		if key.Curve != nil && key.Curve.Params() != nil {
			name = key.Curve.Params().Name
		}
		return fmt.Errorf("ecdsa curve %s is not accepted: use P-256 or P-384", name)
	case *rsa.PublicKey:
		if key.N == nil {
			return errors.New("rsa key has no modulus")
		}
		bits := key.N.BitLen()
		if bits < MinRSABits {
			return fmt.Errorf("rsa key of %d bits is too weak: at least %d bits are required", bits, MinRSABits)
		}
		if bits > maxRSABits {
			return fmt.Errorf("rsa key of %d bits is too large: at most %d bits are accepted", bits, maxRSABits)
		}
		return nil
	case ed25519.PublicKey:
		return fmt.Errorf("Ed25519 keys are not accepted; use EC P-256/P-384 or RSA ≥ %d", MinRSABits)
	default:
		return fmt.Errorf("this key type is not accepted; use EC P-256/P-384 or RSA ≥ %d", MinRSABits)
	}
}

// CertificateID returns the AWS IoT certificate id of a DER certificate: the lowercase hex SHA-256 of the DER bytes.
func CertificateID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
