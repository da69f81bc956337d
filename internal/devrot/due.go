package devrot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/auditrun"
	"github.com/iotcert/iotcert/internal/devrot/wire"
)

// DueGroup is the thing group kept equal to the things whose certificates Device Defender finds expiring.
const DueGroup = "iotcert-rotation-due"

// ExpiringCheck is Device Defender's audit check of device certificates close to their end of validity.
const ExpiringCheck = "DEVICE_CERTIFICATE_EXPIRING_CHECK"

// DueLookback bounds the search for the audit run to act on: a daily audit's last run, whatever time of day AWS
// starts it ("The start time of each audit is determined by the system",
// https://docs.aws.amazon.com/iot/latest/apireference/API_CreateScheduledAudit.html).
const DueLookback = 25 * time.Hour

// GroupAPI is what DueThings and SyncDueGroup call on AWS IoT.
type GroupAPI interface {
	iot.ListAuditFindingsAPIClient
	iot.ListPrincipalThingsAPIClient
	iot.ListThingsInThingGroupAPIClient
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	CreateThingGroup(context.Context, *iot.CreateThingGroupInput, ...func(*iot.Options)) (*iot.CreateThingGroupOutput, error)
	AddThingToThingGroup(context.Context, *iot.AddThingToThingGroupInput, ...func(*iot.Options)) (*iot.AddThingToThingGroupOutput, error)
	RemoveThingFromThingGroup(context.Context, *iot.RemoveThingFromThingGroupInput, ...func(*iot.Options)) (*iot.RemoveThingFromThingGroupOutput, error)
}

// DueThings lists the things attached to the still-ACTIVE certificates that the ExpiringCheck findings of in name
// (in selects the findings: a task id, or a window), sorted, without repeats. in.CheckName is set here.
func DueThings(ctx context.Context, c GroupAPI, in iot.ListAuditFindingsInput) ([]string, error) {
	in.CheckName = aws.String(ExpiringCheck)
	var things []string
	p := iot.NewListAuditFindingsPaginator(c, &in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list audit findings: %w", err)
		}
		for _, f := range page.Findings {
			if f.NonCompliantResource == nil || f.NonCompliantResource.ResourceIdentifier == nil {
				continue
			}
			id := aws.ToString(f.NonCompliantResource.ResourceIdentifier.DeviceCertificateId)
			if id == "" {
				continue
			}
			d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
			var nf *iottypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				continue // gone since the audit
			}
			if err != nil {
				return nil, fmt.Errorf("describe certificate %s: %w", id, err)
			}
			if d.CertificateDescription == nil || d.CertificateDescription.Status != iottypes.CertificateStatusActive {
				continue // already retired
			}
			tp := iot.NewListPrincipalThingsPaginator(c, &iot.ListPrincipalThingsInput{Principal: d.CertificateDescription.CertificateArn})
			for tp.HasMorePages() {
				tpage, err := tp.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("things of certificate %s: %w", id, err)
				}
				things = append(things, tpage.Things...)
			}
		}
	}
	slices.Sort(things)
	return slices.Compact(things), nil
}

// SyncDueGroup makes DueGroup hold exactly things (a snapshot job then targets only them). It removes before it adds,
// so a failure part-way leaves a group that names no thing the findings do not.
func SyncDueGroup(ctx context.Context, c GroupAPI, things []string) error {
	_, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String(DueGroup)})
	var exists *iottypes.ResourceAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create thing group %s: %w", DueGroup, err)
	}
	var members []string
	p := iot.NewListThingsInThingGroupPaginator(c, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String(DueGroup)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list thing group %s: %w", DueGroup, err)
		}
		members = append(members, page.Things...)
	}
	for _, m := range members {
		if !slices.Contains(things, m) {
			if _, err := c.RemoveThingFromThingGroup(ctx, &iot.RemoveThingFromThingGroupInput{ThingGroupName: aws.String(DueGroup), ThingName: aws.String(m)}); err != nil {
				return fmt.Errorf("remove %s from %s: %w", m, DueGroup, err)
			}
		}
	}
	for _, t := range things {
		if !slices.Contains(members, t) {
			if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String(DueGroup), ThingName: aws.String(t)}); err != nil {
				return fmt.Errorf("add %s to %s: %w", t, DueGroup, err)
			}
		}
	}
	return nil
}

// DueAPI is what the due function calls on AWS IoT.
type DueAPI interface {
	GroupAPI
	auditrun.API
	iot.ListJobsAPIClient
	DescribeThingGroup(context.Context, *iot.DescribeThingGroupInput, ...func(*iot.Options)) (*iot.DescribeThingGroupOutput, error)
	CreateJob(context.Context, *iot.CreateJobInput, ...func(*iot.Options)) (*iot.CreateJobOutput, error)
}

// JobOptions are a rotation job's rollout, abort and timeout: the stack's, as on the job template.
type JobOptions struct {
	RolloutPerMinute int32
	AbortPercent     float64
	AbortMinExecuted int32
	TimeoutMinutes   int64
}

// Due is the scheduled function that turns the newest audit run into the due group and a rotation job on it.
type Due struct {
	IoT         DueAPI
	TemplateARN string
	Options     JobOptions
	// ScheduledAudit names the scheduled audit whose runs count; empty: any scheduled audit.
	ScheduledAudit string
	Now            func() time.Time
}

// DueResult says what one run did.
type DueResult struct {
	TaskID string   `json:"taskId,omitempty"`
	Things []string `json:"things"`
	// JobID is the run's rotation job (started now or by an earlier run of the same task); Running is a rotation job
	// on the group already in progress, which the run left alone.
	JobID   string `json:"jobId,omitempty"`
	Started bool   `json:"started"`
	Running string `json:"running,omitempty"`
}

// DueJobID is the rotation job of an audit run: the same task always gives the same id, so CreateJob answers
// ResourceAlreadyExists when a repeated run would start a second job.
func DueJobID(taskID string) string {
	sum := sha256.Sum256([]byte(taskID))
	return wire.NewJobID("due", sum[:8])
}

// Run reads the ExpiringCheck findings of the newest completed audit run of the last DueLookback, makes DueGroup
// hold their things and, unless a rotation job on the group is in progress, starts one from the template.
func (d *Due) Run(ctx context.Context) (DueResult, error) {
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	task, _, err := auditrun.Newest(ctx, d.IoT, d.ScheduledAudit, now.Add(-DueLookback), now)
	if err != nil || task == "" {
		return DueResult{}, err
	}
	r := DueResult{TaskID: task}
	if r.Things, err = DueThings(ctx, d.IoT, iot.ListAuditFindingsInput{TaskId: aws.String(task)}); err != nil {
		return r, err
	}
	if err := SyncDueGroup(ctx, d.IoT, r.Things); err != nil {
		return r, err
	}
	if len(r.Things) == 0 {
		return r, nil
	}
	if r.Running, err = d.runningJob(ctx); err != nil || r.Running != "" {
		return r, err
	}
	g, err := d.IoT.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(DueGroup)})
	if err != nil {
		return r, fmt.Errorf("describe thing group %s: %w", DueGroup, err)
	}
	r.JobID = DueJobID(task)
	o := d.Options
	_, err = d.IoT.CreateJob(ctx, &iot.CreateJobInput{
		JobId: aws.String(r.JobID), Targets: []string{aws.ToString(g.ThingGroupArn)}, JobTemplateArn: aws.String(d.TemplateARN),
		Description:                aws.String("Rotate the device certificates Device Defender found expiring in audit " + task),
		TargetSelection:            iottypes.TargetSelectionSnapshot,
		JobExecutionsRolloutConfig: &iottypes.JobExecutionsRolloutConfig{MaximumPerMinute: aws.Int32(o.RolloutPerMinute)},
		AbortConfig: &iottypes.AbortConfig{CriteriaList: []iottypes.AbortCriteria{{
			Action: iottypes.AbortActionCancel, FailureType: iottypes.JobExecutionFailureTypeAll,
			MinNumberOfExecutedThings: aws.Int32(o.AbortMinExecuted), ThresholdPercentage: aws.Float64(o.AbortPercent),
		}}},
		TimeoutConfig: &iottypes.TimeoutConfig{InProgressTimeoutInMinutes: aws.Int64(o.TimeoutMinutes)},
	})
	var exists *iottypes.ResourceAlreadyExistsException
	switch {
	case errors.As(err, &exists):
		slog.Info("the audit run's rotation job exists already", "taskId", task, "jobId", r.JobID)
	case err != nil:
		return r, fmt.Errorf("create job %s: %w", r.JobID, err)
	default:
		r.Started = true
	}
	return r, nil
}

// runningJob is the id of a rotation job on DueGroup that is in progress, or "".
func (d *Due) runningJob(ctx context.Context) (string, error) {
	p := iot.NewListJobsPaginator(d.IoT, &iot.ListJobsInput{ThingGroupName: aws.String(DueGroup), Status: iottypes.JobStatusInProgress})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list jobs of thing group %s: %w", DueGroup, err)
		}
		for _, j := range page.Jobs {
			if id := aws.ToString(j.JobId); strings.HasPrefix(id, wire.JobIDPrefix) {
				return id, nil
			}
		}
	}
	return "", nil
}
