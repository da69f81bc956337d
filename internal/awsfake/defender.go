package awsfake

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS IoT Device Defender audit: the account's audit configuration, scheduled audits (state only: CloudFormation
// defines them), audit tasks and their findings (put by tests).
//
// What the fake models, from AWS's pages:
//   - DescribeAccountAuditConfiguration answers every check with its enabled flag; all checks are disabled by default
//     and DeleteAccountAuditConfiguration restores the defaults ("This restores all default values, and effectively
//     disables audits because all checks are disabled by default",
//     https://docs.aws.amazon.com/iot-device-defender/latest/devguide/AuditCommands.html).
//   - UpdateAccountAuditConfiguration: "On the first call to UpdateAccountAuditConfiguration, this parameter [roleArn]
//     is required", auditCheckConfigurations "is required and must specify at least one enabled check" on the first
//     call, and "You cannot disable a check if it's used by any scheduled audit"
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateAccountAuditConfiguration.html). Checks the
//     request does not name keep their state, as AWS's CLI example that enables a single check shows
//     (https://docs.aws.amazon.com/cli/latest/reference/iot/update-account-audit-configuration.html); the app's
//     custom resource does not depend on it: it sends every check back.
//   - DeleteAccountAuditConfiguration: "If true, all scheduled audits are deleted"
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteAccountAuditConfiguration.html); an account that
//     was never configured answers ResourceNotFoundException, one of the operation's documented errors.
//   - ListAuditTasks and ListAuditFindings page with nextToken
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_ListAuditTasks.html,
//     https://docs.aws.amazon.com/iot/latest/apireference/API_ListAuditFindings.html).

// AuditChecks are the audit checks the fake knows (the names of AWS's audit checks,
// https://docs.aws.amazon.com/iot-device-defender/latest/devguide/device-defender-audit-checks.html).
var AuditChecks = []string{
	"AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", "CA_CERTIFICATE_EXPIRING_CHECK", "CA_CERTIFICATE_KEY_QUALITY_CHECK",
	"CONFLICTING_CLIENT_IDS_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK",
	"DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK", "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
	"IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
	"IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", "LOGGING_DISABLED_CHECK", "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
	"REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
}

// AuditCheck is one check's configuration.
type AuditCheck struct {
	Enabled       bool              `json:"enabled"`
	Configuration map[string]string `json:"configuration,omitempty"`
}

// AuditTarget is a notification target (key "SNS").
type AuditTarget struct {
	Enabled   bool   `json:"enabled"`
	RoleArn   string `json:"roleArn,omitempty"`
	TargetArn string `json:"targetArn,omitempty"`
}

// AuditConfiguration is the account's audit configuration.
type AuditConfiguration struct {
	RoleArn string
	Checks  map[string]AuditCheck
	Targets map[string]AuditTarget
}

// AuditTask is one audit run, with its findings.
type AuditTask struct {
	ID     string
	Type   string // ON_DEMAND_AUDIT_TASK or SCHEDULED_AUDIT_TASK
	Status string // IN_PROGRESS, COMPLETED, FAILED or CANCELED
	Start  time.Time
	// ScheduledAuditName names the scheduled audit that ran it (SCHEDULED_AUDIT_TASK only).
	ScheduledAuditName string
	Findings           []AuditFinding
}

// AuditFinding is one non-compliant resource of a task.
type AuditFinding struct {
	Check string
	// DeviceCertificateID or CACertificateID names the certificate the finding is about.
	DeviceCertificateID string
	CACertificateID     string
	// Reason is the finding's reasonForNonCompliance; Suppressed hides it unless listSuppressedFindings is asked.
	Reason     string
	Suppressed bool
}

type defenderState struct {
	configured bool
	roleArn    string
	checks     map[string]AuditCheck
	targets    map[string]AuditTarget
	scheduled  map[string][]string // scheduled audit name → its checks
	tasks      []AuditTask
}

var iotDefenderRoutes = []struct{ method, path, op string }{
	{"GET", "/audit/configuration", "DescribeAccountAuditConfiguration"},
	{"PATCH", "/audit/configuration", "UpdateAccountAuditConfiguration"},
	{"DELETE", "/audit/configuration", "DeleteAccountAuditConfiguration"},
	{"GET", "/audit/tasks", "ListAuditTasks"},
	{"GET", "/audit/tasks/{}", "DescribeAuditTask"},
	{"POST", "/audit/findings", "ListAuditFindings"},
}

func init() {
	for op, codes := range map[string]string{
		"DescribeAccountAuditConfiguration": "InternalFailureException ThrottlingException",
		"UpdateAccountAuditConfiguration":   "InternalFailureException InvalidRequestException ThrottlingException",
		"DeleteAccountAuditConfiguration":   "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
		"ListAuditTasks":                    "InternalFailureException InvalidRequestException ThrottlingException",
		"DescribeAuditTask":                 "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
		"ListAuditFindings":                 "InternalFailureException InvalidRequestException ThrottlingException",
	} {
		sdkErrorCodes["iot/"+op] = codes
	}
}

func isDefenderOp(op string) bool {
	for _, r := range iotDefenderRoutes {
		if r.op == op {
			return true
		}
	}
	return false
}

// serveDefender runs the operations of iotDefenderRoutes. Caller holds f.mu.
func (f *IoT) serveDefender(op string, params []string, q url.Values, body []byte) (any, *apiError) {
	switch op {
	case "DescribeAccountAuditConfiguration":
		return f.describeAudit(), nil
	case "UpdateAccountAuditConfiguration":
		return nil, f.updateAudit(body)
	case "DeleteAccountAuditConfiguration":
		return nil, f.deleteAudit(q.Get("deleteScheduledAudits") == "true")
	case "ListAuditTasks":
		return f.listAuditTasks(q)
	case "DescribeAuditTask":
		return f.describeAuditTask(params[0])
	default:
		return f.listAuditFindings(body)
	}
}

func (f *IoT) describeAudit() any {
	d := &f.dd
	checks := map[string]AuditCheck{}
	for _, c := range AuditChecks {
		checks[c] = AuditCheck{Enabled: d.checks[c].Enabled, Configuration: maps.Clone(d.checks[c].Configuration)}
	}
	out := map[string]any{"auditCheckConfigurations": checks}
	if d.roleArn != "" {
		out["roleArn"] = d.roleArn
	}
	if len(d.targets) > 0 {
		out["auditNotificationTargetConfigurations"] = maps.Clone(d.targets)
	}
	return out
}

func (f *IoT) updateAudit(body []byte) *apiError {
	var in struct {
		RoleArn *string                 `json:"roleArn"`
		Checks  map[string]AuditCheck   `json:"auditCheckConfigurations"`
		Targets map[string]*AuditTarget `json:"auditNotificationTargetConfigurations"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return e
	}
	d := &f.dd
	if in.RoleArn != nil && (len(*in.RoleArn) < 20 || len(*in.RoleArn) > 2048) {
		return invalidRequest("roleArn must be 20 to 2048 characters")
	}
	if !d.configured {
		if in.RoleArn == nil {
			return invalidRequest("roleArn is required on the first call to UpdateAccountAuditConfiguration")
		}
		on := false
		for _, c := range in.Checks {
			on = on || c.Enabled
		}
		if !on {
			return invalidRequest("auditCheckConfigurations must enable at least one check on the first call")
		}
	}
	for name, c := range in.Checks {
		if !slices.Contains(AuditChecks, name) {
			return invalidRequest("unknown audit check %s", name)
		}
		if !c.Enabled && d.checks[name].Enabled {
			for audit, used := range d.scheduled {
				if slices.Contains(used, name) {
					return invalidRequest("check %s is used by the scheduled audit %s and cannot be disabled", name, audit)
				}
			}
		}
	}
	for key, t := range in.Targets {
		if key != "SNS" {
			return invalidRequest("unknown notification target %s", key)
		}
		if t == nil || (t.Enabled && (t.TargetArn == "" || t.RoleArn == "")) {
			return invalidRequest("an enabled SNS target needs targetArn and roleArn")
		}
	}
	// Valid: apply all of it.
	d.configured = true
	if in.RoleArn != nil {
		d.roleArn = *in.RoleArn
	}
	if d.checks == nil {
		d.checks = map[string]AuditCheck{}
	}
	for name, c := range in.Checks {
		if c.Configuration == nil {
			c.Configuration = d.checks[name].Configuration
		}
		d.checks[name] = AuditCheck{Enabled: c.Enabled, Configuration: maps.Clone(c.Configuration)}
	}
	if d.targets == nil {
		d.targets = map[string]AuditTarget{}
	}
	for key, t := range in.Targets {
		d.targets[key] = *t
	}
	return nil
}

func (f *IoT) deleteAudit(deleteScheduled bool) *apiError {
	d := &f.dd
	if !d.configured {
		return notFound("the account has no audit configuration")
	}
	scheduled := d.scheduled
	if deleteScheduled {
		scheduled = nil
	}
	f.dd = defenderState{scheduled: scheduled, tasks: d.tasks}
	return nil
}

func (f *IoT) listAuditTasks(q url.Values) (any, *apiError) {
	start, err1 := time.Parse(time.RFC3339, q.Get("startTime"))
	end, err2 := time.Parse(time.RFC3339, q.Get("endTime"))
	if err1 != nil || err2 != nil {
		return nil, invalidRequest("startTime and endTime are required")
	}
	var items []map[string]any
	for _, t := range f.dd.tasks {
		if t.Start.Before(start) || t.Start.After(end) ||
			(q.Get("taskType") != "" && q.Get("taskType") != t.Type) || (q.Get("taskStatus") != "" && q.Get("taskStatus") != t.Status) {
			continue
		}
		items = append(items, map[string]any{"taskId": t.ID, "taskStatus": t.Status, "taskType": t.Type})
	}
	return pageOut(items, q.Get("maxResults"), q.Get("nextToken"), 25, 250, "tasks")
}

// describeAuditTask answers the task with a count of non-compliant resources per check it has findings for
// (https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeAuditTask.html).
func (f *IoT) describeAuditTask(id string) (any, *apiError) {
	for _, t := range f.dd.tasks {
		if t.ID != id {
			continue
		}
		details := map[string]any{}
		counts := map[string]int{}
		for _, fd := range t.Findings {
			counts[fd.Check]++
		}
		for c, n := range counts {
			details[c] = map[string]any{"checkRunStatus": "COMPLETED_NON_COMPLIANT", "checkCompliant": false,
				"nonCompliantResourcesCount": n, "totalResourcesCount": n}
		}
		out := map[string]any{"taskStatus": t.Status, "taskType": t.Type, "taskStartTime": epoch(t.Start), "auditDetails": details}
		if t.ScheduledAuditName != "" {
			out["scheduledAuditName"] = t.ScheduledAuditName
		}
		return out, nil
	}
	return nil, notFound("audit task %s does not exist", id)
}

// listAuditFindings answers ListAuditFindings
// (https://docs.aws.amazon.com/iot/latest/apireference/API_ListAuditFindings.html): findings of one task (taskId), or
// of the tasks that ran in a window (startTime and endTime); "you must specify either the taskId or the startTime and
// endTime, but not both". A finding's time is its task's start. Suppressed findings are left out unless
// listSuppressedFindings is true.
func (f *IoT) listAuditFindings(body []byte) (any, *apiError) {
	var in struct {
		TaskID         string   `json:"taskId"`
		CheckName      string   `json:"checkName"`
		StartTime      *float64 `json:"startTime"`
		EndTime        *float64 `json:"endTime"`
		ListSuppressed bool     `json:"listSuppressedFindings"`
		MaxResults     *int     `json:"maxResults"`
		NextToken      string   `json:"nextToken"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	window := in.StartTime != nil || in.EndTime != nil
	if in.TaskID != "" && window {
		return nil, invalidRequest("Specify either taskId or startTime and endTime, not both.")
	}
	if in.TaskID == "" && (in.StartTime == nil || in.EndTime == nil) {
		return nil, invalidRequest("Specify a taskId, or both startTime and endTime.")
	}
	var items []map[string]any
	for _, t := range f.dd.tasks {
		if in.TaskID != "" && t.ID != in.TaskID {
			continue
		}
		if window && (epoch(t.Start) < *in.StartTime || epoch(t.Start) > *in.EndTime) {
			continue
		}
		for i, fd := range t.Findings {
			if in.CheckName != "" && fd.Check != in.CheckName || fd.Suppressed && !in.ListSuppressed {
				continue
			}
			res := map[string]any{"resourceType": "DEVICE_CERTIFICATE",
				"resourceIdentifier": map[string]any{"deviceCertificateId": fd.DeviceCertificateID}}
			if fd.CACertificateID != "" {
				res = map[string]any{"resourceType": "CA_CERTIFICATE",
					"resourceIdentifier": map[string]any{"caCertificateId": fd.CACertificateID}}
			}
			item := map[string]any{
				"findingId": t.ID + "-" + strconv.Itoa(i), "taskId": t.ID, "checkName": fd.Check, "severity": "MEDIUM",
				"taskStartTime": epoch(t.Start), "findingTime": epoch(t.Start), "nonCompliantResource": res,
				"isSuppressed": fd.Suppressed,
			}
			if fd.Reason != "" {
				item["reasonForNonCompliance"] = fd.Reason
			}
			items = append(items, item)
		}
	}
	max := ""
	if in.MaxResults != nil {
		max = strconv.Itoa(*in.MaxResults)
	}
	return pageOut(items, max, in.NextToken, 25, 250, "findings")
}

// pageOut answers one page of items under key; the token is the offset of the next page.
func pageOut(items []map[string]any, maxResults, token string, def, limit int, key string) (any, *apiError) {
	n := def
	if maxResults != "" {
		v, err := strconv.Atoi(maxResults)
		if err != nil || v < 1 || v > limit {
			return nil, invalidRequest("maxResults must be 1 to %d", limit)
		}
		n = v
	}
	from := 0
	if token != "" {
		v, err := strconv.Atoi(token)
		if err != nil || v < 0 || v > len(items) {
			return nil, invalidRequest("invalid nextToken")
		}
		from = v
	}
	to := min(from+n, len(items))
	out := map[string]any{key: append([]map[string]any{}, items[from:to]...)}
	if to < len(items) {
		out["nextToken"] = strconv.Itoa(to)
	}
	return out, nil
}

// State accessors.

// AuditConfiguration returns a copy of the account's audit configuration (only enabled checks are listed).
func (f *IoT) AuditConfiguration() AuditConfiguration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := AuditConfiguration{RoleArn: f.dd.roleArn, Checks: map[string]AuditCheck{}, Targets: maps.Clone(f.dd.targets)}
	for name, c := range f.dd.checks {
		if c.Enabled {
			out.Checks[name] = AuditCheck{Enabled: true, Configuration: maps.Clone(c.Configuration)}
		}
	}
	return out
}

// EnabledAuditChecks lists the enabled checks, sorted.
func (f *IoT) EnabledAuditChecks() []string {
	var out []string
	for name := range f.AuditConfiguration().Checks {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ConfigureAudit sets the account's audit configuration as an operator would have (checks named are enabled).
func (f *IoT) ConfigureAudit(roleArn string, target *AuditTarget, checks ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dd.configured, f.dd.roleArn = true, roleArn
	if f.dd.checks == nil {
		f.dd.checks = map[string]AuditCheck{}
	}
	for _, c := range checks {
		f.dd.checks[c] = AuditCheck{Enabled: true, Configuration: f.dd.checks[c].Configuration}
	}
	if target != nil {
		f.dd.targets = map[string]AuditTarget{"SNS": *target}
	}
}

// PutScheduledAudit records a scheduled audit that uses checks (what AWS::IoT::ScheduledAudit defines).
func (f *IoT) PutScheduledAudit(name string, checks ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dd.scheduled == nil {
		f.dd.scheduled = map[string][]string{}
	}
	f.dd.scheduled[name] = append([]string(nil), checks...)
}

// DeleteScheduledAudit removes a scheduled audit.
func (f *IoT) DeleteScheduledAudit(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.dd.scheduled, name)
}

// PutAuditTask records an audit run and its findings.
func (f *IoT) PutAuditTask(t AuditTask) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Findings = append([]AuditFinding(nil), t.Findings...)
	f.dd.tasks = append(f.dd.tasks, t)
}

// String is the configuration as JSON, for tests that compare configurations.
func (c AuditConfiguration) String() string {
	b, _ := json.Marshal(c)
	return strings.TrimSpace(string(b))
}
