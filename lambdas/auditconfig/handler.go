package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ResourceType is the custom resource type this function serves.
const ResourceType = "Custom::AuditConfiguration"

// RecordPrefix is the SSM path under which every instance of the resource keeps its record: what it turned on and
// which checks it needs. An instance reads the others' records so it never turns off a check another one needs.
const RecordPrefix = "/iotcert/ops/audit/"

// snsTarget is the notification target key of the audit configuration.
const snsTarget = "SNS"

// IoTAPI is what the handler calls on AWS IoT.
type IoTAPI interface {
	DescribeAccountAuditConfiguration(context.Context, *iot.DescribeAccountAuditConfigurationInput, ...func(*iot.Options)) (*iot.DescribeAccountAuditConfigurationOutput, error)
	UpdateAccountAuditConfiguration(context.Context, *iot.UpdateAccountAuditConfigurationInput, ...func(*iot.Options)) (*iot.UpdateAccountAuditConfigurationOutput, error)
	DeleteAccountAuditConfiguration(context.Context, *iot.DeleteAccountAuditConfigurationInput, ...func(*iot.Options)) (*iot.DeleteAccountAuditConfigurationOutput, error)
}

// SSMAPI is what the handler calls on SSM Parameter Store.
type SSMAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(context.Context, *ssm.DeleteParameterInput, ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
	ssm.GetParametersByPathAPIClient
}

// Handler serves Custom::AuditConfiguration.
//
// The account's audit configuration is shared with whatever else runs there. On create and update the handler turns
// on the checks it is given that are off, sets the audit role only when the account has none, and sets the SNS
// notification target only when none is enabled; it writes what it changed to its record (an SSM String parameter,
// the resource's physical id). On delete it turns off only checks it turned on that no other record needs, restores
// the notification target it replaced, and deletes the whole configuration only when it created it and nothing
// else is left on. Every update sends AWS the complete check map it read, changed only where it means to, so no
// check is turned off by omission.
type Handler struct {
	IoT IoTAPI
	SSM SSMAPI
	Log *slog.Logger
}

// Event is the provider framework's onEvent request.
type Event struct {
	RequestType        string     `json:"RequestType"`
	ResourceType       string     `json:"ResourceType"`
	LogicalResourceID  string     `json:"LogicalResourceId"`
	PhysicalResourceID string     `json:"PhysicalResourceId,omitempty"`
	ResourceProperties Properties `json:"ResourceProperties"`
	// OldResourceProperties are the properties before an Update.
	OldResourceProperties Properties `json:"OldResourceProperties"`
}

// Properties of Custom::AuditConfiguration.
type Properties struct {
	// RecordName is the SSM parameter holding this resource's record, under RecordPrefix.
	RecordName string `json:"RecordName"`
	// Checks to enable.
	Checks []string `json:"Checks"`
	// AuditRoleArn is the role Device Defender assumes to audit (set only when the account has none).
	AuditRoleArn string `json:"AuditRoleArn"`
	// TopicArn receives the audit notifications; NotifyRoleArn is the role AWS IoT assumes to publish to it.
	TopicArn      string `json:"TopicArn"`
	NotifyRoleArn string `json:"NotifyRoleArn"`
}

// Response is the onEvent answer.
type Response struct {
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	Data               map[string]string `json:"Data,omitempty"`
}

// Record is what one resource changed in the account's audit configuration.
type Record struct {
	// Needs are the checks the resource needs on.
	Needs []string `json:"needs"`
	// Enabled are the checks it turned on (they were off).
	Enabled []string `json:"enabled"`
	// RoleSet: the account had no audit role and this resource set it (and so created the configuration).
	RoleSet bool `json:"roleSet,omitempty"`
	// TargetSet: no SNS target was enabled and this resource set its own; Previous is what was there.
	TargetSet bool          `json:"targetSet,omitempty"`
	Previous  *targetRecord `json:"previousTarget,omitempty"`
}

type targetRecord struct {
	Enabled   bool   `json:"enabled"`
	RoleArn   string `json:"roleArn,omitempty"`
	TargetArn string `json:"targetArn,omitempty"`
}

var (
	checkRE  = regexp.MustCompile(`^[A-Z][A-Z0-9_]{2,127}_CHECK$`)
	recordRE = regexp.MustCompile(`^` + regexp.QuoteMeta(RecordPrefix) + `[A-Za-z0-9_.-]{1,200}$`)
	roleRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$`)
	topicRE  = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)
)

func (p Properties) validate() error {
	if !recordRE.MatchString(p.RecordName) {
		return fmt.Errorf("property RecordName %q must be an SSM parameter name under %s", p.RecordName, RecordPrefix)
	}
	if len(p.Checks) == 0 {
		return errors.New("property Checks names no audit check")
	}
	for _, c := range p.Checks {
		if !checkRE.MatchString(c) {
			return fmt.Errorf("property Checks: %q is not an audit check name", c)
		}
	}
	for name, v := range map[string]string{"AuditRoleArn": p.AuditRoleArn, "NotifyRoleArn": p.NotifyRoleArn} {
		if !roleRE.MatchString(v) {
			return fmt.Errorf("property %s %q is not an IAM role ARN", name, v)
		}
	}
	if !topicRE.MatchString(p.TopicArn) {
		return fmt.Errorf("property TopicArn %q is not an SNS topic ARN", p.TopicArn)
	}
	return nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// Handle serves one request; an error becomes the FAILED reason CloudFormation shows.
func (h *Handler) Handle(ctx context.Context, ev Event) (Response, error) {
	log := h.log().With("requestType", ev.RequestType, "logicalResourceId", ev.LogicalResourceID)
	if ev.ResourceType != "" && ev.ResourceType != ResourceType {
		return Response{}, fmt.Errorf("resource type %q is not served here, want %s", ev.ResourceType, ResourceType)
	}
	p := ev.ResourceProperties
	switch ev.RequestType {
	case "Create", "Update":
		if err := p.validate(); err != nil {
			return Response{}, err
		}
		if ev.RequestType == "Update" && ev.PhysicalResourceID != p.RecordName {
			// A new record name is a new resource: CloudFormation deletes the old one (restoring what it changed)
			// once this one exists.
			log.Info("record name changed: a new record", "old", ev.PhysicalResourceID, "new", p.RecordName)
		}
		var old *Properties
		if ev.RequestType == "Update" {
			old = &ev.OldResourceProperties
		}
		resp, err := h.apply(ctx, log, p, old)
		if err != nil {
			log.Error("request failed", "error", err.Error())
		}
		return resp, err
	case "Delete":
		name := ev.PhysicalResourceID
		if !recordRE.MatchString(name) {
			// A create that failed before it recorded anything: nothing to restore.
			log.Info("no record for this resource: nothing to restore", "physicalResourceId", name)
			return Response{PhysicalResourceID: name}, nil
		}
		if err := h.restore(ctx, log, name, p); err != nil {
			log.Error("request failed", "error", err.Error())
			return Response{}, err
		}
		return Response{PhysicalResourceID: name}, nil
	default:
		return Response{}, fmt.Errorf("unknown request type %q", ev.RequestType)
	}
}

// current is the account's audit configuration as read.
type current struct {
	checks  map[string]iottypes.AuditCheckConfiguration
	role    string
	targets map[string]iottypes.AuditNotificationTarget
}

func (h *Handler) describe(ctx context.Context) (current, error) {
	out, err := h.IoT.DescribeAccountAuditConfiguration(ctx, &iot.DescribeAccountAuditConfigurationInput{})
	if err != nil {
		return current{}, fmt.Errorf("describe account audit configuration: %w", err)
	}
	c := current{checks: out.AuditCheckConfigurations, role: aws.ToString(out.RoleArn), targets: out.AuditNotificationTargetConfigurations}
	if c.checks == nil {
		c.checks = map[string]iottypes.AuditCheckConfiguration{}
	}
	return c, nil
}

func (c current) enabled(check string) bool { return c.checks[check].Enabled }

// update sends the whole check map with the changes applied, plus the role and target when given.
func (h *Handler) update(ctx context.Context, c current, set map[string]bool, role string, target *iottypes.AuditNotificationTarget) error {
	checks := map[string]iottypes.AuditCheckConfiguration{}
	for name, cfg := range c.checks {
		checks[name] = cfg
	}
	for name, on := range set {
		cfg := checks[name]
		cfg.Enabled = on
		checks[name] = cfg
	}
	in := &iot.UpdateAccountAuditConfigurationInput{AuditCheckConfigurations: checks}
	if role != "" {
		in.RoleArn = aws.String(role)
	}
	if target != nil {
		in.AuditNotificationTargetConfigurations = map[string]iottypes.AuditNotificationTarget{snsTarget: *target}
	}
	if _, err := h.IoT.UpdateAccountAuditConfiguration(ctx, in); err != nil {
		return fmt.Errorf("update account audit configuration: %w", err)
	}
	return nil
}

// apply turns on what p needs and records what it changed. The record is a parameter others may be able to write, so
// it is believed only where the template agrees: a check is turned off only when it is one of the resource's own
// (p's or, on an update, old's), the audit role replaced only while it is old's role, the notification target only
// while it is old's topic.
func (h *Handler) apply(ctx context.Context, log *slog.Logger, p Properties, old *Properties) (Response, error) {
	own := map[string]bool{}
	for _, c := range p.Checks {
		own[c] = true
	}
	var oldRole, oldTopic string
	if old != nil {
		for _, c := range old.Checks {
			own[c] = true
		}
		oldRole, oldTopic = old.AuditRoleArn, old.TopicArn
	}
	rec, err := h.readRecord(ctx, p.RecordName)
	if err != nil {
		return Response{}, err
	}
	if rec == nil {
		rec = &Record{}
	}
	cur, err := h.describe(ctx)
	if err != nil {
		return Response{}, err
	}
	others, err := h.othersNeed(ctx, p.RecordName)
	if err != nil {
		return Response{}, err
	}
	next := *rec
	next.Needs = sorted(p.Checks)
	set := map[string]bool{}
	for _, c := range next.Needs {
		if !cur.enabled(c) {
			set[c] = true
			next.Enabled = appendUnique(next.Enabled, c)
		}
	}
	// Checks this resource turned on and no longer needs: off, unless another record needs them.
	var keep []string
	for _, c := range next.Enabled {
		if slices.Contains(next.Needs, c) || others[c] {
			keep = append(keep, c)
		} else if cur.enabled(c) && own[c] {
			set[c] = false
		}
	}
	next.Enabled = sorted(keep)

	role := ""
	switch {
	case cur.role == "" || (rec.RoleSet && cur.role != p.AuditRoleArn && cur.role == oldRole):
		role, next.RoleSet = p.AuditRoleArn, true
	case cur.role != p.AuditRoleArn:
		next.RoleSet = false // the account's role is someone else's, whatever the record says
	}
	var target *iottypes.AuditNotificationTarget
	sns, hasSNS := cur.targets[snsTarget]
	ours := iottypes.AuditNotificationTarget{Enabled: true, TargetArn: aws.String(p.TopicArn), RoleArn: aws.String(p.NotifyRoleArn)}
	switch {
	case !hasSNS || !sns.Enabled:
		target = &ours
		if !rec.TargetSet && hasSNS {
			next.Previous = &targetRecord{Enabled: sns.Enabled, RoleArn: aws.ToString(sns.RoleArn), TargetArn: aws.ToString(sns.TargetArn)}
		}
		next.TargetSet = true
	case rec.TargetSet && aws.ToString(sns.TargetArn) == p.TopicArn && aws.ToString(sns.RoleArn) != p.NotifyRoleArn,
		rec.TargetSet && aws.ToString(sns.TargetArn) != p.TopicArn && oldTopic != "" && aws.ToString(sns.TargetArn) == oldTopic:
		target = &ours
	case aws.ToString(sns.TargetArn) != p.TopicArn && aws.ToString(sns.TargetArn) != oldTopic:
		next.TargetSet, next.Previous = false, nil // the enabled target is someone else's
	}

	changed := len(set) > 0 || role != "" || target != nil
	if changed {
		if err := h.update(ctx, cur, set, role, target); err != nil {
			return Response{}, err
		}
	}
	if err := h.writeRecord(ctx, p.RecordName, next); err != nil {
		if changed {
			// Undo this call's changes: nothing of the account's configuration stays changed without a record.
			if uerr := h.undo(ctx, cur, set, role != "" && cur.role == "", target, sns, hasSNS); uerr != nil {
				return Response{}, fmt.Errorf("%w; undoing the audit configuration change also failed: %v", err, uerr)
			}
		}
		return Response{}, err
	}
	findings := p.TopicArn
	if target == nil && !next.TargetSet {
		findings = aws.ToString(sns.TargetArn)
		log.Warn("the account already sends audit notifications to another topic: left as it is", "topic", findings)
	}
	log.Info("audit configuration applied", "turnedOn", keys(set, true), "turnedOff", keys(set, false),
		"roleSet", role != "", "targetSet", target != nil)
	enabled := strings.Join(next.Enabled, ",")
	if enabled == "" {
		enabled = "none" // a stack output cannot be empty
	}
	return Response{PhysicalResourceID: p.RecordName, Data: map[string]string{
		"EnabledByThisStack": enabled,
		"FindingsTopic":      findings,
	}}, nil
}

// undo reverses one apply's update after its record could not be written.
func (h *Handler) undo(ctx context.Context, before current, set map[string]bool, createdConfig bool, target *iottypes.AuditNotificationTarget,
	prev iottypes.AuditNotificationTarget, hadSNS bool) error {
	if createdConfig {
		_, err := h.IoT.DeleteAccountAuditConfiguration(ctx, &iot.DeleteAccountAuditConfigurationInput{})
		return err
	}
	back := map[string]bool{}
	for c, on := range set {
		back[c] = !on
	}
	var t *iottypes.AuditNotificationTarget
	if target != nil {
		t = &iottypes.AuditNotificationTarget{Enabled: false, TargetArn: target.TargetArn, RoleArn: target.RoleArn}
		if hadSNS {
			t = &prev
		}
	}
	after := current{checks: map[string]iottypes.AuditCheckConfiguration{}}
	for name, cfg := range before.checks {
		after.checks[name] = cfg
	}
	for c, on := range set {
		cfg := after.checks[c]
		cfg.Enabled = on
		after.checks[c] = cfg
	}
	return h.update(ctx, after, back, "", t)
}

// restore undoes what the record says this resource changed, believing it only where p (the resource's properties)
// agrees: only p's checks are turned off, the configuration deleted only while the audit role is p's, the target
// restored only while it is p's topic.
func (h *Handler) restore(ctx context.Context, log *slog.Logger, name string, p Properties) error {
	rec, err := h.readRecord(ctx, name)
	if err != nil {
		return err
	}
	if rec == nil {
		log.Info("record already gone: nothing to restore", "record", name)
		return nil
	}
	cur, err := h.describe(ctx)
	if err != nil {
		return err
	}
	need, recs, err := h.others(ctx, name)
	if err != nil {
		return err
	}
	off := map[string]bool{}
	var kept []string
	for _, c := range rec.Enabled {
		switch {
		case len(need[c]) > 0:
			kept = append(kept, c)
		case cur.enabled(c) && slices.Contains(p.Checks, c):
			off[c] = false
		}
	}
	if rec.RoleSet && cur.role != p.AuditRoleArn {
		rec.RoleSet = false
	}
	stillOn := false
	for c, cfg := range cur.checks {
		if _, ours := off[c]; cfg.Enabled && !ours {
			stillOn = true
		}
	}
	sns, hasSNS := cur.targets[snsTarget]
	// This resource created the configuration and nothing else uses it: back to the account's defaults.
	if rec.RoleSet && !stillOn && (!rec.TargetSet || !rec.hadPrevious()) {
		if _, err := h.IoT.DeleteAccountAuditConfiguration(ctx, &iot.DeleteAccountAuditConfigurationInput{}); err != nil {
			var nf *iottypes.ResourceNotFoundException
			if !errors.As(err, &nf) {
				return fmt.Errorf("delete account audit configuration: %w", err)
			}
		}
		log.Info("audit configuration deleted: this stack had created it and nothing else is on")
		return h.deleteRecord(ctx, name)
	}
	var target *iottypes.AuditNotificationTarget
	if rec.TargetSet && hasSNS && sns.Enabled && aws.ToString(sns.TargetArn) == p.TopicArn {
		if p := rec.Previous; p != nil {
			target = &iottypes.AuditNotificationTarget{Enabled: p.Enabled, RoleArn: nonEmpty(p.RoleArn), TargetArn: nonEmpty(p.TargetArn)}
		} else {
			target = &iottypes.AuditNotificationTarget{Enabled: false, RoleArn: sns.RoleArn, TargetArn: sns.TargetArn}
		}
	}
	if len(off) > 0 || target != nil {
		if err := h.update(ctx, cur, off, "", target); err != nil {
			var inv *iottypes.InvalidRequestException
			if !errors.As(err, &inv) || len(off) == 0 {
				return err
			}
			// A check is used by a scheduled audit someone else defined: turn the others off one by one and leave
			// the ones AWS refuses on.
			if err := h.oneByOne(ctx, log, cur, off, target); err != nil {
				return err
			}
		}
	}
	if err := h.handOver(ctx, kept, need, recs); err != nil {
		return err
	}
	log.Info("audit configuration restored", "turnedOff", keys(off, false), "leftOnForOthers", kept,
		"targetRestored", target != nil)
	return h.deleteRecord(ctx, name)
}

func (r *Record) hadPrevious() bool { return r.Previous != nil }

func (h *Handler) oneByOne(ctx context.Context, log *slog.Logger, cur current, off map[string]bool, target *iottypes.AuditNotificationTarget) error {
	if target != nil {
		if err := h.update(ctx, cur, nil, "", target); err != nil {
			return err
		}
	}
	for _, c := range keys(off, false) {
		if err := h.update(ctx, cur, map[string]bool{c: false}, "", nil); err != nil {
			var inv *iottypes.InvalidRequestException
			if !errors.As(err, &inv) {
				return err
			}
			log.Warn("check left on: AWS refuses to turn it off (a scheduled audit uses it)", "check", c, "error", err.Error())
			continue
		}
		cfg := cur.checks[c]
		cfg.Enabled = false
		cur.checks[c] = cfg
	}
	return nil
}

// others reads every other record under RecordPrefix: the checks they need (check → record names, sorted) and the
// records themselves.
func (h *Handler) others(ctx context.Context, own string) (map[string][]string, map[string]*Record, error) {
	need, recs := map[string][]string{}, map[string]*Record{}
	pager := ssm.NewGetParametersByPathPaginator(h.SSM, &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(RecordPrefix, "/"))})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("read the other audit records under %s: %w", RecordPrefix, err)
		}
		for _, p := range page.Parameters {
			name := aws.ToString(p.Name)
			if name == own {
				continue
			}
			var r Record
			if err := json.Unmarshal([]byte(aws.ToString(p.Value)), &r); err != nil {
				// Another owner's record we cannot read: keep every check on rather than guess.
				return nil, nil, fmt.Errorf("audit record %s is not readable: %w", name, err)
			}
			recs[name] = &r
			for _, c := range r.Needs {
				need[c] = append(need[c], name)
			}
		}
	}
	for c := range need {
		sort.Strings(need[c])
	}
	return need, recs, nil
}

// othersNeed is the set of checks the other records need.
func (h *Handler) othersNeed(ctx context.Context, own string) (map[string]bool, error) {
	need, _, err := h.others(ctx, own)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for c := range need {
		out[c] = true
	}
	return out, nil
}

// handOver makes the first other record that needs each check its owner: it then turns the check off when it no
// longer needs it, as if it had turned it on.
func (h *Handler) handOver(ctx context.Context, checks []string, need map[string][]string, recs map[string]*Record) error {
	changed := map[string]bool{}
	for _, c := range checks {
		name := need[c][0]
		if r := recs[name]; !slices.Contains(r.Enabled, c) {
			r.Enabled = sorted(append(r.Enabled, c))
			changed[name] = true
		}
	}
	for _, name := range keys(changed, true) {
		if err := h.writeRecord(ctx, name, *recs[name]); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) readRecord(ctx context.Context, name string) (*Record, error) {
	out, err := h.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit record %s: %w", name, err)
	}
	var r Record
	if err := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &r); err != nil {
		return nil, fmt.Errorf("audit record %s is not readable: %w", name, err)
	}
	return &r, nil
}

func (h *Handler) writeRecord(ctx context.Context, name string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = h.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(string(b)), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("What the operations stack changed in the account's Device Defender audit configuration"),
	})
	if err != nil {
		return fmt.Errorf("write audit record %s: %w", name, err)
	}
	return nil
}

func (h *Handler) deleteRecord(ctx context.Context, name string) error {
	_, err := h.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete audit record %s: %w", name, err)
	}
	return nil
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func keys(m map[string]bool, v bool) []string {
	var out []string
	for k, on := range m {
		if on == v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
