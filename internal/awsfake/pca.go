package awsfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PCA is a fake AWS Private CA holding one root certificate authority that issues real certificates from CSRs.
type PCA struct {
	mu     sync.Mutex
	ca     *authority
	caARN  string
	keyAlg string
	certs  map[string][]byte // certificate ARN → DER
	tokens map[string]pcaToken
	issued int
	// pending counts, per certificate ARN, the GetCertificate calls still to answer RequestInProgressException.
	pending     map[string]int
	pendingGets int
	rot         pcaRotation       // short-lived mode and templates (pca_rotation.go)
	revoked     map[string]string // serial → reason (pca_revoke.go)
}

type pcaToken struct {
	arn string
	at  time.Time
}

// pcaBackdate is how far before issue AWS Private CA sets NotBefore when the request gives no ValidityNotBefore.
const pcaBackdate = time.Hour

// DefaultPendingGets is how many GetCertificate calls answer RequestInProgressException after IssueCertificate,
// unless SetPendingGets says otherwise.
const DefaultPendingGets = 1

// pcaIdempotencyWindow is how long ACM PCA remembers an IssueCertificate idempotency token.
const pcaIdempotencyWindow = 5 * time.Minute

var pcaSubject = pkix.Name{CommonName: "awsfake Private CA", Organization: []string{"awsfake"}}

func newPCA() *PCA {
	return &PCA{
		ca:     newAuthority(pcaSubject, pcaCAKey()),
		caARN:  "arn:aws:acm-pca:" + Region + ":" + AccountID + ":certificate-authority/" + newUUID(),
		keyAlg: "RSA_2048",
		certs:  map[string][]byte{},
		tokens: map[string]pcaToken{},

		pending:     map[string]int{},
		pendingGets: DefaultPendingGets,
	}
}

// SetPendingGets sets how many GetCertificate calls for a newly issued certificate answer
// RequestInProgressException before the certificate is returned, as AWS Private CA does while it signs. Zero returns
// it at once. It applies to later issues.
func (p *PCA) SetPendingGets(calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pendingGets = max(calls, 0)
}

// CAARN is the ARN of the fake certificate authority.
func (p *PCA) CAARN() string { return p.caARN }

// CACertPEM is the PEM of the fake certificate authority's certificate.
func (p *PCA) CACertPEM() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ca.certPEM)
}

// Issued is how many certificates IssueCertificate has signed (idempotent repeats not counted).
func (p *PCA) Issued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issued
}

// SetKeyAlgorithm replaces the CA with a new one whose key uses alg: "RSA_2048" (the default), "EC_prime256v1" or
// "EC_secp384r1". IssueCertificate then accepts only the signing algorithms of that key family, as AWS does.
func (p *PCA) SetKeyAlgorithm(alg string) {
	var key crypto.Signer
	switch alg {
	case "RSA_2048":
		key = pcaCAKey()
	case "EC_prime256v1", "EC_secp384r1":
		curve := elliptic.P256()
		if alg == "EC_secp384r1" {
			curve = elliptic.P384()
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			panic("awsfake: generate EC key: " + err.Error())
		}
		key = k
	default:
		panic("awsfake: SetKeyAlgorithm: unsupported key algorithm " + alg)
	}
	ca := newAuthority(pcaSubject, key)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ca, p.keyAlg = ca, alg
}

func (p *PCA) handler(op string) jsonHandler {
	switch op {
	case "IssueCertificate":
		return p.issueCertificate
	case "GetCertificate":
		return p.getCertificate
	case "GetCertificateAuthorityCertificate":
		return p.getCertificateAuthorityCertificate
	case "DescribeCertificateAuthority":
		return p.describeCertificateAuthority
	case "RevokeCertificate":
		return p.revokeCertificate
	}
	return nil
}

func pcaError(code, format string, args ...any) *apiError { return errorf(400, code, format, args...) }

// checkCA validates a CertificateAuthorityArn. Caller holds mu.
func (p *PCA) checkCA(arn string) *apiError {
	if !strings.HasPrefix(arn, "arn:aws:acm-pca:") || !strings.Contains(arn, ":certificate-authority/") {
		return pcaError("InvalidArnException", "The certificate authority ARN %q is not valid.", arn)
	}
	if arn != p.caARN {
		return pcaError("ResourceNotFoundException", "Could not find certificate authority %s.", arn)
	}
	return nil
}

var pcaSigningAlgorithms = map[string]struct {
	rsa bool
	alg x509.SignatureAlgorithm
}{
	"SHA256WITHRSA":   {true, x509.SHA256WithRSA},
	"SHA384WITHRSA":   {true, x509.SHA384WithRSA},
	"SHA512WITHRSA":   {true, x509.SHA512WithRSA},
	"SHA256WITHECDSA": {false, x509.ECDSAWithSHA256},
	"SHA384WITHECDSA": {false, x509.ECDSAWithSHA384},
	"SHA512WITHECDSA": {false, x509.ECDSAWithSHA512},
}

type pcaValidity struct {
	Value *int64
	Type  string
}

// at resolves a validity relative to now.
func (v *pcaValidity) at(now time.Time) (time.Time, *apiError) {
	if v.Value == nil || v.Type == "" {
		return time.Time{}, pcaError("InvalidArgsException", "Validity needs a Value and a Type.")
	}
	n := *v.Value
	switch v.Type {
	case "DAYS":
		return now.AddDate(0, 0, int(n)), nil
	case "MONTHS":
		return now.AddDate(0, int(n), 0), nil
	case "YEARS":
		return now.AddDate(int(n), 0, 0), nil
	case "ABSOLUTE":
		return time.Unix(n, 0).UTC(), nil
	case "END_DATE":
		t, err := time.Parse("20060102150405", strconv.FormatInt(n, 10))
		if err != nil {
			return time.Time{}, pcaError("InvalidArgsException", "END_DATE %d is not in YYYYMMDDHHMMSS format.", n)
		}
		return t, nil
	}
	return time.Time{}, pcaError("InvalidArgsException", "Validity type %q is not valid.", v.Type)
}

func (p *PCA) issueCertificate(body []byte) (any, *apiError) {
	var in struct {
		CertificateAuthorityArn string
		Csr                     []byte
		SigningAlgorithm        string
		Validity                *pcaValidity
		ValidityNotBefore       *pcaValidity
		IdempotencyToken        string
		TemplateArn             string
	}
	if e := decodeJSON(body, &in, "InvalidArgsException"); e != nil {
		return nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.checkCA(in.CertificateAuthorityArn); e != nil {
		return nil, e
	}
	now := time.Now().UTC().Truncate(time.Second)
	if in.IdempotencyToken != "" {
		if t, ok := p.tokens[in.IdempotencyToken]; ok && now.Sub(t.at) < pcaIdempotencyWindow {
			return map[string]any{"CertificateArn": t.arn}, nil
		}
	}
	sig, ok := pcaSigningAlgorithms[in.SigningAlgorithm]
	if !ok {
		return nil, pcaError("InvalidArgsException", "SigningAlgorithm %q is not valid.", in.SigningAlgorithm)
	}
	if sig.rsa != strings.HasPrefix(p.keyAlg, "RSA") {
		return nil, pcaError("InvalidArgsException",
			"SigningAlgorithm %s is not compatible with the certificate authority key algorithm %s.",
			in.SigningAlgorithm, p.keyAlg)
	}
	if in.Validity == nil {
		return nil, pcaError("InvalidArgsException", "Validity is required.")
	}
	notAfter, e := in.Validity.at(now)
	if e != nil {
		return nil, e
	}
	notBefore := now.Add(-pcaBackdate)
	if in.ValidityNotBefore != nil {
		if notBefore, e = in.ValidityNotBefore.at(now); e != nil {
			return nil, e
		}
	}
	if !notAfter.After(notBefore) || !notAfter.After(now) {
		return nil, pcaError("InvalidArgsException", "The certificate validity must end after it starts and after now.")
	}
	if e := p.checkLifetime(now, notAfter); e != nil {
		return nil, e
	}
	eku, e := p.templateUsage(in.TemplateArn)
	if e != nil {
		return nil, e
	}
	if notAfter.After(p.ca.cert.NotAfter) {
		return nil, pcaError("InvalidArgsException",
			"The certificate validity specified exceeds the certificate authority validity.")
	}
	csr, err := parseCSR(in.Csr)
	if err != nil {
		return nil, pcaError("MalformedCSRException", "The CSR is not valid: %v", err)
	}
	tmpl := &x509.Certificate{
		Subject:        csr.Subject,
		NotBefore:      notBefore,
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    eku,
		DNSNames:       csr.DNSNames,
		IPAddresses:    csr.IPAddresses,
		URIs:           csr.URIs,
		EmailAddresses: csr.EmailAddresses,

		SignatureAlgorithm: sig.alg,
	}
	der, err := p.ca.issue(tmpl, csr.PublicKey)
	if err != nil {
		return nil, errorf(500, "InternalFailure", "%v", err)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	arn := p.caARN + "/certificate/" + hex.EncodeToString(id[:])
	p.certs[arn] = der
	p.issued++
	if p.pendingGets > 0 {
		p.pending[arn] = p.pendingGets
	}
	if in.IdempotencyToken != "" {
		p.tokens[in.IdempotencyToken] = pcaToken{arn: arn, at: now}
	}
	return map[string]any{"CertificateArn": arn}, nil
}

func (p *PCA) getCertificate(body []byte) (any, *apiError) {
	var in struct{ CertificateArn, CertificateAuthorityArn string }
	if e := decodeJSON(body, &in, "InvalidArgsException"); e != nil {
		return nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.checkCA(in.CertificateAuthorityArn); e != nil {
		return nil, e
	}
	der, ok := p.certs[in.CertificateArn]
	if !ok {
		if !strings.HasPrefix(in.CertificateArn, p.caARN+"/certificate/") {
			return nil, pcaError("InvalidArnException", "The certificate ARN %q is not valid.", in.CertificateArn)
		}
		return nil, pcaError("ResourceNotFoundException", "Could not find certificate %s.", in.CertificateArn)
	}
	if n := p.pending[in.CertificateArn]; n > 0 {
		if n == 1 {
			delete(p.pending, in.CertificateArn)
		} else {
			p.pending[in.CertificateArn] = n - 1
		}
		return nil, pcaError("RequestInProgressException", "The request to issue certificate %s is still in progress.",
			in.CertificateArn)
	}
	return map[string]any{
		"Certificate":      strings.TrimSpace(string(pemEncode("CERTIFICATE", der))),
		"CertificateChain": strings.TrimSpace(string(p.ca.certPEM)),
	}, nil
}

func (p *PCA) getCertificateAuthorityCertificate(body []byte) (any, *apiError) {
	var in struct{ CertificateAuthorityArn string }
	if e := decodeJSON(body, &in, "InvalidArgsException"); e != nil {
		return nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.checkCA(in.CertificateAuthorityArn); e != nil {
		return nil, e
	}
	// A root CA has no chain above it, so CertificateChain is absent.
	return map[string]any{"Certificate": strings.TrimSpace(string(p.ca.certPEM))}, nil
}
