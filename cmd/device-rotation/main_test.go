package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot/wire"
)

func TestStart(t *testing.T) {
	srv := awsfake.New(t)
	ctx := context.Background()
	c := iot.NewFromConfig(srv.Config(ctx))
	client := func(context.Context) (IoTAPI, error) { return c, nil }
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"start", "-thing", "sensor-1"}, &out, &errOut, client); code != 1 || !strings.Contains(errOut.String(), "deploy the IotDeviceRotation stack") {
		t.Fatalf("start without the template = %d, %q", code, errOut.String())
	}
	if _, err := c.CreateJobTemplate(ctx, &iot.CreateJobTemplateInput{JobTemplateId: aws.String(wire.TemplateID), Description: aws.String("d"), Document: aws.String(wire.JobDocumentJSON())}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sensor-1", "sensor-2"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("fleet")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sensor-1", "sensor-2"} {
		if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("fleet"), ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if code := run(ctx, []string{"start", "-thing", "sensor-1"}, &out, &errOut, client); code != 0 {
		t.Fatalf("start -thing = %d, %s", code, errOut.String())
	}
	id := strings.TrimSpace(out.String())
	if err := wire.CheckJobID(id); err != nil {
		t.Fatalf("job id %q: %v", id, err)
	}
	if _, ok := srv.IoT.JobExecutionOf("sensor-1", id); !ok {
		t.Fatal("no execution for sensor-1")
	}
	if j, _ := srv.IoT.JobOf(id); !strings.HasSuffix(j.TemplateARN, ":jobtemplate/"+wire.TemplateID) || j.Document != wire.JobDocumentJSON() {
		t.Fatalf("job = %+v, want the template's", j)
	}
	out.Reset()
	if code := run(ctx, []string{"start", "-thing-group", "fleet"}, &out, &errOut, client); code != 0 {
		t.Fatalf("start -thing-group = %d, %s", code, errOut.String())
	}
	gid := strings.TrimSpace(out.String())
	for _, n := range []string{"sensor-1", "sensor-2"} {
		if _, ok := srv.IoT.JobExecutionOf(n, gid); !ok {
			t.Errorf("group job has no execution for %s", n)
		}
	}
	for _, bad := range [][]string{{"start"}, {"start", "-thing", "a", "-thing-group", "b"}, {"start", "-thing", "a/b"}, {"stop"}} {
		errOut.Reset()
		if code := run(ctx, bad, &out, &errOut, client); code != 2 {
			t.Errorf("run(%v) = %d, want 2 (usage)", bad, code)
		}
	}
	errOut.Reset()
	if code := run(ctx, []string{"start", "-thing", "missing"}, &out, &errOut, client); code != 1 || !strings.Contains(errOut.String(), "missing") {
		t.Errorf("start for a missing thing = %d, %q", code, errOut.String())
	}
}
