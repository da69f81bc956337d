package main

import (
	"crypto/x509"
	"regexp"
	"strings"

	"github.com/iotcert/iotcert/internal/capability"
)

// Issuer kinds.
const (
	issuerAWSIoT     = "aws-iot"       // AWS IoT's own CA (CreateCertificateFromCsr, CreateKeysAndCertificate)
	issuerCA         = "registered-ca" // a CA certificate registered with AWS IoT (our Private CA, or one the operator brought)
	issuerPartnerCSR = "partner-csr"   // capability A's signer: issuer CN is the account's iot:Data-ATS endpoint
	issuerNoCA       = "no-ca"         // another certificate registered without a CA
	issuerUnknown    = "unparsable"    // the PEM did not parse
)

// atsEndpointRE matches an account's iot:Data-ATS endpoint, the issuer CN capability A's signer writes.
var atsEndpointRE = regexp.MustCompile(`^[a-z0-9]+-ats\.iot\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// classifyIssuer says who issued a certificate, and names the issuer for the report.
func classifyIssuer(cert *x509.Certificate, caID string) (kind, name string) {
	if cert == nil {
		return issuerUnknown, "?"
	}
	iss := cert.Issuer
	switch {
	case caID != "":
		return issuerCA, "CA " + issuerName(cert)
	case iss.CommonName == "" && slicesEqual(iss.Organization, "Amazon.com Inc.") &&
		slicesEqual(iss.OrganizationalUnit, "Amazon Web Services"):
		return issuerAWSIoT, "AWS IoT"
	case atsEndpointRE.MatchString(iss.CommonName):
		return issuerPartnerCSR, "partner CSR signer " + iss.CommonName
	}
	return issuerNoCA, issuerName(cert)
}

func issuerName(cert *x509.Certificate) string {
	if cn := cert.Issuer.CommonName; cn != "" {
		return cn
	}
	return cert.Issuer.String()
}

func slicesEqual(got []string, want string) bool { return len(got) == 1 && got[0] == want }

// attribute names the capability that made a certificate, and why. The rules, first match wins (README, "cert-report"):
//  1. an attached thing carries the attribute iotcert_capability with a capability letter (B, C, D set it);
//  2. a policy named <stack>-PartnerPolicy is attached: A;
//  3. the JITR policy (jitr-mr-policy unless -jitr-policy) is attached: D;
//  4. the issuer is A's signer (issuer CN = the account's iot:Data-ATS endpoint): A;
//  5. the certificate was registered under a CA certificate: D, the only capability that registers device
//     certificates under a CA (a certificate still PENDING_ACTIVATION before its JITR ran has no policy yet);
//  6. a policy whose name CloudFormation generated for B's ThingPolicy (<stack>-ThingPolicy-<suffix>): B, for
//     things made before B set the attribute.
//
// Nothing else is trusted: a thing attribute with another value, or a policy name that merely contains a letter, does
// not attribute.
func attribute(r *certRow, things []thingInfo, jitrPolicy string) (capLetter, basis string) {
	for _, t := range things {
		if capability.Known(t.Mark) {
			return t.Mark, "thing " + t.Name + " attribute " + capability.ThingAttribute
		}
	}
	for _, p := range r.Policies {
		if strings.HasSuffix(p, "-PartnerPolicy") {
			return capability.CrossAccount, "policy " + p
		}
	}
	for _, p := range r.Policies {
		if p == jitrPolicy {
			return capability.MultiRegion, "policy " + p
		}
	}
	switch {
	case r.IssuerKind == issuerPartnerCSR:
		return capability.CrossAccount, "issuer is the account's ATS endpoint"
	case r.CAID != "":
		return capability.MultiRegion, "registered under CA " + shortID(r.CAID)
	}
	for _, p := range r.Policies {
		if strings.Contains(p, "-ThingPolicy-") {
			return capability.ThingStack, "policy " + p
		}
	}
	return "", "no mark of a capability"
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
