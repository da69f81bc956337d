package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/capability"
	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/naming"
	"github.com/iotcert/iotcert/internal/pki"
)

// DefaultPolicyName is the seed's policy name, attached to every registered certificate.
const DefaultPolicyName = "jitr-mr-policy"

// IoTAPI is the part of the AWS IoT client the handler uses.
type IoTAPI interface {
	DescribeCACertificate(context.Context, *iot.DescribeCACertificateInput, ...func(*iot.Options)) (*iot.DescribeCACertificateOutput, error)
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	UpdateCertificate(context.Context, *iot.UpdateCertificateInput, ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	DescribeThing(context.Context, *iot.DescribeThingInput, ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
	CreateThing(context.Context, *iot.CreateThingInput, ...func(*iot.Options)) (*iot.CreateThingOutput, error)
	AttachThingPrincipal(context.Context, *iot.AttachThingPrincipalInput, ...func(*iot.Options)) (*iot.AttachThingPrincipalOutput, error)
	AttachPolicy(context.Context, *iot.AttachPolicyInput, ...func(*iot.Options)) (*iot.AttachPolicyOutput, error)
}

// Config is the function's configuration, read once from the environment (see main.go).
type Config struct {
	// CACertificateID is the id of the CA certificate registered in this region: the only CA whose events count.
	CACertificateID string
	// PolicyName is the AWS IoT policy attached to every registered certificate.
	PolicyName string
	// ThingNamePattern, when set, must match the whole thing name.
	ThingNamePattern *regexp.Regexp
	// MinRSABits is the smallest RSA key accepted.
	MinRSABits int
}

var certIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func getenv(k string) string { return os.Getenv(k) }

// ConfigFromEnv reads Config through getenv; an invalid value is an error naming it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{CACertificateID: getenv("CA_CERTIFICATE_ID"), PolicyName: getenv("POLICY_NAME"), MinRSABits: 2048}
	if !certIDRE.MatchString(c.CACertificateID) {
		return Config{}, fmt.Errorf("CA_CERTIFICATE_ID %q is not valid: want the 64 hexadecimal characters of a CA certificate id", c.CACertificateID)
	}
	if c.PolicyName == "" {
		c.PolicyName = DefaultPolicyName
	}
	if p := getenv("THING_NAME_PATTERN"); p != "" {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return Config{}, fmt.Errorf("THING_NAME_PATTERN %q is not a valid regular expression: %w", p, err)
		}
		c.ThingNamePattern = re
	}
	if v := getenv("MIN_RSA_BITS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2048 {
			return Config{}, fmt.Errorf("MIN_RSA_BITS %q is not valid: want a number of at least 2048", v)
		}
		c.MinRSABits = n
	}
	return c, nil
}

// Event is AWS IoT's certificate registration event, published on
// $aws/events/certificates/registered/<caCertificateId>.
type Event struct {
	CertificateID                    string `json:"certificateId"`
	CACertificateID                  string `json:"caCertificateId"`
	Timestamp                        int64  `json:"timestamp"`
	CertificateStatus                string `json:"certificateStatus"`
	AWSAccountID                     string `json:"awsAccountId"`
	CertificateRegistrationTimestamp *int64 `json:"certificateRegistrationTimestamp"`
}

// Result says what the function did with one event.
type Result struct {
	// Status: "activated" (this call or an earlier one), "ignored" (another CA's event, or a certificate an operator
	// deactivated) or "revoked" (refused by an earlier call).
	Status        string `json:"status"`
	CertificateID string `json:"certificateId,omitempty"`
	ThingName     string `json:"thingName,omitempty"`
}

// RefusedError reports a certificate that failed verification and was revoked.
type RefusedError struct {
	CertificateID string
	Reason        string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("certificate %s refused and revoked: %s", e.CertificateID, e.Reason)
}

// MaxClockSkew is how far a certificate's NotBefore may be ahead of this function's clock and still be taken for a
// certificate that becomes valid in a moment (the issuing CA's clock runs slightly ahead, or the device connected in
// the very second of its issuance) rather than refused: such a certificate is left PENDING_ACTIVATION and the
// invocation fails with NotYetValidError, so Lambda retries the asynchronous event (by default twice, one and then two
// minutes later: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html) and AWS IoT
// publishes the registration event again on the device's next connect while the certificate is pending
// (https://docs.aws.amazon.com/iot/latest/developerguide/auto-register-device-cert.html). Two minutes: the first
// retry, a minute later, finds it valid; a certificate further ahead is refused and revoked as before.
const MaxClockSkew = 2 * time.Minute

// NotYetValidError reports a certificate whose validity starts within MaxClockSkew of now: it was left pending, and the
// retried invocation registers it.
type NotYetValidError struct {
	CertificateID string
	NotBefore     time.Time
}

func (e *NotYetValidError) Error() string {
	return fmt.Sprintf("certificate %s is valid from %s, slightly ahead of this function's clock: left pending, retry",
		e.CertificateID, e.NotBefore.UTC().Format(time.RFC3339))
}

// Handler registers the device certificates that the stack's CA signed: the Just-in-Time Registration function.
//
// For an event of its CA it reads the certificate (DescribeCertificate) and the CA certificate, and verifies that
// the CA signed the device certificate, that it is valid now, that its key is strong enough, that it is not a CA
// certificate and, where it names extended key usages, that client authentication is one of them. The thing name
// is the subject CN, the subject's only attribute, checked against AWS IoT's name rules and the optional pattern. A
// certificate that passes everything but starts to be valid within MaxClockSkew is left pending (NotYetValidError). A certificate that fails any
// check is REVOKED, logged, and the invocation fails with a RefusedError so the event reaches the dead-letter queue;
// it is never activated. A certificate that passes gets its thing (created when missing), the thing attachment and
// the policy, and is activated last: a failure on the way leaves it pending, and AWS's next event (or the async
// retry) finishes the work.
//
// Every step is idempotent and nothing is kept between invocations, so the same event processed twice, or two
// copies processed at once, end in the same state without error.
type Handler struct {
	IoT    IoTAPI
	Config Config
	Now    func() time.Time
	Log    *slog.Logger // default: slog.Default()

	// The CA certificate, read once per process: a registered CA certificate never changes under its id (a new CA
	// is a new id, and a new configuration). Nothing else outlives an invocation.
	caMu   sync.Mutex
	caCert *x509.Certificate
}

// Handle processes one registration event.
func (h *Handler) Handle(ctx context.Context, ev Event) (Result, error) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("certificateId", ev.CertificateID, "caCertificateId", ev.CACertificateID)
	if ev.CACertificateID != h.Config.CACertificateID {
		log.Info("event of another CA ignored")
		return Result{Status: "ignored", CertificateID: ev.CertificateID}, nil
	}
	if !certIDRE.MatchString(ev.CertificateID) {
		return Result{}, fmt.Errorf("event certificateId %q is not a certificate id", ev.CertificateID)
	}

	ca, err := h.caCertificate(ctx)
	if err != nil {
		return Result{}, err
	}

	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(ev.CertificateID)})
	if err != nil {
		return Result{}, fmt.Errorf("describe certificate %s: %w", ev.CertificateID, err)
	}
	d := out.CertificateDescription
	if d == nil {
		return Result{}, fmt.Errorf("describe certificate %s: no description", ev.CertificateID)
	}
	if got := aws.ToString(d.CaCertificateId); got != h.Config.CACertificateID {
		// The event named our CA, AWS IoT says otherwise: not ours to activate or revoke.
		log.Warn("certificate registered under another CA ignored", "registeredCaCertificateId", got)
		return Result{Status: "ignored", CertificateID: ev.CertificateID}, nil
	}
	arn := aws.ToString(d.CertificateArn)
	switch d.Status {
	case iottypes.CertificateStatusRevoked:
		log.Warn("certificate already revoked")
		return Result{Status: "revoked", CertificateID: ev.CertificateID}, nil
	case iottypes.CertificateStatusPendingActivation, iottypes.CertificateStatusActive:
	default:
		// INACTIVE (an operator's decision) and the transfer states are left alone.
		log.Info("certificate left in its status", "status", string(d.Status))
		return Result{Status: "ignored", CertificateID: ev.CertificateID}, nil
	}

	thing, notBefore, reason := h.verify([]byte(aws.ToString(d.CertificatePem)), ca)
	if reason == "" && !notBefore.IsZero() {
		log.Warn("certificate not valid yet, within the clock skew: left pending, the invocation is retried",
			"notBefore", notBefore.UTC().Format(time.RFC3339), "maxClockSkew", MaxClockSkew.String())
		return Result{}, &NotYetValidError{CertificateID: ev.CertificateID, NotBefore: notBefore}
	}
	if reason != "" {
		log.Error("certificate refused", "reason", reason, "status", string(d.Status))
		if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{
			CertificateId: aws.String(ev.CertificateID), NewStatus: iottypes.CertificateStatusRevoked,
		}); err != nil {
			return Result{}, fmt.Errorf("revoke refused certificate %s (%s): %w", ev.CertificateID, reason, err)
		}
		metrics.Refuse(metrics.CapD, refusalReason(reason))
		return Result{}, &RefusedError{CertificateID: ev.CertificateID, Reason: reason}
	}
	log = log.With("thingName", thing)

	if err := h.ensureThing(ctx, thing); err != nil {
		return Result{}, err
	}
	if _, err := h.IoT.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{
		ThingName: aws.String(thing), Principal: aws.String(arn),
	}); err != nil {
		return Result{}, fmt.Errorf("attach certificate %s to thing %s: %w", ev.CertificateID, thing, err)
	}
	if _, err := h.IoT.AttachPolicy(ctx, &iot.AttachPolicyInput{
		PolicyName: aws.String(h.Config.PolicyName), Target: aws.String(arn),
	}); err != nil {
		return Result{}, fmt.Errorf("attach policy %s to certificate %s: %w", h.Config.PolicyName, ev.CertificateID, err)
	}
	if d.Status != iottypes.CertificateStatusActive {
		if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{
			CertificateId: aws.String(ev.CertificateID), NewStatus: iottypes.CertificateStatusActive,
		}); err != nil {
			return Result{}, fmt.Errorf("activate certificate %s: %w", ev.CertificateID, err)
		}
		h.activated(ev)
	}
	log.Info("certificate registered", "policyName", h.Config.PolicyName)
	return Result{Status: "activated", CertificateID: ev.CertificateID, ThingName: thing}, nil
}

// caCertificate returns the configured CA's certificate, read with DescribeCACertificate on first use. A failure
// is not remembered: the next event tries again.
func (h *Handler) caCertificate(ctx context.Context) (*x509.Certificate, error) {
	h.caMu.Lock()
	defer h.caMu.Unlock()
	if h.caCert != nil {
		return h.caCert, nil
	}
	out, err := h.IoT.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(h.Config.CACertificateID)})
	if err != nil {
		return nil, fmt.Errorf("describe CA certificate %s: %w", h.Config.CACertificateID, err)
	}
	if out.CertificateDescription == nil {
		return nil, fmt.Errorf("describe CA certificate %s: no description", h.Config.CACertificateID)
	}
	ca, err := parseCertificate([]byte(aws.ToString(out.CertificateDescription.CertificatePem)))
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", h.Config.CACertificateID, err)
	}
	h.caCert = ca
	return ca, nil
}

// ensureThing creates the thing when it does not exist. A thing made meanwhile (a concurrent copy of the event, or a
// replayed CreateThing with attributes) counts as existing.
func (h *Handler) ensureThing(ctx context.Context, name string) error {
	_, err := h.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)})
	if err == nil {
		return nil
	}
	var nf *iottypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return fmt.Errorf("describe thing %s: %w", name, err)
	}
	_, err = h.IoT.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name),
		// read back by cert-report
		AttributePayload: &iottypes.AttributePayload{Attributes: map[string]string{capability.ThingAttribute: capability.MultiRegion}}})
	var exists *iottypes.ResourceAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create thing %s: %w", name, err)
	}
	return nil
}

// verify checks the device certificate against the CA and the naming rules. It returns the thing name, or the
// reason of a refusal. A certificate that passes every check but starts to be valid within MaxClockSkew from now
// returns its NotBefore as early (not a refusal).
func (h *Handler) verify(certPEM []byte, ca *x509.Certificate) (thing string, early time.Time, reason string) {
	thing, reason = h.check(certPEM, ca, &early)
	return thing, early, reason
}

func (h *Handler) check(certPEM []byte, ca *x509.Certificate, early *time.Time) (string, string) {
	cert, err := parseCertificate(certPEM)
	if err != nil {
		return "", err.Error()
	}
	if !bytes.Equal(cert.RawIssuer, ca.RawSubject) {
		return "", fmt.Sprintf("issuer %q is not the CA %q", cert.Issuer, ca.Subject)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return "", fmt.Sprintf("not signed by the CA's key: %v", err)
	}
	now := h.now()
	if now.Before(cert.NotBefore) && cert.NotBefore.Sub(now) <= MaxClockSkew && !now.After(cert.NotAfter) {
		*early = cert.NotBefore // every other check must still pass: a forgery is revoked whatever its dates
	} else if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", fmt.Sprintf("not valid now (%s): valid from %s to %s", now.UTC().Format(time.RFC3339),
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(ca.NotBefore) || now.After(ca.NotAfter) {
		return "", "the CA certificate is not valid now"
	}
	if r := h.keyReason(cert); r != "" {
		return "", r
	}
	if cert.BasicConstraintsValid && cert.IsCA {
		return "", "is a CA certificate"
	}
	if cert.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return "", "its key usage allows signing certificates"
	}
	if len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
		client := false
		for _, u := range cert.ExtKeyUsage {
			client = client || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
		}
		if !client {
			return "", "its extended key usage does not allow client authentication"
		}
	}
	// Exactly one attribute, CN: with two CNs x509 shows one and AWS IoT's provisioning may bind the other.
	cn, err := pki.SubjectCommonName(cert.RawSubject)
	if err != nil {
		return "", err.Error()
	}
	if err := naming.ThingName(cn); err != nil {
		return "", "subject CN: " + err.Error()
	}
	if p := h.Config.ThingNamePattern; p != nil && !p.MatchString(cn) {
		return "", fmt.Sprintf("thing name %q does not match %s", cn, p)
	}
	return cn, ""
}

func (h *Handler) keyReason(cert *x509.Certificate) string {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < h.Config.MinRSABits {
			return fmt.Sprintf("RSA key of %d bits is weaker than %d", n, h.Config.MinRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Sprintf("elliptic curve %s is not accepted", k.Curve.Params().Name)
		}
	default:
		return fmt.Sprintf("key type %T is not accepted: use RSA or ECDSA", cert.PublicKey)
	}
	return ""
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// parseCertificate reads the first PEM certificate of data.
func parseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}
