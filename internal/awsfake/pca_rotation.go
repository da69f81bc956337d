package awsfake

import (
	"crypto/x509"
	"strings"
	"time"
)

// pcaRotation is the state of the Private CA rules certificate rotation depends on.
type pcaRotation struct {
	// shortLived is the CA's usage mode SHORT_LIVED_CERTIFICATE: at most 7-day certificates.
	shortLived bool
}

// pcaShortLivedMax is the longest validity a short-lived CA issues.
const pcaShortLivedMax = 7 * 24 * time.Hour

// SetUsageMode sets the CA's usage mode: "GENERAL_PURPOSE" (the default) or "SHORT_LIVED_CERTIFICATE", in which
// IssueCertificate refuses a validity over 7 days, as AWS does.
func (p *PCA) SetUsageMode(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch mode {
	case "GENERAL_PURPOSE":
		p.rot.shortLived = false
	case "SHORT_LIVED_CERTIFICATE":
		p.rot.shortLived = true
	default:
		panic("awsfake: SetUsageMode: unknown usage mode " + mode)
	}
}

// checkLifetime applies short-lived mode: the certificate may not outlive now by more than 7 days (its NotBefore is
// backdated). Caller holds mu.
func (p *PCA) checkLifetime(now, notAfter time.Time) *apiError {
	if p.rot.shortLived && notAfter.Sub(now) > pcaShortLivedMax {
		return pcaError("InvalidArgsException",
			"The certificate authority is in SHORT_LIVED_CERTIFICATE mode: validity must be at most 7 days.")
	}
	return nil
}

// pcaTemplates maps the end-entity templates to their extended key usages; "" is the default template.
var pcaTemplates = map[string][]x509.ExtKeyUsage{
	"":                                 {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	"template/EndEntityCertificate/V1": {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	"template/EndEntityClientAuthCertificate/V1": {x509.ExtKeyUsageClientAuth},
	"template/EndEntityServerAuthCertificate/V1": {x509.ExtKeyUsageServerAuth},
}

// templateUsage resolves a TemplateArn ("arn:<partition>:acm-pca:::template/<name>/V1"). Caller holds mu.
func (p *PCA) templateUsage(arn string) ([]x509.ExtKeyUsage, *apiError) {
	key := ""
	if arn != "" {
		_, rest, ok := strings.Cut(arn, ":acm-pca:::")
		if !ok || !strings.HasPrefix(arn, "arn:aws") {
			return nil, pcaError("InvalidArnException", "The template ARN %q is not valid.", arn)
		}
		key = rest
	}
	eku, ok := pcaTemplates[key]
	if !ok {
		return nil, pcaError("InvalidArgsException", "awsfake: template %q is not implemented", arn)
	}
	return eku, nil
}

func (p *PCA) describeCertificateAuthority(body []byte) (any, *apiError) {
	var in struct{ CertificateAuthorityArn string }
	if e := decodeJSON(body, &in, "InvalidArgsException"); e != nil {
		return nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.checkCA(in.CertificateAuthorityArn); e != nil {
		return nil, e
	}
	mode := "GENERAL_PURPOSE"
	if p.rot.shortLived {
		mode = "SHORT_LIVED_CERTIFICATE"
	}
	return map[string]any{"CertificateAuthority": map[string]any{
		"Arn": p.caARN, "OwnerAccount": AccountID, "Type": "ROOT", "Status": "ACTIVE", "UsageMode": mode,
		"NotBefore": epoch(p.ca.cert.NotBefore), "NotAfter": epoch(p.ca.cert.NotAfter),
		"CertificateAuthorityConfiguration": map[string]any{
			"KeyAlgorithm": p.keyAlg, "SigningAlgorithm": "SHA256WITHRSA",
			"Subject": map[string]any{"CommonName": p.ca.cert.Subject.CommonName},
		},
	}}, nil
}
