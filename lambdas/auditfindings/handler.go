package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/auditrun"
	"github.com/iotcert/iotcert/internal/metrics"
)

// The checks whose findings are expiring certificates. Their threshold is 30 days unless the account's
// configuration says otherwise (CERT_EXPIRATION_THRESHOLD_IN_DAYS): the 30-day metric counts what the check found.
const (
	deviceExpiring = "DEVICE_CERTIFICATE_EXPIRING_CHECK"
	caExpiring     = "CA_CERTIFICATE_EXPIRING_CHECK"
)

// lookback bounds the search for the audit that sent the notification: a daily audit's last run.
const lookback = 25 * time.Hour

// IoTAPI is what the handler calls on AWS IoT.
type IoTAPI interface {
	iot.ListAuditTasksAPIClient
	iot.ListAuditFindingsAPIClient
	DescribeAuditTask(context.Context, *iot.DescribeAuditTaskInput, ...func(*iot.Options)) (*iot.DescribeAuditTaskOutput, error)
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	DescribeCACertificate(context.Context, *iot.DescribeCACertificateInput, ...func(*iot.Options)) (*iot.DescribeCACertificateOutput, error)
}

// Handler publishes the expiring-certificate counts of the newest completed run of the scheduled audit.
//
// The SNS notification is only the trigger: the handler reads the audit through the documented APIs
// (ListAuditTasks, DescribeAuditTask, ListAuditFindings) rather than relying on the notification's layout, so a
// notification it cannot parse, or one of another audit, still leads to the newest completed run's numbers.
type Handler struct {
	IoT IoTAPI
	// ScheduledAudit names the scheduled audit whose runs count; empty: any scheduled audit.
	ScheduledAudit string
	Now            func() time.Time
}

// Counts are one audit's expiring certificates.
type Counts struct {
	TaskID         string
	Device30, CA30 int
	Device7, CA7   int
	Unknown        int // findings whose certificate no longer exists
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Handle counts and publishes once per invocation, whatever the number of records.
func (h *Handler) Handle(ctx context.Context, _ events.SNSEvent) (Counts, error) {
	c, err := h.Count(ctx)
	if err != nil {
		slog.Error("count expiring certificates", "error", err.Error())
		return Counts{}, err
	}
	if c.TaskID == "" {
		slog.Info("no completed run of the scheduled audit in the last 25 hours", "scheduledAudit", h.ScheduledAudit)
		return c, nil
	}
	metrics.Expiring(metrics.CertificatesExpiring, "Device", c.Device30)
	metrics.Expiring(metrics.CertificatesExpiring, "CA", c.CA30)
	metrics.Expiring(metrics.CertificatesExpiring7, "Device", c.Device7)
	metrics.Expiring(metrics.CertificatesExpiring7, "CA", c.CA7)
	slog.Info("expiring certificates", "taskId", c.TaskID, "device30d", c.Device30, "ca30d", c.CA30, "device7d", c.Device7,
		"ca7d", c.CA7, "gone", c.Unknown)
	return c, nil
}

// Count finds the newest completed run and counts its expiring certificates.
func (h *Handler) Count(ctx context.Context) (Counts, error) {
	now := h.now()
	task, err := h.newestTask(ctx, now)
	if err != nil || task == "" {
		return Counts{}, err
	}
	c := Counts{TaskID: task}
	soon := now.Add(7 * 24 * time.Hour)
	for _, check := range []string{deviceExpiring, caExpiring} {
		p := iot.NewListAuditFindingsPaginator(h.IoT, &iot.ListAuditFindingsInput{TaskId: aws.String(task), CheckName: aws.String(check)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return Counts{}, fmt.Errorf("list findings of %s in audit %s: %w", check, task, err)
			}
			for _, f := range page.Findings {
				notAfter, err := h.notAfter(ctx, f)
				var nf *iottypes.ResourceNotFoundException
				if errors.As(err, &nf) {
					c.Unknown++
					continue
				}
				if err != nil {
					return Counts{}, err
				}
				if check == deviceExpiring {
					c.Device30++
					if notAfter.Before(soon) {
						c.Device7++
					}
				} else {
					c.CA30++
					if notAfter.Before(soon) {
						c.CA7++
					}
				}
			}
		}
	}
	return c, nil
}

// newestTask is the id of the newest completed run of the scheduled audit in the lookback window, or "".
func (h *Handler) newestTask(ctx context.Context, now time.Time) (string, error) {
	id, _, err := auditrun.Newest(ctx, h.IoT, h.ScheduledAudit, now.Add(-lookback), now)
	return id, err
}

func (h *Handler) notAfter(ctx context.Context, f iottypes.AuditFinding) (time.Time, error) {
	if f.NonCompliantResource == nil || f.NonCompliantResource.ResourceIdentifier == nil {
		return time.Time{}, fmt.Errorf("finding %s names no resource", aws.ToString(f.FindingId))
	}
	id := f.NonCompliantResource.ResourceIdentifier
	switch {
	case id.DeviceCertificateId != nil:
		out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: id.DeviceCertificateId})
		if err != nil {
			return time.Time{}, wrap(err, "describe certificate %s", aws.ToString(id.DeviceCertificateId))
		}
		if d := out.CertificateDescription; d != nil && d.Validity != nil {
			return aws.ToTime(d.Validity.NotAfter), nil
		}
	case id.CaCertificateId != nil:
		out, err := h.IoT.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: id.CaCertificateId})
		if err != nil {
			return time.Time{}, wrap(err, "describe CA certificate %s", aws.ToString(id.CaCertificateId))
		}
		if d := out.CertificateDescription; d != nil && d.Validity != nil {
			return aws.ToTime(d.Validity.NotAfter), nil
		}
	}
	return time.Time{}, fmt.Errorf("finding %s: no certificate validity", aws.ToString(f.FindingId))
}

func wrap(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}
