package main

// Certificate generations (device rotation for per-thing stacks): -c certificate_generation=N changes the resource's
// Generation property, which issues a new key and certificate into the secret (Update → create), with the new
// generation's GraceDays and PolicyName written beside them. CloudFormation then sends Delete for the replaced
// certificate (with the replaced resource's properties): with a grace period in the secret that certificate is kept
// ACTIVE, attached to its thing and policy again (CloudFormation removed the old attachments), and listed in the
// secret's "superseded" with the time it retires. A scheduled Retire request deletes the superseded certificates
// whose time has come; the stack's own deletion deletes them at once.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// Superseded is a certificate replaced by a newer generation, kept ACTIVE until RetireAfter.
type Superseded struct {
	CertificateID string    `json:"certificateId"`
	RetireAfter   time.Time `json:"retireAfter"`
}

// RetireRequest is what the schedule sends: the secrets whose superseded certificates to look at.
type RetireRequest struct {
	RequestType string   `json:"RequestType"` // "Retire"
	SecretIDs   []string `json:"SecretIds"`
}

// generation parses a Generation property: empty is 1.
func generation(s string) (int, error) {
	if s == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000000 {
		return 0, fmt.Errorf("property Generation %q is not valid: want a whole number from 1 to 1000000", s)
	}
	return n, nil
}

// graceDays parses a GraceDays property: empty is 0 (the replaced certificate is deleted at once).
func graceDays(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 365 {
		return 0, fmt.Errorf("property GraceDays %q is not valid: want a whole number from 0 to 365", s)
	}
	return n, nil
}

// keepSuperseded handles the Delete of certificate id when a newer generation replaced it: it is kept ACTIVE and
// attached, and recorded in the secret. ok is false when the Delete is not such a replacement (the stack is being
// deleted, a rollback removes the newer certificate, or no grace is configured).
func (h *Handler) keepSuperseded(ctx context.Context, log *slog.Logger, id string, p Properties, now time.Time) (bool, error) {
	gen, err := generation(p.Generation)
	if err != nil || p.SecretID == "" {
		return false, nil
	}
	sv, err := h.readSecret(ctx, p.SecretID, "AWSCURRENT")
	if err != nil {
		return false, err
	}
	// Only an older generation than the secret's is superseded: a rollback's Delete of the newer one is not. The grace
	// period is the one the replacing generation wrote.
	if sv == nil || sv.CertificateID == id || max(sv.Generation, 1) <= gen || sv.GraceDays == 0 {
		return false, nil
	}
	days := sv.GraceDays
	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	arn := aws.ToString(out.CertificateDescription.CertificateArn)
	if sv.PolicyName != "" {
		if _, err := h.IoT.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(sv.PolicyName), Target: aws.String(arn)}); err != nil {
			return false, fmt.Errorf("attach policy %s to superseded certificate %s: %w", sv.PolicyName, id, err)
		}
	}
	if _, err := h.IoT.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(p.ThingName), Principal: aws.String(arn)}); err != nil {
		return false, fmt.Errorf("attach superseded certificate %s to thing %s: %w", id, p.ThingName, err)
	}
	if !slices.ContainsFunc(sv.Superseded, func(s Superseded) bool { return s.CertificateID == id }) {
		sv.Superseded = append(sv.Superseded, Superseded{CertificateID: id, RetireAfter: now.Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second)})
		if err := h.putSecret(ctx, "superseded-"+id, p.SecretID, *sv); err != nil {
			return false, err
		}
	}
	log.Info("replaced certificate kept ACTIVE for the grace period", "certificateId", id, "graceDays", days)
	return true, nil
}

// retire deletes the superseded certificates of the secret whose time has come (all of them when all is set), and
// rewrites the list.
func (h *Handler) retire(ctx context.Context, log *slog.Logger, secretID string, now time.Time, all bool) error {
	sv, err := h.readSecret(ctx, secretID, "AWSCURRENT")
	if err != nil || sv == nil || len(sv.Superseded) == 0 {
		return err
	}
	var keep []Superseded
	var errs []error
	for _, s := range sv.Superseded {
		if !all && now.Before(s.RetireAfter) {
			keep = append(keep, s)
			continue
		}
		if err := h.deleteCertificate(ctx, log.With("certificateId", s.CertificateID), s.CertificateID); err != nil {
			errs = append(errs, err)
			keep = append(keep, s)
			continue
		}
		log.Info("superseded certificate retired", "certificateId", s.CertificateID)
	}
	if len(keep) != len(sv.Superseded) {
		sv.Superseded = keep
		token := fmt.Sprintf("retire-%s-%d", sv.CertificateID, now.Unix())
		if err := h.putSecret(ctx, token, secretID, *sv); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HandleRetire serves the scheduled Retire request.
func (h *Handler) HandleRetire(ctx context.Context, req RetireRequest) error {
	if req.RequestType != "Retire" {
		return fmt.Errorf("unknown request type %q", req.RequestType)
	}
	var errs []error
	for _, id := range req.SecretIDs {
		if err := h.retire(ctx, h.log().With("secretId", id), id, h.now(), false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// sameGeneration compares a secret's generation (0 reads as 1) with a property's.
func sameGeneration(stored int, prop string) bool {
	g, err := generation(prop)
	return err == nil && max(stored, 1) == g
}
