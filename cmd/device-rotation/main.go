// Command device-rotation starts device-certificate rotations: it creates an AWS IoT job from the rotation job template
// (iotcert-rotate-certificate, defined by the IotDeviceRotation stack) for one thing or a thing group.
//
//	device-rotation start -thing T
//	device-rotation start -thing-group G
//	device-rotation due [-task-id ID | -days N] [-start]
//
// The job takes its document, rollout rate, abort rule and in-progress timeout from the template. Devices running
// device-agent pick it up (notify-next / start-next) and rotate. The job id is printed; it starts with
// iotcert-rotate-, which the job-events rule and the functions require.
//
// due reads Device Defender's DEVICE_CERTIFICATE_EXPIRING_CHECK findings (ListAuditFindings: one audit task, or the
// last -days), makes the thing group iotcert-rotation-due hold exactly the things of the still-ACTIVE certificates
// found, and with -start starts one rotation job on that group (a snapshot of it).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/naming"
)

var tool = cli.Tool{
	Name: "device-rotation",
	Synopsis: `device-rotation start (-thing T | -thing-group G) [-description TEXT]
	device-rotation due [-task-id ID | -days N] [-start]`,
	About: `starts a device-certificate rotation: an AWS IoT job from the job template iotcert-rotate-certificate for one
thing or every thing of a thing group (a snapshot of its members). due puts the things whose certificates Device
Defender's expiring-certificate check found into the thing group iotcert-rotation-due (and only those) and, with
-start, starts a job on it. Uses the standard AWS credentials and region.`,
	Examples: []string{
		"device-rotation start -thing sensor-1",
		"device-rotation start -thing-group edge-fleet",
		"device-rotation due -start",
	},
}

// IoTAPI is the part of the AWS IoT client the tool uses.
type IoTAPI interface {
	DescribeJobTemplate(context.Context, *iot.DescribeJobTemplateInput, ...func(*iot.Options)) (*iot.DescribeJobTemplateOutput, error)
	DescribeThing(context.Context, *iot.DescribeThingInput, ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
	DescribeThingGroup(context.Context, *iot.DescribeThingGroupInput, ...func(*iot.Options)) (*iot.DescribeThingGroupOutput, error)
	CreateJob(context.Context, *iot.CreateJobInput, ...func(*iot.Options)) (*iot.CreateJobOutput, error)
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, func(ctx context.Context) (IoTAPI, error) {
		cfg, err := awsconfig.Load(ctx, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return iot.NewFromConfig(cfg), nil
	}))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, client func(context.Context) (IoTAPI, error)) int {
	if len(args) == 0 {
		return tool.UsageError(stderr, "a command is required: start or due")
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		tool.Help(stdout)
		return 0
	}
	if args[0] == "due" {
		return runDue(ctx, args[1:], stdout, stderr, client, time.Now())
	}
	if args[0] != "start" {
		return tool.UsageError(stderr, "unknown command %q: use start or due", args[0])
	}
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	thing := fs.String("thing", "", "the thing whose certificate to rotate")
	group := fs.String("thing-group", "", "the thing group whose members' certificates to rotate")
	desc := fs.String("description", "", "the job's description (default: names the target)")
	if code, done := tool.Parse(fs, args[1:], stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return tool.UsageError(stderr, "unexpected argument %q", fs.Arg(0))
	}
	if (*thing == "") == (*group == "") {
		return tool.UsageError(stderr, "give exactly one of -thing and -thing-group")
	}
	name, kind := *thing, "thing"
	if *group != "" {
		name, kind = *group, "group"
	}
	if err := naming.ThingName(name); err != nil { // thing and group names follow the same rule
		return tool.UsageError(stderr, "-%s: %v", map[string]string{"thing": "thing", "group": "thing-group"}[kind], err)
	}
	c, err := client(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "device-rotation: %v\n", err)
		return 1
	}
	id, err := startJob(ctx, c, kind, name, *desc)
	if err != nil {
		fmt.Fprintf(stderr, "device-rotation: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", id)
	return 0
}

// startJob checks the template and the target, then creates the job.
func startJob(ctx context.Context, c IoTAPI, kind, name, desc string) (string, error) {
	tmpl, err := c.DescribeJobTemplate(ctx, &iot.DescribeJobTemplateInput{JobTemplateId: aws.String(wire.TemplateID)})
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", fmt.Errorf("job template %s does not exist: deploy the %s stack first", wire.TemplateID, "IotDeviceRotation")
	}
	if err != nil {
		return "", fmt.Errorf("describe job template %s: %w", wire.TemplateID, err)
	}
	var target string
	if kind == "thing" {
		out, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)})
		if err != nil {
			return "", fmt.Errorf("thing %s: %w", name, err)
		}
		target = aws.ToString(out.ThingArn)
	} else {
		out, err := c.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(name)})
		if err != nil {
			return "", fmt.Errorf("thing group %s: %w", name, err)
		}
		target = aws.ToString(out.ThingGroupArn)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	id := wire.NewJobID(kind, rnd[:])
	if desc == "" {
		desc = "Rotate the device certificate of " + kind + " " + name
	}
	if _, err := c.CreateJob(ctx, &iot.CreateJobInput{
		JobId: aws.String(id), Targets: []string{target}, JobTemplateArn: tmpl.JobTemplateArn,
		Description: aws.String(strings.TrimSpace(desc)), TargetSelection: iottypes.TargetSelectionSnapshot,
	}); err != nil {
		return "", fmt.Errorf("create job: %w", err)
	}
	return id, nil
}
