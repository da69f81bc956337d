package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

func TestAttribute(t *testing.T) {
	marked := func(name, mark string) []thingInfo { return []thingInfo{{Name: name, Mark: mark}} }
	for _, tc := range []struct {
		name      string
		row       certRow
		things    []thingInfo
		want, why string
	}{
		{"thing mark wins over policies", certRow{Policies: []string{"s-PartnerPolicy"}}, marked("t", "C"), "C", "thing t attribute iotcert_capability"},
		{"unknown mark ignored", certRow{Policies: []string{"jitr-mr-policy"}}, marked("t", "Z; rm -rf"), "D", "policy jitr-mr-policy"},
		{"partner policy", certRow{Policies: []string{"other", "certificate-based-stack-p1-PartnerPolicy"}}, nil, "A", "policy certificate-based-stack-p1-PartnerPolicy"},
		{"partner issuer", certRow{IssuerKind: issuerPartnerCSR}, nil, "A", "issuer is the account's ATS endpoint"},
		{"registered under a CA", certRow{CAID: "80b84f0b1f19aaaa"}, nil, "D", "registered under CA 80b84f0b1f19"},
		{"B's generated policy name", certRow{Policies: []string{"device1-ThingPolicy-1AB2"}}, marked("device1", ""), "B", "policy device1-ThingPolicy-1AB2"},
		{"a name that merely contains a letter", certRow{Policies: []string{"B", "policy-D"}}, nil, "", "no mark of a capability"},
		{"nothing", certRow{}, nil, "", "no mark of a capability"},
	} {
		got, why := attribute(&tc.row, tc.things, "jitr-mr-policy")
		if got != tc.want || why != tc.why {
			t.Errorf("%s: attribute() = %q, %q, want %q, %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestClassifyIssuer(t *testing.T) {
	cert := func(n pkix.Name) *x509.Certificate { return &x509.Certificate{Issuer: n} }
	for _, tc := range []struct {
		name       string
		cert       *x509.Certificate
		caID       string
		kind, show string
	}{
		{"AWS IoT", cert(awsIoTName), "", issuerAWSIoT, "AWS IoT"},
		{"AWS IoT's name with a CN is someone else", cert(pkix.Name{CommonName: "x", Organization: []string{"Amazon.com Inc."}, OrganizationalUnit: []string{"Amazon Web Services"}}), "", issuerNoCA, "x"},
		{"registered CA", cert(privateCA), "abc", issuerCA, "CA IoT Multi-Region Private CA"},
		{"partner signer", cert(partnerName), "", issuerPartnerCSR, "partner CSR signer a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"},
		{"China endpoint", cert(pkix.Name{CommonName: "abc-ats.iot.cn-north-1.amazonaws.com.cn"}), "", issuerPartnerCSR, "partner CSR signer abc-ats.iot.cn-north-1.amazonaws.com.cn"},
		{"look-alike endpoint", cert(pkix.Name{CommonName: "abc-ats.iot.us-east-1.amazonaws.com.evil.example"}), "", issuerNoCA, "abc-ats.iot.us-east-1.amazonaws.com.evil.example"},
		{"no CN", cert(pkix.Name{Organization: []string{"Acme"}}), "", issuerNoCA, "O=Acme"},
		{"unparsable", nil, "", issuerUnknown, "?"},
	} {
		kind, show := classifyIssuer(tc.cert, tc.caID)
		if kind != tc.kind || show != tc.show {
			t.Errorf("%s: classifyIssuer() = %q, %q, want %q, %q", tc.name, kind, show, tc.kind, tc.show)
		}
	}
}
