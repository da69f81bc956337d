package awsfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// The Jobs lifecycle through the real SDK and the device-side methods: template, job on a thing group, start-next,
// updates, terminal states, events, cancel with and without force.
func TestJobsLifecycle(t *testing.T) {
	srv, cfg := envConfig(t)
	c := iot.NewFromConfig(cfg)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("fleet")})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("fleet"), ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := c.CreateJobTemplate(ctx, &iot.CreateJobTemplateInput{
		JobTemplateId: aws.String("rotate"), Description: aws.String("d"), Document: aws.String(`{"op":"x"}`),
		TimeoutConfig: &iottypes.TimeoutConfig{InProgressTimeoutInMinutes: aws.Int64(60)},
	})
	if err != nil {
		t.Fatalf("CreateJobTemplate() error = %v", err)
	}
	if _, err := c.CreateJobTemplate(ctx, &iot.CreateJobTemplateInput{JobTemplateId: aws.String("rotate"), Description: aws.String("d"), Document: aws.String("{}")}); !errors.As(err, new(*iottypes.ConflictException)) {
		t.Fatalf("second CreateJobTemplate() error = %v, want ConflictException", err)
	}
	if _, err := c.CreateJob(ctx, &iot.CreateJobInput{JobId: aws.String("j1"), Targets: []string{aws.ToString(g.ThingGroupArn)}, JobTemplateArn: tmpl.JobTemplateArn}); err != nil {
		t.Fatalf("CreateJob() error = %v", err)
	}
	j, err := c.DescribeJob(ctx, &iot.DescribeJobInput{JobId: aws.String("j1")})
	if err != nil || aws.ToString(j.Job.JobTemplateArn) != aws.ToString(tmpl.JobTemplateArn) || aws.ToInt64(j.Job.TimeoutConfig.InProgressTimeoutInMinutes) != 60 {
		t.Fatalf("DescribeJob() = %+v, %v", j, err)
	}
	x, ok, err := srv.IoT.StartNextPendingJobExecution("a", nil)
	if err != nil || !ok || x.Status != awsfake.JobInProgress || x.Document != `{"op":"x"}` {
		t.Fatalf("StartNextPendingJobExecution(a) = %+v, %v, %v", x, ok, err)
	}
	again, _, _ := srv.IoT.StartNextPendingJobExecution("a", nil)
	if again.JobID != "j1" || again.VersionNumber != x.VersionNumber {
		t.Fatalf("start-next with one IN_PROGRESS = %+v, want the same execution unchanged", again)
	}
	d, err := c.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{JobId: aws.String("j1"), ThingName: aws.String("a")})
	if err != nil || d.Execution.Status != iottypes.JobExecutionStatusInProgress {
		t.Fatalf("DescribeJobExecution() = %+v, %v", d, err)
	}
	stale := x.VersionNumber - 1
	var je *awsfake.JobsError
	if _, err := srv.IoT.UpdateJobExecution("a", "j1", awsfake.JobSucceeded, nil, &stale); !errors.As(err, &je) || je.Code != "VersionMismatch" {
		t.Fatalf("update with a stale version error = %v", err)
	}
	if _, err := srv.IoT.UpdateJobExecution("a", "j1", awsfake.JobSucceeded, map[string]string{"r": "ok"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.IoT.UpdateJobExecution("a", "j1", awsfake.JobFailed, nil, nil); !errors.As(err, &je) || je.Code != "InvalidStateTransition" {
		t.Fatalf("update of a terminal execution error = %v", err)
	}
	// b: QUEUED cancels without force, IN_PROGRESS needs it.
	srv.IoT.StartNextPendingJobExecution("b", nil) //nolint:errcheck
	if _, err := c.CancelJobExecution(ctx, &iot.CancelJobExecutionInput{JobId: aws.String("j1"), ThingName: aws.String("b")}); !errors.As(err, new(*iottypes.InvalidStateTransitionException)) {
		t.Fatalf("cancel IN_PROGRESS without force error = %v", err)
	}
	if _, err := c.CancelJobExecution(ctx, &iot.CancelJobExecutionInput{JobId: aws.String("j1"), ThingName: aws.String("b"), Force: true}); err != nil {
		t.Fatalf("cancel with force error = %v", err)
	}
	ev := srv.IoT.JobEvents()
	if len(ev) != 2 || ev[0].Topic != "$aws/events/jobExecution/j1/succeeded" || ev[1].Topic != "$aws/events/jobExecution/j1/canceled" {
		t.Fatalf("JobEvents() = %v", ev)
	}
	var body map[string]any
	if err := json.Unmarshal(ev[1].Payload, &body); err != nil || body["eventType"] != "JOB_EXECUTION" || body["status"] != "CANCELED" ||
		body["thingArn"] != "arn:aws:iot:us-east-1:123456789012:thing/b" {
		t.Fatalf("event payload = %s", ev[1].Payload)
	}
	if j, _ := srv.IoT.JobOf("j1"); j.Status != "COMPLETED" {
		t.Fatalf("job status = %s, want COMPLETED", j.Status)
	}
	if _, ok, _ := srv.IoT.StartNextPendingJobExecution("a", nil); ok {
		t.Fatal("start-next with nothing pending returned an execution")
	}
}
