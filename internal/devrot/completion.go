package devrot

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
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

// ConfirmEvent is what the confirm rule (wire.ConfirmRuleSQL) passes.
type ConfirmEvent struct {
	Principal string `json:"principal"`
	ThingName string `json:"thingName"`
	JobID     string `json:"jobId"`
}

// JobEvent is AWS IoT's job execution event (https://docs.aws.amazon.com/iot/latest/developerguide/events-jobs.html).
type JobEvent struct {
	EventType string `json:"eventType"`
	Operation string `json:"operation"`
	JobID     string `json:"jobId"`
	ThingARN  string `json:"thingArn"`
	Status    string `json:"status"`
}

// Completion finishes rotations. One function serves three triggers, told apart by the event's shape:
//   - a confirmation (the confirm rule: principal, thingName, jobId): the rotation completes only when principal()
//     is the rotation's NEW certificate, ACTIVE and attached to the thing, and the job execution is IN_PROGRESS.
//     The old certificate is then detached from the thing and set INACTIVE, and the device is told on its
//     certificate topic; the old certificate is revoked after the grace period by the sweep.
//   - a job execution event (the job-events rule): FAILED, TIMED_OUT, CANCELED, REJECTED or REMOVED before the
//     confirmation revokes the new certificate (if one was issued) and leaves the old one untouched; after the
//     confirmation it changes nothing (the device runs on its proven new certificate).
//   - the schedule ({"sweep": true} or an EventBridge "Scheduled Event"): rotations past their confirmation timeout
//     are aborted as above (and the job execution canceled); confirmed rotations past the grace period get their
//     old certificate revoked, and deleted when AWS IoT issued it; unfinished steps of either are finished.
//
// Every step is guarded by a conditional write on the rotation's status, so duplicate and reordered events end in
// the same state. A certificate our Private CA issued is revoked in the Private CA and kept in AWS IoT as REVOKED
// rather than deleted: deleting it would let Just-in-Time Registration register it again on the next connection.
type Completion struct {
	IoT       IoTAPI
	PCA       PCAAPI
	Store     *Store
	Publisher Publisher
	Config    Config
	Now       func() time.Time
	Log       *slog.Logger
	// SweepLimit bounds the rotations one sweep handles (default 500); the next sweep takes the rest.
	SweepLimit int
}

// Handle serves one event of any of the three triggers.
func (h *Completion) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	var probe struct {
		Principal  *string `json:"principal"`
		EventType  string  `json:"eventType"`
		Sweep      bool    `json:"sweep"`
		DetailType string  `json:"detail-type"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Result{}, fmt.Errorf("event is not a JSON object: %w", err)
	}
	log := logger(h.Log)
	var (
		res Result
		err error
	)
	switch {
	case probe.Principal != nil:
		var ev ConfirmEvent
		if err = json.Unmarshal(raw, &ev); err == nil {
			log = log.With("thingName", ev.ThingName, "jobId", ev.JobID, "principal", ev.Principal)
			res, err = h.confirm(ctx, ev, log)
		}
	case probe.EventType == "JOB_EXECUTION":
		var ev JobEvent
		if err = json.Unmarshal(raw, &ev); err == nil {
			log = log.With("jobId", ev.JobID, "thingArn", ev.ThingARN, "jobStatus", ev.Status)
			res, err = h.jobEnded(ctx, ev, log)
		}
	case probe.Sweep || probe.DetailType == "Scheduled Event":
		res, err = h.sweep(ctx, log)
	default:
		return Result{}, errors.New("event is neither a confirmation, a job execution event nor a sweep")
	}
	return outcome(res, err, log)
}

func (h *Completion) confirm(ctx context.Context, ev ConfirmEvent, log *slog.Logger) (Result, error) {
	cfg := h.Config.withDefaults()
	if err := checkSender(ev.ThingName, ev.JobID, ev.Principal); err != nil {
		return Result{}, err
	}
	r, ok, err := h.Store.Get(ctx, ev.ThingName, ev.JobID)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, refuse(metrics.ReasonConflict, "no rotation of job %s for thing %s", ev.JobID, ev.ThingName)
	}
	if r.NewCertID == "" || ev.Principal != r.NewCertID {
		return Result{}, refuse(metrics.ReasonUnauthorized, "confirmation not sent with the new certificate of job %s", ev.JobID)
	}
	now := h.now()
	switch r.Status {
	case StateIssued:
		if err := jobInProgress(ctx, h.IoT, cfg.TemplateARN, r.Thing, r.JobID); err != nil {
			return Result{}, err
		}
		if _, err := attachedCertificate(ctx, h.IoT, r.NewCertID, r.Thing); err != nil {
			return Result{}, err
		}
		retire := now.Add(cfg.Grace)
		switch err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateIssued}, StateConfirmed, map[string]types.AttributeValue{
			attrRetireAfter: n(retire.Unix()), AttrDueAt: n(retire.Unix())}, nil, now); {
		case errors.Is(err, errConflict):
			return h.confirm(ctx, ev, log) // someone moved it: judge again from what is stored
		case err != nil:
			return Result{}, err
		}
		r.Status = StateConfirmed
		metrics.Inc(metrics.CapF, metrics.RotationSucceeded)
	case StateConfirmed, StateRetired:
		log.Info("confirmation repeated")
	default:
		return Result{}, refuse(metrics.ReasonConflict, "rotation of job %s is %s", r.JobID, r.Status)
	}
	if r.Status == StateConfirmed && !r.OldInactive {
		if err := h.deactivateOld(ctx, r, now); err != nil {
			return Result{}, err
		}
	}
	if err := publishJSON(ctx, h.Publisher, wire.CertificateTopic(r.Thing), wire.CertificateMessage{JobID: r.JobID, Status: wire.StatusConfirmed, CertificateID: r.NewCertID}); err != nil {
		return Result{}, err
	}
	log.Info("rotation confirmed by the new certificate", "newCertificateId", r.NewCertID, "oldCertificateId", r.OldCertID)
	return Result{Status: "confirmed"}, nil
}

// deactivateOld detaches the old certificate from the thing and sets it INACTIVE.
func (h *Completion) deactivateOld(ctx context.Context, r Rotation, now time.Time) error {
	arn := certARN(ctx, h.IoT, r.OldCertID)
	if arn != "" {
		if _, err := h.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(r.Thing), Principal: aws.String(arn)}); err != nil && !isNotFound(err) {
			return fmt.Errorf("detach %s from %s: %w", r.OldCertID, r.Thing, err)
		}
		if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(r.OldCertID), NewStatus: iottypes.CertificateStatusInactive}); err != nil && !isNotFound(err) && !isStateError(err) {
			return fmt.Errorf("deactivate %s: %w", r.OldCertID, err)
		}
	}
	err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateConfirmed}, "", map[string]types.AttributeValue{attrOldInactive: b(true)}, nil, now)
	if errors.Is(err, errConflict) {
		return nil
	}
	return err
}

func (h *Completion) jobEnded(ctx context.Context, ev JobEvent, log *slog.Logger) (Result, error) {
	_, thing, ok := strings.Cut(ev.ThingARN, ":thing/")
	if !ok || wire.CheckThing(thing) != nil {
		return Result{}, refuse(metrics.ReasonMalformed, "thingArn %q does not name a thing", ev.ThingARN)
	}
	if err := wire.CheckJobID(ev.JobID); err != nil {
		return Result{}, refuse(metrics.ReasonMalformed, "%v", err)
	}
	if !endedUnsuccessfully(ev.Status) {
		return Result{Status: "ignored"}, nil // SUCCEEDED: the confirmation is what counts
	}
	now := h.now()
	r, found, err := h.Store.Get(ctx, thing, ev.JobID)
	if err != nil {
		return Result{}, err
	}
	if found && r.Status != StateIssuing && r.Status != StateIssued && r.Status != StateAborting {
		return Result{Status: "ignored"}, nil // confirmed, retired or aborted already
	}
	// The event is a message on a topic, not AWS's word: the execution's own status must say it ended. Whether a
	// client can publish on $aws/events/jobExecution/... no page settles (AWS's basic job policy example grants it),
	// so a forged event must not undo another device's rotation. An event read before the status shows it is
	// refused too; the sweep aborts a rotation that is never confirmed.
	x, err := h.IoT.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{JobId: aws.String(ev.JobID), ThingName: aws.String(thing)})
	switch {
	case isNotFound(err) && !found:
		// No such execution (deleted, or never made): no CSR can pass the signer's check, so no tombstone either
		// (a thing added to a continuous job later gets an execution of its own then).
		return Result{Status: "ignored"}, nil
	case isNotFound(err): // the job or its execution was deleted: it has ended
	case err != nil:
		return Result{}, fmt.Errorf("describe job execution %s/%s: %w", ev.JobID, thing, err)
	case x.Execution == nil || !endedUnsuccessfully(string(x.Execution.Status)):
		st := ""
		if x.Execution != nil {
			st = string(x.Execution.Status)
		}
		return Result{}, refuse(metrics.ReasonUnauthorized, "job event says %s, but execution %s/%s is %s", ev.Status, ev.JobID, thing, st)
	}
	if !found {
		// Nothing issued yet: a tombstone makes a CSR still in flight lose its conditional write.
		err := h.Store.Create(ctx, Rotation{Thing: thing, JobID: ev.JobID, Status: StateAborted, Reason: "job " + ev.Status}, now)
		if errors.Is(err, errConflict) {
			return h.jobEnded(ctx, ev, log)
		}
		if err == nil {
			metrics.Inc(metrics.CapF, metrics.RotationFailed)
		}
		return Result{Status: "aborted"}, err
	}
	return h.abort(ctx, r, "job "+ev.Status, now, log)
}

// endedUnsuccessfully: a job execution status that ends a rotation not confirmed.
func endedUnsuccessfully(status string) bool {
	switch status {
	case "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "REMOVED":
		return true
	}
	return false
}

// abort revokes the new certificate of a rotation not confirmed; the old one is untouched.
func (h *Completion) abort(ctx context.Context, r Rotation, reason string, now time.Time, log *slog.Logger) (Result, error) {
	switch r.Status {
	case StateIssuing, StateIssued:
		err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateIssuing, StateIssued}, StateAborting, map[string]types.AttributeValue{
			attrReason: s(reason), AttrDueAt: n(now.Unix())}, nil, now)
		if errors.Is(err, errConflict) {
			cur, _, gerr := h.Store.Get(ctx, r.Thing, r.JobID)
			if gerr != nil {
				return Result{}, gerr
			}
			return h.abort(ctx, cur, reason, now, log)
		}
		if err != nil {
			return Result{}, err
		}
		// A CSR still being signed may record its certificate after this read; the sweep reads the item again.
		r, _, err = h.Store.Get(ctx, r.Thing, r.JobID)
		if err != nil {
			return Result{}, err
		}
	case StateAborting:
	default:
		return Result{Status: "ignored"}, nil // confirmed, retired or aborted already
	}
	if r.NewCertID != "" {
		if err := h.revoke(ctx, r.NewCertID, r.NewCertPEM, r.Issuer == IssuerPCA, r.Thing, "SUPERSEDED"); err != nil {
			return Result{}, err
		}
	}
	switch err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateAborting}, StateAborted, nil, []string{AttrOpen, AttrDueAt}, now); {
	case err == nil:
		metrics.Inc(metrics.CapF, metrics.RotationFailed) // once: only the change to aborted counts
	case !errors.Is(err, errConflict):
		return Result{}, err
	}
	log.Info("rotation aborted: new certificate revoked, old one kept", "reason", reason, "newCertificateId", r.NewCertID)
	return Result{Status: "aborted"}, nil
}

// revoke takes a certificate out of service for good: detached from its policies and thing, REVOKED, and deleted
// when AWS IoT issued it; a Private CA certificate is revoked there too and its AWS IoT record kept as REVOKED.
func (h *Completion) revoke(ctx context.Context, id, certPEM string, fromPCA bool, thing, reason string) error {
	if fromPCA && certPEM != "" {
		if err := h.revokeInPCA(ctx, certPEM, reason); err != nil {
			return err
		}
	}
	arn := certARN(ctx, h.IoT, id)
	if arn == "" && fromPCA && certPEM != "" {
		// A Private CA certificate never presented: AWS IoT does not read the CA's revocation list, so whoever holds
		// its key could still have it auto-registered and activated by JITR. Registered as REVOKED, it never is.
		registered, err := h.registerRevoked(ctx, certPEM)
		if err != nil || registered {
			return err
		}
		arn = certARN(ctx, h.IoT, id) // registered by a connection meanwhile: revoke that record below
	}
	if arn == "" {
		return nil // already deleted
	}
	if _, err := h.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(arn)}); err != nil && !isNotFound(err) {
		return fmt.Errorf("detach %s from %s: %w", id, thing, err)
	}
	policies, err := attachedPolicies(ctx, h.IoT, arn)
	if err != nil {
		return err
	}
	for _, p := range policies {
		if _, err := h.IoT.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String(p), Target: aws.String(arn)}); err != nil && !isNotFound(err) {
			return fmt.Errorf("detach policy %s from %s: %w", p, id, err)
		}
	}
	if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusRevoked}); err != nil && !isNotFound(err) && !isStateError(err) {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	if fromPCA {
		return nil
	}
	if _, err := h.IoT.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)}); err != nil && !isNotFound(err) {
		// AWS IoT detaches asynchronously: DeleteConflictException until it has; the next sweep deletes it.
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// registerRevoked registers a Private CA certificate (followed by its CA chain, as the signer keeps it) in AWS IoT
// as REVOKED: false when AWS IoT holds it already.
func (h *Completion) registerRevoked(ctx context.Context, certPEM string) (bool, error) {
	leaf, caPEM := splitChain(certPEM)
	_, err := h.IoT.RegisterCertificate(ctx, &iot.RegisterCertificateInput{
		CertificatePem: aws.String(leaf), CaCertificatePem: nonEmpty(caPEM), Status: iottypes.CertificateStatusRevoked,
	})
	var exists *iottypes.ResourceAlreadyExistsException
	if errors.As(err, &exists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("register the revoked certificate in AWS IoT: %w", err)
	}
	return true, nil
}

// splitChain splits "certificate, then its CA chain" into the first PEM block and the next one (the issuing CA).
func splitChain(chain string) (leaf, ca string) {
	rest := []byte(chain)
	var blocks []string
	for len(blocks) < 2 {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, string(pem.EncodeToMemory(b)))
		rest = r
	}
	switch len(blocks) {
	case 0:
		return chain, ""
	case 1:
		return blocks[0], ""
	}
	return blocks[0], blocks[1]
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (h *Completion) revokeInPCA(ctx context.Context, certPEM, reason string) error {
	cert, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return fmt.Errorf("certificate to revoke: %w", err)
	}
	_, err = h.PCA.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{
		CertificateAuthorityArn: aws.String(h.Config.PCAARN), CertificateSerial: aws.String(cert.SerialNumber.Text(16)),
		RevocationReason: pcatypes.RevocationReason(reason),
	})
	var done *pcatypes.RequestAlreadyProcessedException
	if err != nil && !errors.As(err, &done) {
		return fmt.Errorf("revoke serial %s in the private CA: %w", cert.SerialNumber.Text(16), err)
	}
	return nil
}

func (h *Completion) sweep(ctx context.Context, log *slog.Logger) (Result, error) {
	limit := h.SweepLimit
	if limit <= 0 {
		limit = 500
	}
	now := h.now()
	due, err := h.Store.Due(ctx, now, limit)
	if err != nil {
		return Result{}, err
	}
	var failed []string
	done := 0
	for _, r := range due {
		l := log.With("thingName", r.Thing, "jobId", r.JobID, "rotationStatus", r.Status)
		if err := h.sweepOne(ctx, r, now, l); err != nil {
			l.Error("sweep step failed", "error", err.Error())
			failed = append(failed, r.Thing+"/"+r.JobID)
			continue
		}
		done++
	}
	if len(failed) > 0 {
		return Result{Status: "swept", Reason: fmt.Sprintf("%d done, %d failed", done, len(failed))}, fmt.Errorf("sweep: %d rotations failed (%s): the next sweep retries them", len(failed), strings.Join(failed, ", "))
	}
	return Result{Status: "swept", Reason: fmt.Sprintf("%d done", done)}, nil
}

func (h *Completion) sweepOne(ctx context.Context, r Rotation, now time.Time, log *slog.Logger) error {
	switch r.Status {
	case StateIssuing, StateIssued, StateAborting:
		if r.Status != StateAborting {
			_, err := h.IoT.CancelJobExecution(ctx, &iot.CancelJobExecutionInput{JobId: aws.String(r.JobID), ThingName: aws.String(r.Thing), Force: true})
			var bad *iottypes.InvalidStateTransitionException
			if err != nil && !errors.As(err, &bad) && !isNotFound(err) {
				return fmt.Errorf("cancel job execution: %w", err)
			}
		}
		_, err := h.abort(ctx, r, "no confirmation within the timeout", now, log)
		return err
	case StateConfirmed:
		if !r.OldInactive {
			if err := h.deactivateOld(ctx, r, now); err != nil {
				return err
			}
		}
		if now.Before(r.RetireAfter) {
			return nil
		}
		if err := h.revoke(ctx, r.OldCertID, h.oldPEM(ctx, r), r.OldFromPCA, r.Thing, "SUPERSEDED"); err != nil {
			return err
		}
		err := h.Store.Change(ctx, r.Thing, r.JobID, []string{StateConfirmed}, StateRetired, nil, []string{AttrOpen, AttrDueAt}, now)
		if errors.Is(err, errConflict) {
			return nil
		}
		if err == nil {
			log.Info("old certificate revoked after the grace period", "oldCertificateId", r.OldCertID)
		}
		return err
	}
	return nil
}

// oldPEM reads the old certificate's PEM for its serial (a Private CA revocation); "" when it is gone.
func (h *Completion) oldPEM(ctx context.Context, r Rotation) string {
	if !r.OldFromPCA {
		return ""
	}
	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(r.OldCertID)})
	if err != nil || out.CertificateDescription == nil {
		return ""
	}
	return aws.ToString(out.CertificateDescription.CertificatePem)
}

func (h *Completion) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func isNotFound(err error) bool {
	var nf *iottypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func isStateError(err error) bool {
	var cs *iottypes.CertificateStateException
	return errors.As(err, &cs)
}
