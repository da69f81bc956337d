package awsfake

// RegisterCertificate: a device certificate registered under a registered CA certificate, in the status given.
// https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCertificate.html: the certificate is registered in
// the certificate mode of the CA that signed it; status is ACTIVE, INACTIVE or REVOKED. A certificate already in the
// registry is ResourceAlreadyExistsException. AWS IoT's auto-registration registers only certificates it does not
// hold (https://docs.aws.amazon.com/iot/latest/developerguide/auto-register-device-cert.html): AutoRegister refuses
// one registered here as REVOKED, as it refuses any certificate that is not pending activation.

func (f *IoT) registerCertificate(body []byte) (any, *apiError) {
	var in struct {
		PEM    string `json:"certificatePem"`
		CAPEM  string `json:"caCertificatePem"`
		Status string `json:"status"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if in.PEM == "" {
		return nil, invalidRequest("certificatePem is required")
	}
	cert, err := parseCertificatePEM([]byte(in.PEM))
	if err != nil {
		return nil, errorf(400, "CertificateValidationException", "The certificate is not valid: %v", err)
	}
	status := in.Status
	switch status {
	case "":
		status = "INACTIVE"
	case "ACTIVE", "INACTIVE", "REVOKED":
	default:
		return nil, invalidRequest("status %s is not valid: use ACTIVE, INACTIVE or REVOKED", in.Status)
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
	id := certificateID(cert.Raw)
	if _, ok := f.certs[id]; ok {
		return nil, alreadyExists(id, iotCertARNPfx+id, "The certificate is already provisioned or registered")
	}
	c := f.addCert(cert.Raw, status, ca.Mode)
	c.CAID = ca.ID
	return map[string]any{"certificateArn": c.ARN, "certificateId": c.ID}, nil
}

// pemSameCert reports whether two PEM texts hold the same certificate.
func pemSameCert(a, b string) bool {
	ca, err1 := parseCertificatePEM([]byte(a))
	cb, err2 := parseCertificatePEM([]byte(b))
	return err1 == nil && err2 == nil && ca.Equal(cb)
}
