package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// DueGroup is the thing group `due` keeps equal to the things whose certificates Device Defender finds expiring.
const DueGroup = "iotcert-rotation-due"

// ExpiringCheck is Device Defender's audit check of device certificates close to their end of validity.
const ExpiringCheck = "DEVICE_CERTIFICATE_EXPIRING_CHECK"

// AuditAPI is what `due` calls besides IoTAPI.
type AuditAPI interface {
	IoTAPI
	ListAuditFindings(context.Context, *iot.ListAuditFindingsInput, ...func(*iot.Options)) (*iot.ListAuditFindingsOutput, error)
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	ListPrincipalThings(context.Context, *iot.ListPrincipalThingsInput, ...func(*iot.Options)) (*iot.ListPrincipalThingsOutput, error)
	CreateThingGroup(context.Context, *iot.CreateThingGroupInput, ...func(*iot.Options)) (*iot.CreateThingGroupOutput, error)
	ListThingsInThingGroup(context.Context, *iot.ListThingsInThingGroupInput, ...func(*iot.Options)) (*iot.ListThingsInThingGroupOutput, error)
	AddThingToThingGroup(context.Context, *iot.AddThingToThingGroupInput, ...func(*iot.Options)) (*iot.AddThingToThingGroupOutput, error)
	RemoveThingFromThingGroup(context.Context, *iot.RemoveThingFromThingGroupInput, ...func(*iot.Options)) (*iot.RemoveThingFromThingGroupOutput, error)
}

// runDue reads the expiring-certificate findings of an audit (a task, or the last -days), makes the thing group
// DueGroup hold exactly the things of those certificates, and with -start starts a rotation job on the group.
func runDue(ctx context.Context, args []string, stdout, stderr io.Writer, client func(context.Context) (IoTAPI, error), now time.Time) int {
	fs := flag.NewFlagSet("due", flag.ContinueOnError)
	task := fs.String("task-id", "", "the audit task whose findings to read (default: every finding of the last -days)")
	days := fs.Int("days", 1, "read the findings of this many days when no -task-id is given")
	start := fs.Bool("start", false, "start a rotation job on the group")
	if code, done := tool.Parse(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 || *days < 1 || *days > 90 {
		return tool.UsageError(stderr, "due takes -task-id, -days (1 to 90) and -start only")
	}
	c, err := client(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "device-rotation: %v\n", err)
		return 1
	}
	ac, ok := c.(AuditAPI)
	if !ok {
		fmt.Fprintln(stderr, "device-rotation: the client cannot read audit findings")
		return 1
	}
	things, err := dueThings(ctx, ac, *task, now.Add(-time.Duration(*days)*24*time.Hour), now)
	if err == nil {
		err = syncGroup(ctx, ac, things)
	}
	if err != nil {
		fmt.Fprintf(stderr, "device-rotation: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d things with expiring certificates in thing group %s\n", len(things), DueGroup)
	for _, t := range things {
		fmt.Fprintln(stdout, t)
	}
	if *start && len(things) > 0 {
		id, err := startJob(ctx, c, "group", DueGroup, "Rotate the device certificates Device Defender found expiring")
		if err != nil {
			fmt.Fprintf(stderr, "device-rotation: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, id)
	}
	return 0
}

// dueThings lists the things whose certificates the findings name, sorted, without repeats.
func dueThings(ctx context.Context, c AuditAPI, task string, from, to time.Time) ([]string, error) {
	in := &iot.ListAuditFindingsInput{CheckName: aws.String(ExpiringCheck)}
	if task != "" {
		in.TaskId = aws.String(task)
	} else {
		in.StartTime, in.EndTime = aws.Time(from), aws.Time(to)
	}
	var things []string
	p := iot.NewListAuditFindingsPaginator(c, in)
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

// syncGroup makes DueGroup hold exactly things (a snapshot job then targets only them).
func syncGroup(ctx context.Context, c AuditAPI, things []string) error {
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
