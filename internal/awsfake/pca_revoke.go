package awsfake

import (
	"crypto/x509"
	"slices"
	"strings"
)

// RevokeCertificate of AWS Private CA (https://docs.aws.amazon.com/privateca/latest/APIReference/API_RevokeCertificate.html):
// the serial is given in hexadecimal (colons allowed), the reason is one of the RevocationReason values, and a
// certificate already revoked answers RequestAlreadyProcessedException. A serial the CA never issued answers
// ResourceNotFoundException.

var pcaRevocationReasons = []string{
	"UNSPECIFIED", "KEY_COMPROMISE", "CERTIFICATE_AUTHORITY_COMPROMISE", "AFFILIATION_CHANGED", "SUPERSEDED",
	"CESSATION_OF_OPERATION", "PRIVILEGE_WITHDRAWN", "A_A_COMPROMISE",
}

func (p *PCA) revokeCertificate(body []byte) (any, *apiError) {
	var in struct{ CertificateAuthorityArn, CertificateSerial, RevocationReason string }
	if e := decodeJSON(body, &in, "InvalidArgsException"); e != nil {
		return nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.checkCA(in.CertificateAuthorityArn); e != nil {
		return nil, e
	}
	if !slices.Contains(pcaRevocationReasons, in.RevocationReason) {
		return nil, pcaError("InvalidArgsException", "RevocationReason %q is not valid.", in.RevocationReason)
	}
	serial := normalSerial(in.CertificateSerial)
	if serial == "" {
		return nil, pcaError("InvalidArgsException", "CertificateSerial %q is not hexadecimal.", in.CertificateSerial)
	}
	found := false
	for _, der := range p.certs {
		if c, err := x509.ParseCertificate(der); err == nil && normalSerial(c.SerialNumber.Text(16)) == serial {
			found = true
			break
		}
	}
	if !found {
		return nil, pcaError("ResourceNotFoundException", "Could not find certificate with serial %s.", in.CertificateSerial)
	}
	if p.revoked == nil {
		p.revoked = map[string]string{}
	}
	if _, ok := p.revoked[serial]; ok {
		return nil, pcaError("RequestAlreadyProcessedException", "Certificate %s is already revoked.", in.CertificateSerial)
	}
	p.revoked[serial] = in.RevocationReason
	return struct{}{}, nil
}

// normalSerial is a hexadecimal serial in lower case without colons or leading zeros; "" when not hexadecimal.
func normalSerial(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if s == "" || strings.Trim(s, "0123456789abcdef") != "" {
		return ""
	}
	if s = strings.TrimLeft(s, "0"); s == "" {
		s = "0"
	}
	return s
}

// Revoked reports whether the certificate with this serial (hexadecimal) was revoked, and why.
func (p *PCA) Revoked(serial string) (reason string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	reason, ok = p.revoked[normalSerial(serial)]
	return reason, ok
}
