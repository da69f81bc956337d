package awsfake

// CA certificates, Just-in-Time Registration and the data plane's Publish: the parts of AWS IoT the multi-region
// stacks use. The operations run with f.mu held, like those of iot.go. The data plane (AWS_ENDPOINT_URL_IOT_DATA_PLANE,
// set by SetEnv) shares the IoT listener: its Publish (POST /topics/{topic}) is counted and faulted as
// Calls/Inject(ServiceIoT, "Publish").

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CACertificate is a CA certificate registered with AWS IoT, as the fake holds it.
type CACertificate struct {
	ID               string
	ARN              string
	PEM              string
	Status           string // ACTIVE or INACTIVE
	AutoRegistration string // ENABLE or DISABLE
	Mode             string // DEFAULT or SNI_ONLY
}

// Registration is what AWS IoT publishes on $aws/events/certificates/registered/<caCertificateId> when a device
// presents a certificate signed by a registered CA with auto-registration on.
type Registration struct {
	CertificateID                    string `json:"certificateId"`
	CACertificateID                  string `json:"caCertificateId"`
	Timestamp                        int64  `json:"timestamp"`
	CertificateStatus                string `json:"certificateStatus"`
	AWSAccountID                     string `json:"awsAccountId"`
	CertificateRegistrationTimestamp *int64 `json:"certificateRegistrationTimestamp"`
}

// Message is one message published through the data plane's Publish API.
type Message struct {
	Topic          string
	Payload        []byte
	QoS            int
	Retain         bool
	ContentType    string
	UserProperties [][2]string // key, value, in the order given
}

type caCert struct {
	CACertificate
	cert              *x509.Certificate
	created, modified time.Time
	customerVersion   int64
	generationID      string
	registrationCfg   map[string]any
}

// iotCA is the fake's CA and data-plane state, zero-value ready.
type iotCA struct {
	cas       map[string]*caCert
	regCode   string
	published []Message
}

// Routes of iot_ca.go, appended to iotRoutes.
var iotCARoutes = []struct{ method, path, op string }{
	{"POST", "/cacertificate", "RegisterCACertificate"},
	{"GET", "/cacertificate/{}", "DescribeCACertificate"},
	{"PUT", "/cacertificate/{}", "UpdateCACertificate"},
	{"DELETE", "/cacertificate/{}", "DeleteCACertificate"},
	{"GET", "/registrationcode", "GetRegistrationCode"},
	{"POST", "/topics/{}", "Publish"},
}

// serveCA runs the operations of iot_ca.go (those of iotCARoutes). Caller holds f.mu.
func (f *IoT) serveCA(op string, params []string, q url.Values, h http.Header, body []byte) (out any, e *apiError) {
	if f.ext.cas == nil {
		f.ext.cas = map[string]*caCert{}
	}
	switch op {
	case "RegisterCACertificate":
		out, e = f.registerCACertificate(body, q.Get("setAsActive") == "true", q.Get("allowAutoRegistration") == "true")
	case "DescribeCACertificate":
		out, e = f.describeCACertificate(params[0])
	case "UpdateCACertificate":
		out, e = f.updateCACertificate(params[0], q.Get("newStatus"), q.Get("newAutoRegistrationStatus"), body)
	case "DeleteCACertificate":
		out, e = f.deleteCACertificate(params[0])
	case "GetRegistrationCode":
		out = map[string]any{"registrationCode": f.registrationCode()}
	case "Publish":
		out, e = f.publish(params[0], q, h, body)
	default:
		e = errorf(404, "UnknownOperationException", "awsfake: iot operation %s is not implemented", op)
	}
	return out, e
}

func (f *IoT) registrationCode() string {
	if f.ext.regCode == "" {
		f.ext.regCode = randomString(64, "0123456789abcdef")
	}
	return f.ext.regCode
}

// State accessors.

// CACertificate returns a copy of the CA certificate with that id.
func (f *IoT) CACertificate(id string) (CACertificate, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ext.cas[id]
	if !ok {
		return CACertificate{}, false
	}
	return c.CACertificate, true
}

// RegistrationCode is the account's registration code (GetRegistrationCode), for DEFAULT-mode verification
// certificates.
func (f *IoT) RegistrationCode() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registrationCode()
}

// Published returns the messages published through the data plane, in order.
func (f *IoT) Published() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ext.published)
}

// AutoRegister is what AWS IoT does when a device presents certPEM (its certificate, optionally followed by the
// chain) on connect: if a registered CA that is ACTIVE with auto-registration enabled signed it, the certificate is
// registered under that CA in PENDING_ACTIVATION and the registration event is returned; a certificate already
// registered and still pending yields the event again (AWS publishes it on every connect). An error explains why
// AWS IoT would refuse the connection instead: no such CA, CA inactive, auto-registration off, certificate not
// pending, or not valid now.
func (f *IoT) AutoRegister(certPEM []byte) (Registration, error) {
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		return Registration{}, fmt.Errorf("awsfake: device certificate: %w", err)
	}
	now := time.Now().UTC()
	f.mu.Lock()
	defer f.mu.Unlock()
	var ca *caCert
	for _, c := range f.ext.cas {
		if cert.CheckSignatureFrom(c.cert) == nil {
			ca = c
			break
		}
	}
	if ca == nil {
		return Registration{}, fmt.Errorf("awsfake: no registered CA certificate signed the device certificate")
	}
	if ca.Status != "ACTIVE" || ca.AutoRegistration != "ENABLE" {
		return Registration{}, fmt.Errorf("awsfake: CA certificate %s is %s with auto-registration %s", ca.ID, ca.Status,
			ca.AutoRegistration)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return Registration{}, fmt.Errorf("awsfake: device certificate is not valid at %s", now.Format(time.RFC3339))
	}
	id := certificateID(cert.Raw)
	c, ok := f.certs[id]
	if !ok {
		c = f.addCert(cert.Raw, "PENDING_ACTIVATION", ca.Mode)
		c.CAID = ca.ID
	}
	if c.Status != "PENDING_ACTIVATION" {
		return Registration{}, fmt.Errorf("awsfake: certificate %s is %s, not pending activation", id, c.Status)
	}
	registered := c.created.UnixMilli()
	return Registration{
		CertificateID: id, CACertificateID: c.CAID, Timestamp: now.UnixMilli(), CertificateStatus: c.Status,
		AWSAccountID: AccountID, CertificateRegistrationTimestamp: &registered,
	}, nil
}

// PutCertificateUnderCA registers certPEM as a certificate of CA caID in PENDING_ACTIVATION without any check, as
// if AWS IoT had accepted it, and returns its registration event: for tests of what a JITR function does with a
// certificate that should never have reached it.
func (f *IoT) PutCertificateUnderCA(certPEM []byte, caID string) (Registration, error) {
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		return Registration{}, fmt.Errorf("awsfake: certificate: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.addCert(cert.Raw, "PENDING_ACTIVATION", "DEFAULT")
	c.CAID = caID
	registered := c.created.UnixMilli()
	return Registration{
		CertificateID: c.ID, CACertificateID: caID, Timestamp: time.Now().UnixMilli(),
		CertificateStatus: c.Status, AWSAccountID: AccountID, CertificateRegistrationTimestamp: &registered,
	}, nil
}

// Operations. Each runs with f.mu held.

func (f *IoT) registerCACertificate(body []byte, setAsActive, autoReg bool) (any, *apiError) {
	var in struct {
		CACertificate           string         `json:"caCertificate"`
		VerificationCertificate string         `json:"verificationCertificate"`
		CertificateMode         string         `json:"certificateMode"`
		RegistrationConfig      map[string]any `json:"registrationConfig"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if in.CACertificate == "" {
		return nil, invalidRequest("caCertificate is required")
	}
	ca, err := parseCertificatePEM([]byte(in.CACertificate))
	if err != nil {
		return nil, errorf(400, "CertificateValidationException", "The CA certificate is not valid: %v", err)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		return nil, errorf(400, "CertificateValidationException", "The certificate is not a CA certificate")
	}
	now := time.Now()
	if now.After(ca.NotAfter) || now.Before(ca.NotBefore) {
		return nil, errorf(400, "CertificateValidationException", "The CA certificate is not valid now")
	}
	mode := in.CertificateMode
	switch mode {
	case "", "DEFAULT":
		mode = "DEFAULT"
		if in.VerificationCertificate == "" {
			return nil, invalidRequest("verificationCertificate is required in DEFAULT mode")
		}
		v, err := parseCertificatePEM([]byte(in.VerificationCertificate))
		if err != nil {
			return nil, errorf(400, "CertificateValidationException", "The verification certificate is not valid: %v", err)
		}
		if v.CheckSignatureFrom(ca) != nil {
			return nil, errorf(400, "CertificateValidationException",
				"The verification certificate is not signed by the CA certificate")
		}
		if v.Subject.CommonName != f.registrationCode() {
			return nil, errorf(400, "CertificateValidationException",
				"The verification certificate's common name is not the registration code")
		}
	case "SNI_ONLY":
		if in.VerificationCertificate != "" {
			return nil, invalidRequest("verificationCertificate must be empty in SNI_ONLY mode")
		}
	default:
		return nil, invalidRequest("certificateMode %s is not valid: use DEFAULT or SNI_ONLY", mode)
	}
	id := certificateID(ca.Raw)
	if c, ok := f.ext.cas[id]; ok {
		return nil, alreadyExists(c.ID, c.ARN, "The CA certificate is already registered")
	}
	created := time.Now().UTC()
	c := &caCert{
		CACertificate: CACertificate{
			ID: id, ARN: iotARN("cacert/" + id), PEM: string(pemEncode("CERTIFICATE", ca.Raw)),
			Status: activeOrInactive(setAsActive), AutoRegistration: "DISABLE", Mode: mode,
		},
		cert: ca, created: created, modified: created, customerVersion: 1, generationID: newUUID(),
		registrationCfg: in.RegistrationConfig,
	}
	if autoReg {
		c.AutoRegistration = "ENABLE"
	}
	f.ext.cas[id] = c
	return map[string]any{"certificateArn": c.ARN, "certificateId": c.ID}, nil
}

func (f *IoT) caCertificate(id string) (*caCert, *apiError) {
	return lookupByCertID(f.ext.cas, "CA certificate", "caCertificateId", id)
}

func (f *IoT) describeCACertificate(id string) (any, *apiError) {
	c, e := f.caCertificate(id)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"certificateDescription": map[string]any{
		"certificateArn":         c.ARN,
		"certificateId":          c.ID,
		"status":                 c.Status,
		"certificatePem":         c.PEM,
		"ownedBy":                AccountID,
		"creationDate":           epoch(c.created),
		"lastModifiedDate":       epoch(c.modified),
		"autoRegistrationStatus": c.AutoRegistration,
		"customerVersion":        c.customerVersion,
		"generationId":           c.generationID,
		"certificateMode":        c.Mode,
		"validity":               map[string]any{"notBefore": epoch(c.cert.NotBefore), "notAfter": epoch(c.cert.NotAfter)},
	}}
	if c.registrationCfg != nil {
		out["registrationConfig"] = c.registrationCfg
	}
	return out, nil
}

func (f *IoT) updateCACertificate(id, status, autoReg string, body []byte) (any, *apiError) {
	c, e := f.caCertificate(id)
	if e != nil {
		return nil, e
	}
	var in struct {
		RegistrationConfig     map[string]any `json:"registrationConfig"`
		RemoveAutoRegistration bool           `json:"removeAutoRegistration"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	switch status {
	case "", "ACTIVE", "INACTIVE":
	default:
		return nil, invalidRequest("newStatus %s is not valid: use ACTIVE or INACTIVE", status)
	}
	switch autoReg {
	case "", "ENABLE", "DISABLE":
	default:
		return nil, invalidRequest("newAutoRegistrationStatus %s is not valid: use ENABLE or DISABLE", autoReg)
	}
	if status != "" {
		c.Status = status
	}
	if autoReg != "" {
		c.AutoRegistration = autoReg
	}
	if in.RegistrationConfig != nil {
		c.registrationCfg = in.RegistrationConfig
	}
	if in.RemoveAutoRegistration {
		c.registrationCfg = nil
	}
	c.modified, c.generationID = time.Now().UTC(), newUUID()
	c.customerVersion++
	return nil, nil
}

func (f *IoT) deleteCACertificate(id string) (any, *apiError) {
	c, e := f.caCertificate(id)
	if e != nil {
		return nil, e
	}
	if c.Status != "INACTIVE" {
		return nil, errorf(406, "CertificateStateException",
			"The CA certificate must be deactivated (INACTIVE) before deletion. Id: %s", c.ID)
	}
	delete(f.ext.cas, c.ID)
	return nil, nil
}

// maxPublishPayload is the data plane's largest message payload (128 KB).
const maxPublishPayload = 128 * 1024

func (f *IoT) publish(topic string, q url.Values, h http.Header, body []byte) (any, *apiError) {
	if topic == "" || len(topic) > 256 || !utf8.ValidString(topic) {
		return nil, invalidRequest("topic %q is not valid: want 1 to 256 bytes of UTF-8", topic)
	}
	if strings.ContainsAny(topic, "+#\x00") {
		return nil, invalidRequest("topic %q is not valid: a published topic holds no wildcards", topic)
	}
	if len(body) > maxPublishPayload {
		return nil, errorf(413, "RequestEntityTooLargeException", "payload of %d bytes is over %d", len(body),
			maxPublishPayload)
	}
	m := Message{Topic: topic, Payload: slices.Clone(body), Retain: q.Get("retain") == "true",
		ContentType: q.Get("contentType")}
	if s := q.Get("qos"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1 {
			return nil, invalidRequest("qos %q is not valid: use 0 or 1", s)
		}
		m.QoS = n
	}
	if hv := h.Get("X-Amz-Mqtt5-User-Properties"); hv != "" {
		props, err := decodeUserProperties(hv)
		if err != nil {
			return nil, invalidRequest("userProperties are not valid: %v", err)
		}
		m.UserProperties = props
	}
	f.ext.published = append(f.ext.published, m)
	return nil, nil
}

// decodeUserProperties reads the x-amz-mqtt5-user-properties header: base64 of a JSON array of one-member objects,
// e.g. [{"deviceName":"alpha"},{"deviceCnt":"45"}].
func decodeUserProperties(hv string) ([][2]string, error) {
	raw, err := base64.StdEncoding.DecodeString(hv)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	var arr []map[string]string
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, fmt.Errorf("not a JSON array of string objects: %w", err)
	}
	var out [][2]string
	for _, o := range arr {
		if len(o) != 1 {
			return nil, fmt.Errorf("each object must hold one property, got %d", len(o))
		}
		for k, v := range o {
			out = append(out, [2]string{k, v})
		}
	}
	return out, nil
}
