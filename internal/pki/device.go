package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A device certificate names its thing in the subject CN. AWS IoT allows thing names of up to 128 characters
// (CreateThing: [a-zA-Z0-9:_-]{1,128}), but X.509 bounds a common name at 64 (RFC 5280, ub-common-name): a longer
// name cannot be the CN of a well-formed certificate, so every path that puts a thing name into a CSR (the per-thing
// function, register --csr, the vending API's CSR mode) refuses it with the same message.

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// CheckDeviceName reports whether a thing name fits a certificate's common name.
func CheckDeviceName(thingName string) error {
	if thingName == "" {
		return errors.New("thing name is empty")
	}
	if n := utf8.RuneCountInString(thingName); n > MaxCommonNameLength {
		return fmt.Errorf("thing name %q is %d characters: a certificate's common name holds at most %d (X.509), "+
			"so a thing whose certificate names it needs a name of at most %d characters", thingName, n, MaxCommonNameLength, MaxCommonNameLength)
	}
	return nil
}

// NewDeviceCSR returns a PEM CSR for k whose subject is exactly CN=thingName, refusing a name that does not fit a
// common name (see CheckDeviceName).
func NewDeviceCSR(k crypto.Signer, thingName string) ([]byte, error) {
	if err := CheckDeviceName(thingName); err != nil {
		return nil, fmt.Errorf("create csr: %w", err)
	}
	return NewCSR(k, thingName)
}

// ParseDeviceCSR reads a CSR sent by a device: exactly one PEM "CERTIFICATE REQUEST" block, with nothing but
// whitespace around it and no PEM headers, then verified as ParseCSR does. It returns the CSR and its canonical PEM
// encoding, which is what must be passed on (to AWS IoT): bytes that were not checked never travel further.
func ParseDeviceCSR(data []byte) (*x509.CertificateRequest, []byte, error) {
	if len(data) > maxCSRBytes {
		return nil, nil, fmt.Errorf("parse csr: input is %d bytes, more than the %d accepted", len(data), maxCSRBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		if bytes.Contains(trimmed, []byte("-----BEGIN ")) {
			return nil, nil, errors.New("parse csr: csr has data before its PEM block")
		}
		return nil, nil, fmt.Errorf("parse csr: csr must be one PEM %q block", pemCSR)
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, nil, errors.New("parse csr: malformed PEM")
	}
	if rest = bytes.TrimSpace(rest); len(rest) > 0 {
		if bytes.Contains(rest, []byte("-----BEGIN ")) {
			return nil, nil, errors.New("parse csr: csr holds more than one PEM block: send exactly one")
		}
		return nil, nil, errors.New("parse csr: csr has data after its PEM block")
	}
	// pem.Decode skips text it cannot read as a block: the block must be the very start of the input.
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN "+block.Type+"-----\n")) && !bytes.HasPrefix(trimmed, []byte("-----BEGIN "+block.Type+"-----\r\n")) {
		return nil, nil, errors.New("parse csr: csr has data before its PEM block")
	}
	if block.Type != pemCSR && block.Type != pemCSRLegacy {
		return nil, nil, fmt.Errorf("parse csr: PEM block is %q, want %q", block.Type, pemCSR)
	}
	if len(block.Headers) > 0 {
		return nil, nil, errors.New("parse csr: csr PEM block has headers")
	}
	if len(block.Bytes) == 0 {
		return nil, nil, errors.New("parse csr: empty PEM block")
	}
	csr, err := ParseCSR(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	canonical := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: csr.Raw})
	// Last word: apart from line breaks and spaces, the input is exactly the block that was checked.
	if !bytes.Equal(withoutSpace(trimmed), withoutSpace(canonical)) {
		return nil, nil, errors.New("parse csr: csr is not exactly one PEM block")
	}
	if block.Type != pemCSR {
		canonical = pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: csr.Raw})
	}
	return csr, canonical, nil
}

func withoutSpace(b []byte) []byte {
	return bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, b)
}

// CheckDeviceSubject requires a device's CSR to name exactly its thing: a subject of one attribute, CN=thingName, and
// no subject alternative names unless allowSANs. A token that may register "sensor-9" must not yield a certificate
// whose subject says "admin-console", which a relying party would believe.
func CheckDeviceSubject(csr *x509.CertificateRequest, thingName string, allowSANs bool) error {
	if err := CheckDeviceName(thingName); err != nil {
		return err
	}
	if cn, err := SubjectCommonName(csr.RawSubject); err != nil || cn != thingName {
		return fmt.Errorf("csr subject must be exactly CN=%s, got %s", thingName, describeSubject(csr.RawSubject))
	}
	if allowSANs {
		return nil
	}
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			return errors.New("csr has subject alternative names: they are not accepted here, the subject CN names the thing")
		}
	}
	return nil
}

// SubjectCommonName returns the common name of a device subject (a CSR's or certificate's RawSubject) that holds
// exactly one attribute, CN, as a string. Anything else is refused: a second CN (x509 keeps only one of them, while
// AWS IoT's just-in-time provisioning may choose the other, so two readers would bind the key to different things),
// any further attribute (O, OU, serialNumber, ...: a relying party would believe it, and no path of this project
// writes one), a multi-valued RDN, or a non-string value.
func SubjectCommonName(rawSubject []byte) (string, error) {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(rawSubject, &rdns)
	if err != nil || len(rest) > 0 {
		return "", errors.New("subject is not a valid X.509 name")
	}
	cns, others := 0, 0
	for _, rdn := range rdns {
		for _, atv := range rdn {
			if atv.Type.Equal(oidCommonName) {
				cns++
			} else {
				others++
			}
		}
	}
	switch {
	case cns == 0:
		return "", fmt.Errorf("subject %s has no CN (the CN names the thing and must not be empty)", describeSubject(rawSubject))
	case cns > 1:
		return "", fmt.Errorf("subject %s has %d CN attributes: exactly one is accepted", describeSubject(rawSubject), cns)
	case others > 0 || len(rdns) != 1:
		return "", fmt.Errorf("subject %s has attributes besides the CN: only CN=<thing name> is accepted", describeSubject(rawSubject))
	}
	v, ok := rdns[0][0].Value.(string)
	if !ok {
		return "", errors.New("subject CN is not a string")
	}
	return v, nil
}

// describeSubject renders a subject for an error message, bounded.
func describeSubject(rawSubject []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(rawSubject, &rdns); err != nil || len(rest) > 0 {
		return "(not a valid X.509 name)"
	}
	got := rdns.String()
	if got == "" {
		return "an empty subject"
	}
	if len(got) > 160 {
		got = got[:160] + "..."
	}
	return got
}
