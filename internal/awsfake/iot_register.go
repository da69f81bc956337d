package awsfake

import "crypto/x509"

// RegisterCertificate: a device certificate registered under a registered CA certificate, in the status given.
// https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCertificate.html: the certificate is registered in
// the certificate mode of the CA that signed it; status is ACTIVE, INACTIVE or REVOKED. A certificate already in the
// registry is ResourceAlreadyExistsException. AWS IoT's auto-registration registers only certificates it does not
// hold (https://docs.aws.amazon.com/iot/latest/developerguide/auto-register-device-cert.html): AutoRegister refuses
// one registered here as REVOKED, as it refuses any certificate that is not pending activation.

func (f *IoT) registerCertificate(body []byte) (any, *apiError) {
	in, cert, e := parseRegistration(body)
	if e != nil {
		return nil, e
	}
	var ca *caCert
	for _, c := range f.ext.cas {
		if (in.CAPEM == "" || c.PEM == in.CAPEM || pemSameCert(c.PEM, in.CAPEM)) && cert.CheckSignatureFrom(c.cert) == nil {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, errorf(400, "CertificateValidationException", "The certificate is not signed by a registered CA certificate")
	}
	return f.register(cert, in.Status, ca.Mode, ca.ID)
}

// registration is the body of RegisterCertificate and RegisterCertificateWithoutCA.
type registration struct {
	PEM    string `json:"certificatePem"`
	CAPEM  string `json:"caCertificatePem"`
	Status string `json:"status"`
}

// parseRegistration reads and checks a registration body: a parseable certificate and a status of ACTIVE, INACTIVE
// or REVOKED (INACTIVE when none is given).
func parseRegistration(body []byte) (registration, *x509.Certificate, *apiError) {
	var in registration
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return in, nil, e
	}
	if in.PEM == "" {
		return in, nil, invalidRequest("certificatePem is required")
	}
	cert, err := parseCertificatePEM([]byte(in.PEM))
	if err != nil {
		return in, nil, errorf(400, "CertificateValidationException", "The certificate is not valid: %v", err)
	}
	switch in.Status {
	case "":
		in.Status = "INACTIVE"
	case "ACTIVE", "INACTIVE", "REVOKED":
	default:
		return in, nil, invalidRequest("status %s is not valid: use ACTIVE, INACTIVE or REVOKED", in.Status)
	}
	return in, cert, nil
}

// register adds a registered certificate unless the registry already holds it.
func (f *IoT) register(cert *x509.Certificate, status, mode, caID string) (any, *apiError) {
	id := certificateID(cert.Raw)
	if _, ok := f.certs[id]; ok {
		return nil, alreadyExists(id, iotCertARNPfx+id, "The certificate is already provisioned or registered")
	}
	c := f.addCert(cert.Raw, status, mode)
	c.CAID = caID
	return map[string]any{"certificateArn": c.ARN, "certificateId": c.ID}, nil
}

// pemSameCert reports whether two PEM texts hold the same certificate.
func pemSameCert(a, b string) bool {
	ca, err1 := parseCertificatePEM([]byte(a))
	cb, err2 := parseCertificatePEM([]byte(b))
	return err1 == nil && err2 == nil && ca.Equal(cb)
}
