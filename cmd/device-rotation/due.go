package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/devrot"
)

// DueGroup is the thing group `due` keeps equal to the things whose certificates Device Defender finds expiring.
const DueGroup = devrot.DueGroup

// ExpiringCheck is Device Defender's audit check of device certificates close to their end of validity.
const ExpiringCheck = devrot.ExpiringCheck

// AuditAPI is what `due` calls besides IoTAPI.
type AuditAPI interface {
	IoTAPI
	devrot.GroupAPI
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
	in := iot.ListAuditFindingsInput{}
	if *task != "" {
		in.TaskId = task
	} else {
		in.StartTime, in.EndTime = aws.Time(now.Add(-time.Duration(*days)*24*time.Hour)), aws.Time(now)
	}
	things, err := devrot.DueThings(ctx, ac, in)
	if err == nil {
		err = devrot.SyncDueGroup(ctx, ac, things)
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
