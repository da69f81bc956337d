package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// ourChecks are the checks the operations stack needs.
var ourChecks = []string{
	"CA_CERTIFICATE_EXPIRING_CHECK", "CA_CERTIFICATE_KEY_QUALITY_CHECK", "CONFLICTING_CLIENT_IDS_CHECK",
	"DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK",
	"IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
}

const (
	record        = RecordPrefix + "IotCertOps"
	auditRole     = "arn:aws:iam::123456789012:role/IotCertOps-AuditRole"
	notifyRole    = "arn:aws:iam::123456789012:role/IotCertOps-NotifyRole"
	topic         = "arn:aws:sns:us-east-1:123456789012:IotCertOps-AuditFindings"
	operatorRole  = "arn:aws:iam::123456789012:role/operator-audit"
	operatorTopic = "arn:aws:sns:us-east-1:123456789012:operator-findings"
)

func setup(t *testing.T) (*awsfake.Server, *Handler) {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv, h
}

func props(checks ...string) Properties {
	return Properties{RecordName: record, Checks: checks, AuditRoleArn: auditRole, TopicArn: topic, NotifyRoleArn: notifyRole}
}

func ev(kind string, p Properties) Event {
	return Event{RequestType: kind, ResourceType: ResourceType, LogicalResourceID: "AuditConfiguration", PhysicalResourceID: p.RecordName, ResourceProperties: p}
}

func mustHandle(t *testing.T, h *Handler, e Event) Response {
	t.Helper()
	resp, err := h.Handle(context.Background(), e)
	if err != nil {
		t.Fatalf("Handle(%s) error = %v", e.RequestType, err)
	}
	return resp
}

// operatorAccount is an account whose operator already audits: its own role and topic, two checks on, one of them
// one we need.
func operatorAccount(srv *awsfake.Server) {
	srv.IoT.ConfigureAudit(operatorRole, &awsfake.AuditTarget{Enabled: true, RoleArn: operatorRole, TargetArn: operatorTopic},
		"LOGGING_DISABLED_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK")
}

func TestOperatorChecksKept(t *testing.T) {
	srv, h := setup(t)
	operatorAccount(srv)
	before := srv.IoT.AuditConfiguration().String()

	resp := mustHandle(t, h, ev("Create", props(ourChecks...)))
	if resp.PhysicalResourceID != record {
		t.Errorf("PhysicalResourceId = %s, want %s", resp.PhysicalResourceID, record)
	}
	want := append(slices.Clone(ourChecks), "LOGGING_DISABLED_CHECK")
	slices.Sort(want)
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, want) {
		t.Errorf("enabled checks = %v, want %v", got, want)
	}
	cfg := srv.IoT.AuditConfiguration()
	if cfg.RoleArn != operatorRole || cfg.Targets["SNS"].TargetArn != operatorTopic {
		t.Errorf("role %s, target %+v: the operator's were replaced", cfg.RoleArn, cfg.Targets["SNS"])
	}
	if strings.Contains(resp.Data["EnabledByThisStack"], "DEVICE_CERTIFICATE_EXPIRING_CHECK") {
		t.Errorf("EnabledByThisStack = %s: claims a check the operator had on", resp.Data["EnabledByThisStack"])
	}
	if resp.Data["FindingsTopic"] != operatorTopic {
		t.Errorf("FindingsTopic = %s, want the operator's %s", resp.Data["FindingsTopic"], operatorTopic)
	}

	mustHandle(t, h, ev("Delete", props(ourChecks...)))
	if after := srv.IoT.AuditConfiguration().String(); after != before {
		t.Errorf("after delete:\n%s\nwant the operator's configuration:\n%s", after, before)
	}
	if n := srv.Calls(awsfake.ServiceIoT, "DeleteAccountAuditConfiguration"); n != 0 {
		t.Errorf("DeleteAccountAuditConfiguration calls = %d, want 0: the configuration is the operator's", n)
	}
	if _, ok := srv.SSM.Parameter(record); ok {
		t.Errorf("record %s left after delete", record)
	}
}

func TestFreshAccountCreateUpdateDelete(t *testing.T) {
	srv, h := setup(t)
	mustHandle(t, h, ev("Create", props(ourChecks...)))
	cfg := srv.IoT.AuditConfiguration()
	if cfg.RoleArn != auditRole || cfg.Targets["SNS"] != (awsfake.AuditTarget{Enabled: true, RoleArn: notifyRole, TargetArn: topic}) {
		t.Errorf("role %s, target %+v, want ours", cfg.RoleArn, cfg.Targets["SNS"])
	}
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, ourChecks) {
		t.Errorf("enabled checks = %v, want %v", got, ourChecks)
	}

	// Update: one check fewer, a new topic (the stack replaced its topic).
	fewer := props(ourChecks[1:]...)
	fewer.TopicArn = topic + "-2"
	up := ev("Update", fewer)
	up.OldResourceProperties = props(ourChecks...) // as CloudFormation sends an update
	mustHandle(t, h, up)
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, ourChecks[1:]) {
		t.Errorf("after update, enabled checks = %v, want %v", got, ourChecks[1:])
	}
	if got := srv.IoT.AuditConfiguration().Targets["SNS"].TargetArn; got != topic+"-2" {
		t.Errorf("after update, target = %s, want %s-2", got, topic)
	}
	// The same update again changes nothing.
	calls := srv.Calls(awsfake.ServiceIoT, "UpdateAccountAuditConfiguration")
	up = ev("Update", fewer)
	up.OldResourceProperties = fewer
	mustHandle(t, h, up)
	if n := srv.Calls(awsfake.ServiceIoT, "UpdateAccountAuditConfiguration"); n != calls {
		t.Errorf("a repeated update called UpdateAccountAuditConfiguration %d more times, want 0", n-calls)
	}

	mustHandle(t, h, ev("Delete", fewer))
	cfg = srv.IoT.AuditConfiguration()
	if cfg.RoleArn != "" || len(cfg.Checks) != 0 || len(cfg.Targets) != 0 {
		t.Errorf("after delete = %s, want the account's defaults", cfg)
	}
	// A second delete (CloudFormation retries) finds no record and succeeds.
	mustHandle(t, h, ev("Delete", fewer))
}

func TestFailureMidwayChangesNothing(t *testing.T) {
	for _, c := range []struct {
		name     string
		operator bool
		service  string
		op       string
		fault    awsfake.Fault
	}{
		{"update refused", true, awsfake.ServiceIoT, "UpdateAccountAuditConfiguration",
			awsfake.Fault{Status: 400, Code: "InvalidRequestException", Message: "refused"}},
		{"record not written, operator's account", true, awsfake.ServiceSSM, "PutParameter",
			awsfake.Fault{Status: 400, Code: "ParameterLimitExceeded", Message: "too many parameters"}},
		{"record not written, fresh account", false, awsfake.ServiceSSM, "PutParameter",
			awsfake.Fault{Status: 400, Code: "ParameterLimitExceeded", Message: "too many parameters"}},
		{"other records unreadable", true, awsfake.ServiceSSM, "GetParametersByPath",
			awsfake.Fault{Status: 400, Code: "InvalidFilterKey", Message: "nope"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, h := setup(t)
			if c.operator {
				operatorAccount(srv)
			}
			before := srv.IoT.AuditConfiguration().String()
			srv.Inject(c.service, c.op, c.fault)
			if _, err := h.Handle(context.Background(), ev("Create", props(ourChecks...))); err == nil {
				t.Fatal("Handle(Create) = nil error, want the failure")
			}
			if after := srv.IoT.AuditConfiguration().String(); after != before {
				t.Errorf("after the failure:\n%s\nwant unchanged:\n%s", after, before)
			}
			if _, ok := srv.SSM.Parameter(record); ok {
				t.Errorf("record %s written by a failed create", record)
			}
			// CloudFormation then deletes the failed resource: nothing to restore, nothing changed.
			srv.ClearFaults()
			mustHandle(t, h, ev("Delete", props(ourChecks...)))
			if after := srv.IoT.AuditConfiguration().String(); after != before {
				t.Errorf("after the delete of the failed create:\n%s\nwant unchanged:\n%s", after, before)
			}
		})
	}
}

func TestChecksAnotherRecordNeedsStayOn(t *testing.T) {
	srv, h := setup(t)
	mustHandle(t, h, ev("Create", props(ourChecks...)))
	other := props("DEVICE_CERTIFICATE_EXPIRING_CHECK")
	other.RecordName = RecordPrefix + "IotCertOps-us-west-2"
	if resp := mustHandle(t, h, ev("Create", other)); resp.Data["EnabledByThisStack"] != "none" {
		t.Errorf("EnabledByThisStack = %q, want none: the check was already on", resp.Data["EnabledByThisStack"])
	}

	mustHandle(t, h, ev("Delete", props(ourChecks...)))
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, []string{"DEVICE_CERTIFICATE_EXPIRING_CHECK"}) {
		t.Errorf("enabled checks = %v, want the one the other stack needs", got)
	}
	mustHandle(t, h, ev("Delete", other))
	if got := srv.IoT.EnabledAuditChecks(); len(got) != 0 {
		t.Errorf("enabled checks after both deletes = %v, want none", got)
	}
}

func TestCheckUsedByAnotherScheduledAuditStaysOn(t *testing.T) {
	srv, h := setup(t)
	operatorAccount(srv)
	mustHandle(t, h, ev("Create", props(ourChecks...)))
	// Meanwhile the operator schedules an audit of their own that uses a check we turned on.
	srv.IoT.PutScheduledAudit("operator-weekly", "CONFLICTING_CLIENT_IDS_CHECK")
	mustHandle(t, h, ev("Delete", props(ourChecks...)))
	want := []string{"CONFLICTING_CLIENT_IDS_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK", "LOGGING_DISABLED_CHECK"}
	if got := srv.IoT.EnabledAuditChecks(); !slices.Equal(got, want) {
		t.Errorf("enabled checks = %v, want %v", got, want)
	}
}

func TestBadPropertiesChangeNothing(t *testing.T) {
	for name, mutate := range map[string]func(*Properties){
		"no checks":          func(p *Properties) { p.Checks = nil },
		"bad check":          func(p *Properties) { p.Checks = []string{"ALL"} },
		"record outside":     func(p *Properties) { p.RecordName = "/other/record" },
		"role not an ARN":    func(p *Properties) { p.AuditRoleArn = "admin" },
		"topic not an ARN":   func(p *Properties) { p.TopicArn = "" },
		"injected in record": func(p *Properties) { p.RecordName = RecordPrefix + "../x" },
	} {
		t.Run(name, func(t *testing.T) {
			srv, h := setup(t)
			p := props(ourChecks...)
			mutate(&p)
			_, err := h.Handle(context.Background(), ev("Create", p))
			if err == nil || strings.ContainsAny(err.Error(), "\n") {
				t.Fatalf("Handle = %v, want a one-line error", err)
			}
			if n := srv.Calls(awsfake.ServiceIoT, "UpdateAccountAuditConfiguration"); n != 0 {
				t.Errorf("UpdateAccountAuditConfiguration calls = %d, want 0", n)
			}
		})
	}
	if _, err := (&Handler{}).Handle(context.Background(), Event{RequestType: "Frobnicate"}); err == nil ||
		!strings.Contains(err.Error(), "Frobnicate") {
		t.Errorf("unknown request type: %v", err)
	}
}

// Whoever can write the record parameter must not be able to make the stack's update or delete turn off the
// operator's checks or delete the operator's configuration: a record is believed only for the checks of the
// resource's own properties, and its roleSet only while the account's audit role is the resource's own.
func TestForgedRecordCannotTurnOffOperatorChecks(t *testing.T) {
	srv, h := setup(t)
	operatorAccount(srv)
	mustHandle(t, h, ev("Create", props(ourChecks...)))
	before := srv.IoT.EnabledAuditChecks()
	forged := `{"needs":[],"enabled":["LOGGING_DISABLED_CHECK","DEVICE_CERTIFICATE_EXPIRING_CHECK"],"roleSet":true}`

	srv.SSM.Put(record, forged)
	up := ev("Update", props(ourChecks...))
	up.OldResourceProperties = props(ourChecks...)
	mustHandle(t, h, up)
	if got := srv.IoT.EnabledAuditChecks(); !slices.Contains(got, "LOGGING_DISABLED_CHECK") {
		t.Fatalf("after an update over a forged record, enabled checks = %v: the operator's LOGGING_DISABLED_CHECK was turned off", got)
	}
	if role := srv.IoT.AuditConfiguration().RoleArn; role != operatorRole {
		t.Fatalf("after an update over a forged record, audit role = %s, want the operator's", role)
	}

	srv.SSM.Put(record, forged)
	mustHandle(t, h, ev("Delete", props(ourChecks...)))
	if n := srv.Calls(awsfake.ServiceIoT, "DeleteAccountAuditConfiguration"); n != 0 {
		t.Fatalf("DeleteAccountAuditConfiguration calls = %d: a forged record deleted the operator's configuration", n)
	}
	if got := srv.IoT.EnabledAuditChecks(); !slices.Contains(got, "LOGGING_DISABLED_CHECK") {
		t.Fatalf("after a delete over a forged record, enabled checks = %v (before %v): the operator's check was turned off", got, before)
	}
}
