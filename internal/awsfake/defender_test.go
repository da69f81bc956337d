package awsfake_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestAccountAuditConfiguration(t *testing.T) {
	srv, cfg := envConfig(t)
	c := iot.NewFromConfig(cfg)
	ctx := context.Background()
	on := func(names ...string) map[string]types.AuditCheckConfiguration {
		m := map[string]types.AuditCheckConfiguration{}
		for _, n := range names {
			m[n] = types.AuditCheckConfiguration{Enabled: true}
		}
		return m
	}
	var inv *types.InvalidRequestException
	var nf *types.ResourceNotFoundException

	d, err := c.DescribeAccountAuditConfiguration(ctx, &iot.DescribeAccountAuditConfigurationInput{})
	if err != nil || d.RoleArn != nil || len(d.AuditCheckConfigurations) != len(awsfake.AuditChecks) {
		t.Fatalf("Describe(new account) = %+v, %v; want every check, no role", d, err)
	}
	for name, cc := range d.AuditCheckConfigurations {
		if cc.Enabled {
			t.Errorf("check %s enabled by default", name)
		}
	}
	if _, err := c.DeleteAccountAuditConfiguration(ctx, &iot.DeleteAccountAuditConfigurationInput{}); !errors.As(err, &nf) {
		t.Errorf("Delete(never configured) = %v, want ResourceNotFoundException", err)
	}
	// First call: a role and one enabled check are required.
	if _, err := c.UpdateAccountAuditConfiguration(ctx, &iot.UpdateAccountAuditConfigurationInput{
		AuditCheckConfigurations: on("LOGGING_DISABLED_CHECK")}); !errors.As(err, &inv) {
		t.Errorf("first Update without roleArn = %v, want InvalidRequestException", err)
	}
	role := aws.String("arn:aws:iam::123456789012:role/audit")
	if _, err := c.UpdateAccountAuditConfiguration(ctx, &iot.UpdateAccountAuditConfigurationInput{RoleArn: role,
		AuditCheckConfigurations: on("LOGGING_DISABLED_CHECK", "CONFLICTING_CLIENT_IDS_CHECK")}); err != nil {
		t.Fatal(err)
	}
	// A later call that names one check leaves the others as they are.
	if _, err := c.UpdateAccountAuditConfiguration(ctx, &iot.UpdateAccountAuditConfigurationInput{
		AuditCheckConfigurations: map[string]types.AuditCheckConfiguration{"LOGGING_DISABLED_CHECK": {Enabled: false}}}); err != nil {
		t.Fatal(err)
	}
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, []string{"CONFLICTING_CLIENT_IDS_CHECK"}) {
		t.Errorf("enabled = %v, want [CONFLICTING_CLIENT_IDS_CHECK]", got)
	}
	// A check a scheduled audit uses cannot be disabled; an unknown check is refused; neither changes anything.
	srv.IoT.PutScheduledAudit("daily", "CONFLICTING_CLIENT_IDS_CHECK")
	for _, m := range []map[string]types.AuditCheckConfiguration{
		{"CONFLICTING_CLIENT_IDS_CHECK": {Enabled: false}, "LOGGING_DISABLED_CHECK": {Enabled: true}},
		{"NOT_A_CHECK": {Enabled: true}, "LOGGING_DISABLED_CHECK": {Enabled: true}},
	} {
		if _, err := c.UpdateAccountAuditConfiguration(ctx, &iot.UpdateAccountAuditConfigurationInput{AuditCheckConfigurations: m}); !errors.As(err, &inv) {
			t.Errorf("Update(%v) = %v, want InvalidRequestException", m, err)
		}
	}
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, []string{"CONFLICTING_CLIENT_IDS_CHECK"}) {
		t.Errorf("after refused updates, enabled = %v", got)
	}
	if _, err := c.DeleteAccountAuditConfiguration(ctx, &iot.DeleteAccountAuditConfigurationInput{DeleteScheduledAudits: true}); err != nil {
		t.Fatal(err)
	}
	if got := srv.IoT.AuditConfiguration(); got.RoleArn != "" || len(got.Checks) != 0 {
		t.Errorf("after delete = %s, want the defaults", got)
	}
}

func TestAuditTasksAndFindings(t *testing.T) {
	srv, cfg := envConfig(t)
	c := iot.NewFromConfig(cfg)
	ctx := context.Background()
	now := time.Now().UTC()
	var findings []awsfake.AuditFinding
	for i := 0; i < 30; i++ {
		findings = append(findings, awsfake.AuditFinding{Check: "DEVICE_CERTIFICATE_EXPIRING_CHECK", DeviceCertificateID: "c" + string(rune('a'+i%26))})
	}
	findings = append(findings, awsfake.AuditFinding{Check: "CA_CERTIFICATE_EXPIRING_CHECK", CACertificateID: "ca1"})
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "old", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-48 * time.Hour)})
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "t1", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-time.Hour), Findings: findings})
	tasks, err := c.ListAuditTasks(ctx, &iot.ListAuditTasksInput{StartTime: aws.Time(now.Add(-24 * time.Hour)), EndTime: aws.Time(now)})
	if err != nil || len(tasks.Tasks) != 1 || aws.ToString(tasks.Tasks[0].TaskId) != "t1" {
		t.Fatalf("ListAuditTasks = %+v, %v; want t1 only", tasks, err)
	}
	n := 0
	p := iot.NewListAuditFindingsPaginator(c, &iot.ListAuditFindingsInput{TaskId: aws.String("t1"), CheckName: aws.String("DEVICE_CERTIFICATE_EXPIRING_CHECK"), MaxResults: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Findings {
			if f.NonCompliantResource == nil || f.NonCompliantResource.ResourceIdentifier.DeviceCertificateId == nil {
				t.Fatalf("finding %+v names no device certificate", f)
			}
			n++
		}
	}
	if n != 30 {
		t.Errorf("findings = %d, want 30", n)
	}
}
