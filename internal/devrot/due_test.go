package devrot_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot"
	"github.com/iotcert/iotcert/internal/devrot/wire"
)

// dueEnv is the rotation cloud with three devices, two of them found expiring by the newest audit run.
func dueEnv(t *testing.T) (*env, *devrot.Due, map[string]device) {
	t.Helper()
	e := newEnv(t)
	devs := map[string]device{}
	for _, n := range []string{"old-1", "old-2", "fresh"} {
		devs[n] = e.iotDevice(n)
	}
	finding := func(n string) awsfake.AuditFinding {
		return awsfake.AuditFinding{Check: devrot.ExpiringCheck, DeviceCertificateID: devs[n].certID}
	}
	// An older run found "fresh"; a run still in progress and an on-demand run do not count.
	e.srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "task-old", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED",
		Start: e.now.Add(-20 * time.Hour), ScheduledAuditName: "IotCertOps-daily", Findings: []awsfake.AuditFinding{finding("fresh")}})
	e.srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "task-new", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED",
		Start: e.now.Add(-2 * time.Hour), ScheduledAuditName: "IotCertOps-daily",
		Findings: []awsfake.AuditFinding{finding("old-1"), finding("old-2"), finding("old-2"),
			{Check: "CA_CERTIFICATE_EXPIRING_CHECK", CACertificateID: "ca-1"}}})
	e.srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "task-running", Type: "SCHEDULED_AUDIT_TASK", Status: "IN_PROGRESS",
		Start: e.now.Add(-time.Hour), Findings: []awsfake.AuditFinding{finding("fresh")}})
	e.srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "task-adhoc", Type: "ON_DEMAND_AUDIT_TASK", Status: "COMPLETED",
		Start: e.now.Add(-time.Hour), Findings: []awsfake.AuditFinding{finding("fresh")}})
	d, err := devrot.DueFromEnv(func(k string) string {
		return map[string]string{devrot.EnvTemplateARN: e.template, devrot.EnvRollout: "50", devrot.EnvAbortPercent: "10",
			devrot.EnvAbortMin: "20", devrot.EnvTimeout: "60"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	d.IoT, d.Now = e.iot, func() time.Time { return e.now }
	return e, &d, devs
}

// A run puts the things of the newest run's findings in the group and starts one job on it with the stack's options;
// repeated runs start no second job, whether the first is in progress or finished.
func TestDueStartsOneJobPerAuditRun(t *testing.T) {
	e, d, _ := dueEnv(t)
	ctx := context.Background()
	r, err := d.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.TaskID != "task-new" || !slices.Equal(r.Things, []string{"old-1", "old-2"}) || !r.Started || r.JobID != devrot.DueJobID("task-new") {
		t.Fatalf("Run() = %+v, want task-new, [old-1 old-2], a started job", r)
	}
	if got := e.srv.IoT.GroupMembers(devrot.DueGroup); !slices.Equal(got, []string{"old-1", "old-2"}) {
		t.Fatalf("due group = %v", got)
	}
	job, ok := e.srv.IoT.JobOf(r.JobID)
	if !ok || job.TemplateARN != e.template || !strings.HasPrefix(job.ID, wire.JobIDPrefix) {
		t.Fatalf("job %s = %+v, %v", r.JobID, job, ok)
	}
	var rollout struct{ MaximumPerMinute int }
	if err := json.Unmarshal(job.Config["jobExecutionsRolloutConfig"], &rollout); err != nil || rollout.MaximumPerMinute != 50 {
		t.Errorf("rollout = %s, want maximumPerMinute 50", job.Config["jobExecutionsRolloutConfig"])
	}
	for _, n := range []string{"old-1", "old-2"} {
		if _, ok := e.srv.IoT.JobExecutionOf(n, r.JobID); !ok {
			t.Errorf("no execution for %s", n)
		}
	}
	if _, ok := e.srv.IoT.JobExecutionOf("fresh", r.JobID); ok {
		t.Error("the job targets a thing only an older run named")
	}

	// Again while the job is in progress: nothing new.
	r2, err := d.Run(ctx)
	if err != nil || r2.Started || r2.Running != r.JobID {
		t.Fatalf("second Run() = %+v, %v, want the running job %s left alone", r2, err, r.JobID)
	}
	// Again once the job has finished: the same task gives the same id, which exists.
	for _, n := range []string{"old-1", "old-2"} {
		if _, err := e.srv.IoT.UpdateJobExecution(n, r.JobID, awsfake.JobSucceeded, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if j, _ := e.srv.IoT.JobOf(r.JobID); j.Status != "COMPLETED" {
		t.Fatalf("job status = %s, want COMPLETED", j.Status)
	}
	r3, err := d.Run(ctx)
	if err != nil || r3.Started || r3.JobID != r.JobID {
		t.Fatalf("third Run() = %+v, %v, want job %s found existing", r3, err, r.JobID)
	}
	if n := e.srv.Calls("iot", "CreateJob"); n != 2 {
		t.Errorf("CreateJob calls = %d, want 2 (the first and the one answered ResourceAlreadyExists)", n)
	}
}

// A certificate retired since the audit leaves the group; with none left, no job starts.
func TestDueDropsRetiredCertificates(t *testing.T) {
	e, d, devs := dueEnv(t)
	ctx := context.Background()
	if _, err := e.iot.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(devs["old-1"].certID), NewStatus: iottypes.CertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.iot.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String(devrot.DueGroup)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"old-1", "fresh"} {
		if _, err := e.iot.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String(devrot.DueGroup), ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := d.Run(ctx)
	if err != nil || !slices.Equal(r.Things, []string{"old-2"}) {
		t.Fatalf("Run() = %+v, %v, want [old-2]", r, err)
	}
	if got := e.srv.IoT.GroupMembers(devrot.DueGroup); !slices.Equal(got, []string{"old-2"}) {
		t.Fatalf("due group = %v, want [old-2]", got)
	}
	if _, ok := e.srv.IoT.JobExecutionOf("old-1", r.JobID); ok {
		t.Error("the job targets a thing whose certificate is no longer ACTIVE")
	}
	if _, err := e.iot.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(devs["old-2"].certID), NewStatus: iottypes.CertificateStatusRevoked}); err != nil {
		t.Fatal(err)
	}
	r, err = d.Run(ctx)
	if err != nil || len(r.Things) != 0 || r.Started {
		t.Fatalf("Run() = %+v, %v, want an empty group and no job", r, err)
	}
	if got := e.srv.IoT.GroupMembers(devrot.DueGroup); len(got) != 0 {
		t.Fatalf("due group = %v, want empty", got)
	}
}

// A failure part-way starts no job and fails the invocation (for the failure destination); the next run finishes.
func TestDueFailureMidWay(t *testing.T) {
	e, d, _ := dueEnv(t)
	ctx := context.Background()
	e.srv.Inject("iot", "AddThingToThingGroup", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	if r, err := d.Run(ctx); err == nil || r.Started || !strings.Contains(err.Error(), "add old-") {
		t.Fatalf("Run() = %+v, %v, want the failed add", r, err)
	}
	if n := e.srv.Calls("iot", "CreateJob"); n != 0 {
		t.Fatalf("CreateJob calls = %d after a failed group update", n)
	}
	e.srv.Inject("iot", "CreateJob", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	if _, err := d.Run(ctx); err == nil || !strings.Contains(err.Error(), "create job") {
		t.Fatalf("Run() error = %v, want the failed CreateJob", err)
	}
	r, err := d.Run(ctx)
	if err != nil || !r.Started || !slices.Equal(e.srv.IoT.GroupMembers(devrot.DueGroup), []string{"old-1", "old-2"}) {
		t.Fatalf("Run() after the failures = %+v, %v", r, err)
	}
}

// Only the named scheduled audit's runs count; with no run in the window nothing changes.
func TestDueScheduledAuditAndNoRun(t *testing.T) {
	e, d, _ := dueEnv(t)
	d.ScheduledAudit = "other-daily"
	r, err := d.Run(context.Background())
	if err != nil || r.TaskID != "" || r.Started {
		t.Fatalf("Run() = %+v, %v, want nothing done", r, err)
	}
	if n := e.srv.Calls("iot", "CreateThingGroup"); n != 0 {
		t.Errorf("CreateThingGroup calls = %d with no audit run", n)
	}
}

// A bad setting is refused with the variable named.
func TestDueFromEnvNamesTheBadVariable(t *testing.T) {
	good := map[string]string{devrot.EnvTemplateARN: "arn:aws:iot:us-east-1:123456789012:jobtemplate/" + wire.TemplateID,
		devrot.EnvRollout: "100", devrot.EnvAbortPercent: "10", devrot.EnvAbortMin: "20", devrot.EnvTimeout: "60"}
	for key, bad := range map[string]string{devrot.EnvTemplateARN: "arn:aws:iot:us-east-1:123456789012:jobtemplate/firmware",
		devrot.EnvRollout: "1001", devrot.EnvAbortPercent: "0", devrot.EnvAbortMin: "x", devrot.EnvTimeout: ""} {
		_, err := devrot.DueFromEnv(func(k string) string {
			if k == key {
				return bad
			}
			return good[k]
		})
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%q: error = %v, want one naming it", key, bad, err)
		}
	}
	if _, err := devrot.DueFromEnv(func(k string) string { return good[k] }); err != nil {
		t.Errorf("good settings: %v", err)
	}
}
