package devrot

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/pki"
)

// IoTAPI is the part of the AWS IoT client the functions use.
type IoTAPI interface {
	DescribeJob(context.Context, *iot.DescribeJobInput, ...func(*iot.Options)) (*iot.DescribeJobOutput, error)
	DescribeJobExecution(context.Context, *iot.DescribeJobExecutionInput, ...func(*iot.Options)) (*iot.DescribeJobExecutionOutput, error)
	CancelJobExecution(context.Context, *iot.CancelJobExecutionInput, ...func(*iot.Options)) (*iot.CancelJobExecutionOutput, error)
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	ListPrincipalThings(context.Context, *iot.ListPrincipalThingsInput, ...func(*iot.Options)) (*iot.ListPrincipalThingsOutput, error)
	ListAttachedPolicies(context.Context, *iot.ListAttachedPoliciesInput, ...func(*iot.Options)) (*iot.ListAttachedPoliciesOutput, error)
	CreateCertificateFromCsr(context.Context, *iot.CreateCertificateFromCsrInput, ...func(*iot.Options)) (*iot.CreateCertificateFromCsrOutput, error)
	AttachPolicy(context.Context, *iot.AttachPolicyInput, ...func(*iot.Options)) (*iot.AttachPolicyOutput, error)
	DetachPolicy(context.Context, *iot.DetachPolicyInput, ...func(*iot.Options)) (*iot.DetachPolicyOutput, error)
	AttachThingPrincipal(context.Context, *iot.AttachThingPrincipalInput, ...func(*iot.Options)) (*iot.AttachThingPrincipalOutput, error)
	DetachThingPrincipal(context.Context, *iot.DetachThingPrincipalInput, ...func(*iot.Options)) (*iot.DetachThingPrincipalOutput, error)
	UpdateCertificate(context.Context, *iot.UpdateCertificateInput, ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	DeleteCertificate(context.Context, *iot.DeleteCertificateInput, ...func(*iot.Options)) (*iot.DeleteCertificateOutput, error)
	RegisterCertificate(context.Context, *iot.RegisterCertificateInput, ...func(*iot.Options)) (*iot.RegisterCertificateOutput, error)
}

// PCAAPI is the part of the AWS Private CA client the functions use.
type PCAAPI interface {
	IssueCertificate(context.Context, *acmpca.IssueCertificateInput, ...func(*acmpca.Options)) (*acmpca.IssueCertificateOutput, error)
	GetCertificate(context.Context, *acmpca.GetCertificateInput, ...func(*acmpca.Options)) (*acmpca.GetCertificateOutput, error)
	RevokeCertificate(context.Context, *acmpca.RevokeCertificateInput, ...func(*acmpca.Options)) (*acmpca.RevokeCertificateOutput, error)
}

// Config is what both functions are configured with.
type Config struct {
	// Table is the rotation table.
	Table string
	// TemplateARN is the rotation job template: a job made from another template (or none) is refused.
	TemplateARN string
	// CACertificateID is the AWS IoT id of the Private CA's registered CA certificate (multi-region JITR devices);
	// empty when the deployment has no such devices.
	CACertificateID string
	// PCAARN is the Private CA that issued those devices' certificates.
	PCAARN string
	// SigningAlgorithm for IssueCertificate. Default SHA256WITHRSA.
	SigningAlgorithm string
	// ValidityDays of a certificate the Private CA issues. Default 365.
	ValidityDays int64
	// ConfirmTimeout: a rotation not confirmed this long after its CSR is aborted by the sweep. Default 1 hour.
	ConfirmTimeout time.Duration
	// Grace between the confirmation and the revocation of the old certificate. Default 7 days.
	Grace time.Duration
}

// Defaults.
const (
	DefaultConfirmTimeout = time.Hour
	DefaultGrace          = 7 * 24 * time.Hour
	DefaultValidityDays   = 365
)

func (c Config) withDefaults() Config {
	if c.SigningAlgorithm == "" {
		c.SigningAlgorithm = "SHA256WITHRSA"
	}
	if c.ValidityDays == 0 {
		c.ValidityDays = DefaultValidityDays
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	return c
}

// CSREvent is what the CSR rule (wire.CSRRuleSQL) passes to the signer.
type CSREvent struct {
	Principal string `json:"principal"`
	ThingName string `json:"thingName"`
	JobID     string `json:"jobId"`
	CSR       string `json:"csr"`
}

// Result says what a function did with one event: Status is a word per outcome, Reason the refusal's reason.
type Result struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// refusal is a request that is not served. It is logged, answered and counted (metric Refused of capability F, with
// why as its Reason: one of a fixed set, never text from the request); it is not an invocation error, so the
// asynchronous invocation is not retried.
type refusal struct {
	reason string
	why    metrics.Reason
}

func (r *refusal) Error() string { return r.reason }

func refuse(why metrics.Reason, format string, args ...any) error {
	return &refusal{reason: fmt.Sprintf(format, args...), why: why}
}

// awsIoTIssuer is the issuer of the certificates AWS IoT signs (CreateCertificateFromCsr, CreateKeysAndCertificate).
var awsIoTIssuer = pkix.Name{
	Country: []string{"US"}, Province: []string{"Washington"}, Locality: []string{"Seattle"},
	Organization: []string{"Amazon.com Inc."}, OrganizationalUnit: []string{"Amazon Web Services"},
}

// Signer issues the new certificate of a rotation.
//
// For a CSR event it checks, each refusal with its own reason and nothing changed:
//   - the thing name, job id and principal are well formed;
//   - the job was made from the rotation template, and the thing's execution of it is IN_PROGRESS;
//   - the principal (the certificate the CSR was sent with) is ACTIVE and attached to the thing;
//   - the CSR is one PEM block with a valid signature, a strong key that differs from the old certificate's, and the
//     subject exactly CN=<thing> (internal/pki, as the vending API's CSR mode);
//   - the old certificate was issued by AWS IoT or by our Private CA: the new one comes from the same issuer.
//
// It then records the rotation (a conditional write: one CSR per job), issues, and publishes the certificate on the
// thing's certificate topic. A repeated CSR of the same job gets the same certificate again; another CSR for the
// same job is refused. AWS IoT certificates get the old certificate's policies and thing before they are activated;
// Private CA certificates are registered by JITR when the device first connects with them.
type Signer struct {
	IoT       IoTAPI
	PCA       PCAAPI
	Store     *Store
	Publisher Publisher
	Config    Config
	Now       func() time.Time
	Sleep     func(time.Duration) // between GetCertificate attempts; default time.Sleep
	Log       *slog.Logger
}

// Handle serves one CSR event.
func (h *Signer) Handle(ctx context.Context, ev CSREvent) (Result, error) {
	log := logger(h.Log).With("thingName", ev.ThingName, "jobId", ev.JobID, "principal", ev.Principal)
	res, err := h.handle(ctx, ev, log)
	return outcome(res, err, log)
}

func (h *Signer) handle(ctx context.Context, ev CSREvent, log *slog.Logger) (Result, error) {
	cfg := h.Config.withDefaults()
	if err := checkSender(ev.ThingName, ev.JobID, ev.Principal); err != nil {
		return Result{}, err
	}
	if err := jobInProgress(ctx, h.IoT, cfg.TemplateARN, ev.ThingName, ev.JobID); err != nil {
		return Result{}, err
	}
	old, err := attachedCertificate(ctx, h.IoT, ev.Principal, ev.ThingName)
	if err != nil {
		return Result{}, err
	}
	// From here on the sender is the thing itself: refusals are also told to it.
	res, err := h.issue(ctx, ev, old, cfg, log)
	var r *refusal
	if errors.As(err, &r) {
		if perr := publishJSON(ctx, h.Publisher, wire.CertificateTopic(ev.ThingName), wire.CertificateMessage{JobID: ev.JobID, Status: wire.StatusRefused, Reason: r.reason}); perr != nil {
			return Result{}, perr
		}
	}
	return res, err
}

func (h *Signer) issue(ctx context.Context, ev CSREvent, old *iottypes.CertificateDescription, cfg Config, log *slog.Logger) (Result, error) {
	csr, canonical, err := pki.ParseDeviceCSR([]byte(ev.CSR))
	if err != nil {
		return Result{}, refuse(metrics.ReasonInvalidCSR, "%v", err)
	}
	if err := pki.CheckDeviceSubject(csr, ev.ThingName, false); err != nil {
		return Result{}, refuse(metrics.ReasonInvalidCSR, "%v", err)
	}
	oldCert, err := pki.ParseCertificate([]byte(aws.ToString(old.CertificatePem)))
	if err != nil {
		return Result{}, fmt.Errorf("certificate %s: %w", ev.Principal, err)
	}
	if bytes.Equal(oldCert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
		return Result{}, refuse(metrics.ReasonInvalidCSR, "the csr reuses the key of the current certificate: make a new key")
	}
	issuer, err := h.issuerOf(old, oldCert, cfg)
	if err != nil {
		return Result{}, err
	}
	digest := wire.CSRDigest(canonical)
	now := h.now()

	r, ok, err := h.Store.Get(ctx, ev.ThingName, ev.JobID)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		r = Rotation{Thing: ev.ThingName, JobID: ev.JobID, Status: StateIssuing, CSRSha256: digest, OldCertID: ev.Principal,
			OldFromPCA: issuer == IssuerPCA, Issuer: issuer, DueAt: now.Add(cfg.ConfirmTimeout)}
		switch err := h.Store.Create(ctx, r, now); {
		case errors.Is(err, errConflict):
			if r, _, err = h.Store.Get(ctx, ev.ThingName, ev.JobID); err != nil {
				return Result{}, err
			}
		case err != nil:
			return Result{}, err
		}
	}
	if r.CSRSha256 != digest {
		return Result{}, refuse(metrics.ReasonConflict, "job %s already has another csr: a job rotates one key", ev.JobID)
	}
	if r.OldCertID != ev.Principal {
		return Result{}, refuse(metrics.ReasonUnauthorized, "the csr of job %s was sent with certificate %s, not %s", ev.JobID, r.OldCertID, ev.Principal)
	}
	switch r.Status {
	case StateIssuing:
		if r, err = h.issueNew(ctx, r, csr, canonical, cfg, now); err != nil {
			return Result{}, err
		}
		metrics.Inc(metrics.CapF, metrics.CertificatesIssued)
	case StateIssued:
		log.Info("csr repeated: certificate sent again")
	default:
		return Result{}, refuse(metrics.ReasonConflict, "rotation of job %s is %s", ev.JobID, r.Status)
	}
	msg := wire.CertificateMessage{JobID: ev.JobID, Status: wire.StatusIssued, CertificatePEM: r.NewCertPEM, CertificateID: r.NewCertID}
	if err := publishJSON(ctx, h.Publisher, wire.CertificateTopic(ev.ThingName), msg); err != nil {
		return Result{}, err
	}
	log.Info("certificate issued", "issuer", r.Issuer, "certificateId", r.NewCertID)
	return Result{Status: "issued"}, nil
}

// issuerOf says who issued the old certificate, and so who issues the new one.
func (h *Signer) issuerOf(old *iottypes.CertificateDescription, cert *x509.Certificate, cfg Config) (string, error) {
	ca := aws.ToString(old.CaCertificateId)
	switch {
	case ca != "" && ca == cfg.CACertificateID && cfg.PCAARN != "":
		return IssuerPCA, nil
	case ca == "" && old.CertificateMode != iottypes.CertificateModeSniOnly && cert.Issuer.String() == awsIoTIssuer.String():
		return IssuerIoT, nil
	}
	return "", refuse(metrics.ReasonUntrustedIssuer, "certificate %s was not issued by AWS IoT or by this deployment's Private CA: renew it the way it was issued", aws.ToString(old.CertificateId))
}

// issueNew issues from an ISSUING rotation and moves it to ISSUED. Each step can run again after a failure.
func (h *Signer) issueNew(ctx context.Context, r Rotation, csr *x509.CertificateRequest, canonical []byte, cfg Config, now time.Time) (Rotation, error) {
	switch r.Issuer {
	case IssuerPCA:
		token := r.CSRSha256[:36] // IssueCertificate's idempotency token: at most 36 characters
		out, err := h.PCA.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
			CertificateAuthorityArn: aws.String(cfg.PCAARN), Csr: canonical,
			SigningAlgorithm: pcatypes.SigningAlgorithm(cfg.SigningAlgorithm),
			Validity:         &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(cfg.ValidityDays)},
			IdempotencyToken: aws.String(token),
		})
		if err != nil {
			return r, fmt.Errorf("issue certificate: %w", err)
		}
		certPEM, chain, err := h.getCertificate(ctx, cfg.PCAARN, aws.ToString(out.CertificateArn))
		if err != nil {
			return r, err
		}
		cert, err := pki.ParseCertificate([]byte(certPEM))
		if err != nil {
			return r, fmt.Errorf("issued certificate: %w", err)
		}
		// The device presents its certificate with the CA's chain: AWS IoT auto-registers only what it can chain.
		full := strings.TrimSpace(certPEM) + "\n"
		if chain != "" {
			full += strings.TrimSpace(chain) + "\n"
		}
		r.NewCertID, r.NewCertPEM, r.PCACertARN = pki.CertificateID(cert.Raw), full, aws.ToString(out.CertificateArn)
	case IssuerIoT:
		if r.NewCertID == "" {
			out, err := h.IoT.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{
				CertificateSigningRequest: aws.String(string(canonical)), SetAsActive: false,
			})
			if err != nil {
				return r, fmt.Errorf("create certificate from csr: %w", err)
			}
			r.NewCertID, r.NewCertPEM = aws.ToString(out.CertificateId), aws.ToString(out.CertificatePem)
			// Record the certificate before it gets any right: a rotation that stops now is undone by the sweep.
			if err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateIssuing}, "", map[string]types.AttributeValue{
				attrNew: s(r.NewCertID), attrNewPEM: s(r.NewCertPEM)}, nil, now); err != nil {
				_, _ = h.IoT.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: out.CertificateId})
				return r, fmt.Errorf("record new certificate: %w", err)
			}
		}
		if err := h.grantLikeOld(ctx, r); err != nil {
			return r, err
		}
	}
	if err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateIssuing}, StateIssued, map[string]types.AttributeValue{
		attrNew: s(r.NewCertID), attrNewPEM: s(r.NewCertPEM), attrPCAArn: s(r.PCACertARN),
		AttrDueAt: n(now.Add(cfg.ConfirmTimeout).Unix())}, nil, now); err != nil {
		if errors.Is(err, errConflict) {
			return r, refuse(metrics.ReasonConflict, "rotation of job %s changed while issuing", r.JobID)
		}
		return r, err
	}
	r.Status = StateIssued
	return r, nil
}

// grantLikeOld gives the new AWS IoT certificate the old one's policies and thing, then activates it.
func (h *Signer) grantLikeOld(ctx context.Context, r Rotation) error {
	oldARN, newARN := certARN(ctx, h.IoT, r.OldCertID), certARN(ctx, h.IoT, r.NewCertID)
	if oldARN == "" || newARN == "" {
		return fmt.Errorf("describe certificates %s and %s failed", r.OldCertID, r.NewCertID)
	}
	policies, err := attachedPolicies(ctx, h.IoT, oldARN)
	if err != nil {
		return err
	}
	for _, p := range policies {
		if _, err := h.IoT.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(p), Target: aws.String(newARN)}); err != nil {
			return fmt.Errorf("attach policy %s to %s: %w", p, r.NewCertID, err)
		}
	}
	if _, err := h.IoT.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(r.Thing), Principal: aws.String(newARN)}); err != nil {
		return fmt.Errorf("attach %s to thing %s: %w", r.NewCertID, r.Thing, err)
	}
	if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(r.NewCertID), NewStatus: iottypes.CertificateStatusActive}); err != nil {
		return fmt.Errorf("activate %s: %w", r.NewCertID, err)
	}
	return nil
}

func (h *Signer) getCertificate(ctx context.Context, caARN, certARN string) (cert, chain string, err error) {
	sleep := h.Sleep
	if sleep == nil {
		sleep = time.Sleep
	}
	delay := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		out, err := h.PCA.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(caARN), CertificateArn: aws.String(certARN)})
		var inProgress *pcatypes.RequestInProgressException
		if errors.As(err, &inProgress) && attempt < 8 {
			sleep(delay)
			delay *= 2
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("get certificate %s: %w", certARN, err)
		}
		return aws.ToString(out.Certificate), aws.ToString(out.CertificateChain), nil
	}
}

func (h *Signer) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// Shared checks.

// jobInProgress requires the job to come from the rotation template and the thing's execution to be IN_PROGRESS.
func jobInProgress(ctx context.Context, c IoTAPI, templateARN, thing, job string) error {
	j, err := c.DescribeJob(ctx, &iot.DescribeJobInput{JobId: aws.String(job)})
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return refuse(metrics.ReasonUnauthorized, "job %s does not exist", job)
	}
	if err != nil {
		return fmt.Errorf("describe job %s: %w", job, err)
	}
	if j.Job == nil || aws.ToString(j.Job.JobTemplateArn) != templateARN {
		return refuse(metrics.ReasonUnauthorized, "job %s was not made from the rotation template", job)
	}
	x, err := c.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{JobId: aws.String(job), ThingName: aws.String(thing)})
	if errors.As(err, &nf) {
		return refuse(metrics.ReasonUnauthorized, "job %s has no execution for thing %s", job, thing)
	}
	if err != nil {
		return fmt.Errorf("describe job execution %s/%s: %w", job, thing, err)
	}
	if x.Execution == nil || x.Execution.Status != iottypes.JobExecutionStatusInProgress {
		st := ""
		if x.Execution != nil {
			st = string(x.Execution.Status)
		}
		return refuse(metrics.ReasonUnauthorized, "job execution %s/%s is %s, not IN_PROGRESS", job, thing, st)
	}
	return nil
}

// attachedCertificate requires the certificate to be ACTIVE and attached to the thing, and returns its description.
func attachedCertificate(ctx context.Context, c IoTAPI, id, thing string) (*iottypes.CertificateDescription, error) {
	out, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, refuse(metrics.ReasonUnauthorized, "certificate %s is not registered", id)
	}
	if err != nil {
		return nil, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	d := out.CertificateDescription
	if d == nil || d.Status != iottypes.CertificateStatusActive {
		return nil, refuse(metrics.ReasonUnauthorized, "certificate %s is not ACTIVE", id)
	}
	things, err := principalThings(ctx, c, aws.ToString(d.CertificateArn))
	if err != nil {
		return nil, err
	}
	if !slices.Contains(things, thing) {
		return nil, refuse(metrics.ReasonUnauthorized, "certificate %s is not attached to thing %s", id, thing)
	}
	return d, nil
}

func principalThings(ctx context.Context, c IoTAPI, arn string) ([]string, error) {
	var out []string
	p := iot.NewListPrincipalThingsPaginator(c, &iot.ListPrincipalThingsInput{Principal: aws.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list things of %s: %w", arn, err)
		}
		out = append(out, page.Things...)
	}
	return out, nil
}

func attachedPolicies(ctx context.Context, c IoTAPI, arn string) ([]string, error) {
	var out []string
	p := iot.NewListAttachedPoliciesPaginator(c, &iot.ListAttachedPoliciesInput{Target: aws.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list policies of %s: %w", arn, err)
		}
		for _, pol := range page.Policies {
			out = append(out, aws.ToString(pol.PolicyName))
		}
	}
	return out, nil
}

// certARN is the certificate's ARN, built as AWS IoT builds it from the id (arn:aws:iot:<region>:<account>:cert/<id>)
// after one DescribeCertificate; "" when the certificate cannot be described.
func certARN(ctx context.Context, c IoTAPI, id string) string {
	out, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if err != nil || out.CertificateDescription == nil {
		return ""
	}
	return aws.ToString(out.CertificateDescription.CertificateArn)
}

// checkSender refuses a malformed thing name, job id or principal (the rule's values).
func checkSender(thing, job, principal string) error {
	if err := wire.CheckThing(thing); err != nil {
		return refuse(metrics.ReasonMalformed, "%v", err)
	}
	if err := wire.CheckJobID(job); err != nil {
		return refuse(metrics.ReasonMalformed, "%v", err)
	}
	if err := wire.CheckCertificateID(principal); err != nil {
		return refuse(metrics.ReasonMalformed, "principal: %v", err)
	}
	return nil
}

// outcome logs a result: a refusal is answered and not an invocation error; any other error is returned for the
// asynchronous invocation to retry.
func outcome(res Result, err error, log *slog.Logger) (Result, error) {
	var r *refusal
	if errors.As(err, &r) {
		log.Warn("refused", "reason", r.reason)
		metrics.Refuse(metrics.CapF, r.why)
		return Result{Status: "refused", Reason: r.reason}, nil
	}
	if err != nil {
		log.Error("failed", "error", err.Error())
	}
	return res, err
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
