package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/pki"
)

// Resource types served by this function.
const (
	TypeSigner   = "Custom::CertificateSigner"
	TypeReleaser = "Custom::CertificateReleaser"
)

// Validity bounds, in days, for the ValidityDays property.
const (
	DefaultValidityDays = 365
	MaxValidityDays     = 36500 // the stack accepts validity_days up to this bound too
)

// maxResponseData keeps the Provider framework's answer to CloudFormation under its 4096-byte limit
// (the response also carries ids, the status and the stack's names).
const maxResponseData = 3000

// IoTAPI is the part of the AWS IoT client the handler uses. The function's role grants exactly these.
type IoTAPI interface {
	DescribeEndpoint(ctx context.Context, in *iot.DescribeEndpointInput, opts ...func(*iot.Options)) (*iot.DescribeEndpointOutput, error)
	DescribeCertificate(ctx context.Context, in *iot.DescribeCertificateInput, opts ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	UpdateCertificate(ctx context.Context, in *iot.UpdateCertificateInput, opts ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	ListPrincipalThings(ctx context.Context, in *iot.ListPrincipalThingsInput, opts ...func(*iot.Options)) (*iot.ListPrincipalThingsOutput, error)
	DetachThingPrincipal(ctx context.Context, in *iot.DetachThingPrincipalInput, opts ...func(*iot.Options)) (*iot.DetachThingPrincipalOutput, error)
	ListAttachedPolicies(ctx context.Context, in *iot.ListAttachedPoliciesInput, opts ...func(*iot.Options)) (*iot.ListAttachedPoliciesOutput, error)
	DetachPolicy(ctx context.Context, in *iot.DetachPolicyInput, opts ...func(*iot.Options)) (*iot.DetachPolicyOutput, error)
}

// SSMAPI is the part of the SSM client the handler uses to remember which certificate it issued for which
// properties.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, opts ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

// Request is the custom-resource event as the CDK Provider framework passes it to onEvent.
type Request struct {
	RequestType           string         `json:"RequestType"`
	ResourceType          string         `json:"ResourceType"`
	LogicalResourceID     string         `json:"LogicalResourceId"`
	PhysicalResourceID    string         `json:"PhysicalResourceId,omitempty"`
	RequestID             string         `json:"RequestId"`
	StackID               string         `json:"StackId"`
	ResourceProperties    map[string]any `json:"ResourceProperties"`
	OldResourceProperties map[string]any `json:"OldResourceProperties,omitempty"`
}

// Response is what onEvent returns to the Provider framework.
type Response struct {
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	Data               map[string]string `json:"Data,omitempty"`
}

// Handler signs a partner's CSR into the cross-account certificate (Custom::CertificateSigner) and deactivates
// that certificate before CloudFormation deletes it (Custom::CertificateReleaser).
//
// Custom::CertificateSigner properties: CSR (PEM), AllowedTopic (decoded topic), ValidityDays (default "365",
// at most 36500). Data returned: "pem" (the certificate) and "fingerprint" (its AWS IoT certificate id), which is
// also the physical id. Each certificate issued is remembered in an SSM parameter named after the stack, the
// logical id and a hash of the properties (see ParameterPath), so that an update rollback, which sends the old
// properties back, gets the certificate issued for them instead of a third one; Delete forgets it.
//
// Custom::CertificateReleaser properties: CertificateId. On Delete it detaches every thing and policy attached to
// the certificate (also those attached outside the stack, which would make the delete fail), says what it
// detached, and deactivates an ACTIVE certificate.
//
// An error makes the Provider framework report FAILED with the error text as the reason.
type Handler struct {
	IoT IoTAPI
	// SSM keeps the record of issued certificates. Nil: nothing is remembered, and an update rollback issues anew.
	SSM SSMAPI
	// ParameterPath is the SSM path below which issued certificates are remembered. Default: DefaultParameterPath.
	ParameterPath string
	Now           func() time.Time
}

// Handle dispatches on the resource type.
func (h *Handler) Handle(ctx context.Context, req Request) (Response, error) {
	log := slog.With("requestType", req.RequestType, "resourceType", req.ResourceType,
		"logicalResourceId", req.LogicalResourceID, "physicalResourceId", req.PhysicalResourceID)
	switch req.RequestType {
	case "Create", "Update", "Delete":
	default:
		return Response{}, fmt.Errorf("unknown request type %q", req.RequestType)
	}
	var (
		resp Response
		err  error
	)
	switch req.ResourceType {
	case TypeSigner:
		resp, err = h.sign(ctx, log, req)
	case TypeReleaser:
		resp, err = h.release(ctx, log, req)
	default:
		return Response{}, fmt.Errorf("unknown resource type %q: want %s or %s", req.ResourceType, TypeSigner, TypeReleaser)
	}
	if err != nil {
		log.Error("request failed", "err", err)
		return Response{}, err
	}
	log.Info("request done", "result", resp.PhysicalResourceID)
	return resp, nil
}

// signerProps are the Custom::CertificateSigner properties.
type signerProps struct {
	csr          string
	allowedTopic string
	validityDays int
}

func parseSignerProps(p map[string]any) (signerProps, error) {
	var sp signerProps
	var err error
	if sp.csr, err = stringProp(p, "CSR", true); err != nil {
		return sp, err
	}
	if sp.allowedTopic, err = stringProp(p, "AllowedTopic", true); err != nil {
		return sp, err
	}
	days, err := stringProp(p, "ValidityDays", false)
	if err != nil {
		return sp, err
	}
	sp.validityDays = DefaultValidityDays
	if days != "" {
		n, err := strconv.Atoi(strings.TrimSpace(days))
		if err != nil || n < 1 || n > MaxValidityDays {
			return sp, fmt.Errorf("property ValidityDays is %q: want a whole number of days from 1 to %d", days, MaxValidityDays)
		}
		sp.validityDays = n
	}
	return sp, nil
}

// stringProp reads a property. CloudFormation passes every scalar as a string; numbers are tolerated.
func stringProp(p map[string]any, key string, required bool) (string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("property %s is required", key)
		}
		return "", nil
	}
	switch x := v.(type) {
	case string:
		if required && strings.TrimSpace(x) == "" {
			return "", fmt.Errorf("property %s must not be empty", key)
		}
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("property %s must be a string, got %T", key, v)
	}
}

func (h *Handler) sign(ctx context.Context, log *slog.Logger, req Request) (Response, error) {
	if req.RequestType == "Delete" {
		// The certificate itself is an AWS::IoT::Certificate that CloudFormation deletes; the signing key is gone.
		// What is forgotten is the record that let an update roll back to this certificate.
		if props, err := parseSignerProps(req.ResourceProperties); err == nil {
			h.forget(ctx, log, req, props)
		}
		return Response{PhysicalResourceID: req.PhysicalResourceID}, nil
	}
	props, err := parseSignerProps(req.ResourceProperties)
	if err != nil {
		return Response{}, err
	}
	if req.RequestType == "Update" && isCertificateID(req.PhysicalResourceID) {
		old, err := parseSignerProps(req.OldResourceProperties)
		if err == nil && sameSigning(old, props) {
			resp, found, err := h.existing(ctx, req.PhysicalResourceID)
			if err != nil {
				return Response{}, err
			}
			if found {
				log.Info("properties unchanged: keeping the certificate")
				return resp, nil
			}
			log.Warn("certificate no longer exists in AWS IoT: issuing a new one")
		} else {
			// An update rollback sends the old properties back: the certificate issued for them is still
			// registered, and CloudFormation restores that registration, so it is the answer.
			resp, found, err := h.recall(ctx, req, props)
			if err != nil {
				return Response{}, err
			}
			if found {
				log.Info("returning the certificate issued earlier for these properties (update rollback)",
					"certificateId", resp.PhysicalResourceID)
				return resp, nil
			}
		}
	}
	resp, err := h.issue(ctx, props)
	if err != nil {
		return Response{}, err
	}
	if err := h.remember(ctx, req, props, resp.Data["pem"]); err != nil {
		return Response{}, err
	}
	metrics.Inc(metrics.CapA, metrics.CertificatesIssued)
	return resp, nil
}

// sameSigning reports whether two property sets would produce an equivalent certificate.
func sameSigning(a, b signerProps) bool {
	return strings.TrimSpace(a.csr) == strings.TrimSpace(b.csr) &&
		pki.DecodeTopic(a.allowedTopic) == pki.DecodeTopic(b.allowedTopic) &&
		a.validityDays == b.validityDays
}

// existing returns the stored certificate's data; found is false when AWS IoT no longer has it.
func (h *Handler) existing(ctx context.Context, id string) (Response, bool, error) {
	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	if out.CertificateDescription == nil || aws.ToString(out.CertificateDescription.CertificatePem) == "" {
		return Response{}, false, fmt.Errorf("describe certificate %s: no certificate PEM in the answer", id)
	}
	cert, err := pki.ParseCertificate([]byte(aws.ToString(out.CertificateDescription.CertificatePem)))
	if err != nil {
		return Response{}, false, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	if got := pki.CertificateID(cert.Raw); got != id {
		return Response{}, false, fmt.Errorf("describe certificate %s: the PEM returned is certificate %s", id, got)
	}
	// Re-encode canonically: the same bytes as at issuance whatever line endings the service stored, so the
	// AWS::IoT::Certificate's CertificatePem does not change and CloudFormation does not replace it.
	canonical := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return Response{
		PhysicalResourceID: id,
		Data:               map[string]string{"pem": string(canonical), "fingerprint": id},
	}, true, nil
}

func (h *Handler) issue(ctx context.Context, props signerProps) (Response, error) {
	csr, err := pki.ParseCSR([]byte(props.csr))
	if err != nil {
		metrics.Refuse(metrics.CapA, metrics.ReasonInvalidCSR)
		return Response{}, fmt.Errorf("property CSR: %w", err)
	}
	topic, err := pki.TopicFromCSR(csr)
	if err != nil {
		metrics.Refuse(metrics.CapA, metrics.ReasonInvalidCSR)
		return Response{}, fmt.Errorf("property CSR: %w", err)
	}
	allowed := pki.DecodeTopic(props.allowedTopic)
	// Wildcards are the stack's call (allow_topic_wildcard); reserved topics and policy variables are never granted.
	if err := pki.CheckTopicGrant(allowed, true); err != nil {
		return Response{}, fmt.Errorf("property AllowedTopic: %w", err)
	}
	if allowed != topic {
		return Response{}, fmt.Errorf("property AllowedTopic %q does not match the topic %q in the CSR common name", allowed, topic)
	}
	ep, err := h.IoT.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
	if err != nil {
		return Response{}, fmt.Errorf("describe iot:Data-ATS endpoint: %w", err)
	}
	endpoint := aws.ToString(ep.EndpointAddress)
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	certPEM, id, err := pki.IssueCrossAccount(pki.IssueRequest{
		CSR:      csr,
		Topic:    topic,
		Endpoint: endpoint,
		Validity: time.Duration(props.validityDays) * 24 * time.Hour,
		Now:      now(),
	})
	if err != nil {
		return Response{}, err
	}
	if n := len(certPEM) + len(id); n > maxResponseData {
		return Response{}, fmt.Errorf("certificate PEM is %d bytes, too large for a custom-resource response (4096 bytes in all): use an EC P-256 key", len(certPEM))
	}
	slog.Info("issued certificate", "certificateId", id, "topic", topic, "endpoint", endpoint, "validityDays", props.validityDays)
	return Response{PhysicalResourceID: id, Data: map[string]string{"pem": string(certPEM), "fingerprint": id}}, nil
}

var certIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func isCertificateID(s string) bool { return certIDRE.MatchString(s) }

func (h *Handler) release(ctx context.Context, log *slog.Logger, req Request) (Response, error) {
	id, err := stringProp(req.ResourceProperties, "CertificateId", req.RequestType != "Delete")
	if err != nil {
		return Response{}, err
	}
	if req.RequestType != "Delete" {
		if !isCertificateID(id) {
			return Response{}, fmt.Errorf("property CertificateId %q is not an AWS IoT certificate id (64 lower-case hex characters)", id)
		}
		return Response{PhysicalResourceID: id}, nil
	}
	if !isCertificateID(id) {
		id = req.PhysicalResourceID
	}
	if !isCertificateID(id) {
		// Nothing was ever created under this id (for example, Create failed): nothing to release.
		log.Warn("no certificate id to release")
		return Response{PhysicalResourceID: req.PhysicalResourceID}, nil
	}
	resp := Response{PhysicalResourceID: req.PhysicalResourceID}
	if resp.PhysicalResourceID == "" {
		resp.PhysicalResourceID = id
	}
	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		log.Info("certificate already gone", "certificateId", id)
		return resp, nil
	}
	if err != nil {
		return Response{}, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	if out.CertificateDescription == nil {
		return Response{}, fmt.Errorf("describe certificate %s: no description in the answer", id)
	}
	detached, err := h.detachAll(ctx, aws.ToString(out.CertificateDescription.CertificateArn))
	if err != nil {
		return Response{}, err
	}
	if len(detached.things)+len(detached.policies) > 0 {
		log.Warn("detached from the certificate what was attached to it, so that it can be deleted",
			"certificateId", id, "things", detached.things, "policies", detached.policies)
		resp.Data = map[string]string{
			"detachedThings": strings.Join(detached.things, ","), "detachedPolicies": strings.Join(detached.policies, ","),
		}
	}
	if out.CertificateDescription.Status != types.CertificateStatusActive {
		return resp, nil
	}
	_, err = h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: types.CertificateStatusInactive})
	if errors.As(err, &nf) {
		return resp, nil
	}
	if err != nil {
		return Response{}, fmt.Errorf("deactivate certificate %s: %w", id, err)
	}
	log.Info("deactivated certificate so that it can be deleted", "certificateId", id)
	return resp, nil
}
