package stacks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/metrics"
)

// opsPlatform is the platform app with every capability (the multi-region tests' synth of it, so the package
// synthesizes it once); opsOnlyE the same app watching only rotation (E).
var (
	opsPlatform = func() map[string]assertions.Template { return mrDefault().tpls }
	opsOnlyE    = sync.OnceValue(func() map[string]assertions.Template {
		tpls, _, err := synthApp(map[string]string{"ops_capabilities": "E"})
		if err != nil {
			panic(err)
		}
		return tpls
	})
)

// opsStackOf is the operations stack that watches a platform stack of the default app.
func opsStackOf(stack string) string {
	switch {
	case stack == "IotMultiRegion-Primary":
		return "IotCertOps-" + DefaultPrimaryRegion
	case strings.HasPrefix(stack, "IotMultiRegion-Replica-"):
		return "IotCertOps-" + strings.TrimPrefix(stack, "IotMultiRegion-Replica-")
	}
	return OpsStackName
}

// dashboardMetrics reads a dashboard body (an Fn::Join of strings and pseudo parameters) and returns every metric its
// widgets name as "namespace/name", with SEARCH expressions read for their namespace and MetricName.
func dashboardMetrics(t *testing.T, tpl assertions.Template) (names []string, titles []string) {
	t.Helper()
	dashboards := resourcesOfType(tpl, "AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Fatalf("%d dashboards, want 1", len(dashboards))
	}
	var body string
	for _, props := range dashboards {
		switch b := props["DashboardBody"].(type) {
		case string:
			body = b
		case map[string]interface{}:
			parts := b["Fn::Join"].([]interface{})[1].([]interface{})
			for _, p := range parts {
				if s, ok := p.(string); ok {
					body += s
				} else {
					body += "PSEUDO"
				}
			}
		}
	}
	var d struct {
		Widgets []struct {
			Properties struct {
				Title   string          `json:"title"`
				Metrics [][]interface{} `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("dashboard body is not JSON: %v\n%s", err, body)
	}
	search := regexp.MustCompile(`SEARCH\('\{([^,}]+)[^}]*\} MetricName="([^"]+)"`)
	for _, w := range d.Widgets {
		titles = append(titles, w.Properties.Title)
		for _, m := range w.Properties.Metrics {
			if len(m) >= 2 {
				ns, ok1 := m[0].(string)
				name, ok2 := m[1].(string)
				if ok1 && ok2 {
					if ns == "." || name == "." {
						t.Errorf("widget %q: a metric repeats the previous one's namespace or name (%v): name it in full", w.Properties.Title, m)
					}
					names = append(names, ns+"/"+name)
					continue
				}
			}
			opts, _ := m[len(m)-1].(map[string]interface{})
			expr, _ := opts["expression"].(string)
			sm := search.FindStringSubmatch(expr)
			if sm == nil {
				t.Errorf("widget %q: metric %v is neither a metric nor a SEARCH of one", w.Properties.Title, m)
				continue
			}
			names = append(names, sm[1]+"/"+sm[2])
		}
	}
	return names, titles
}

// TestOpsDashboardMetricsAreEmitted: every metric a widget names is in the catalogue with an emitter (and the
// catalogue's own test proves each function emits what it is listed for); no widget names a metric nobody emits.
func TestOpsDashboardMetricsAreEmitted(t *testing.T) {
	tpls := opsPlatform()
	want := map[string][]string{
		OpsStackName: {"IotCert/VendingRegistrations", "AWS/ApiGateway/5XXError", "IotCert/RotationSucceeded",
			"CertRotation/CADaysLeft", "CertRotation/IssuedCertificates", "IotCert/CertificatesExpiring7d", "IotCert/Refused"},
		"IotCertOps-" + DefaultPrimaryRegion: {"IotCert/JITRLatency", "AWS/DynamoDB/ReplicationLatency", "IotCert/ReplayDeadLettered",
			"IotMultiRegion/RegistryDrift", "IotCert/CertificatesExpiring30d"},
		"IotCertOps-" + DefaultReplicaRegion: {"IotCert/ReplicationLag", "IotCert/ReplayStale"},
	}
	for stack, must := range want {
		tpl := tpls[stack]
		if tpl == nil {
			t.Errorf("no stack %s in the platform app", stack)
			continue
		}
		names, _ := dashboardMetrics(t, tpl)
		for _, n := range names {
			i := strings.LastIndex(n, "/")
			m, ok := metrics.Lookup(n[:i], n[i+1:])
			if !ok {
				t.Errorf("%s: the dashboard shows %s, which no function or service emits (not in the catalogue)", stack, n)
			} else if len(m.Emitters) == 0 {
				t.Errorf("%s: %s has no emitter in the catalogue", stack, n)
			}
		}
		for _, n := range must {
			if !slices.Contains(names, n) {
				t.Errorf("%s: the dashboard does not show %s (shows %v)", stack, n, names)
			}
		}
	}
	names, _ := dashboardMetrics(t, tpls[OpsStackName])
	for _, n := range names {
		if strings.Contains(n, "JITR") || strings.HasPrefix(n, "AWS/DynamoDB") {
			t.Errorf("%s shows %s: the multi-region stacks run in other regions", OpsStackName, n)
		}
	}
}

// TestOpsCompositeGathersEveryAlarm discovers the alarms the platform stacks define in their templates: each has a
// name known at synth, and the composite alarm of its region names it; the operations stacks import nothing.
func TestOpsCompositeGathersEveryAlarm(t *testing.T) {
	tpls := opsPlatform()
	rules := map[string]string{}
	for name, tpl := range tpls {
		if !strings.HasPrefix(name, OpsStackName) {
			continue
		}
		composites := resourcesOfType(tpl, "AWS::CloudWatch::CompositeAlarm")
		if len(composites) != 1 {
			t.Fatalf("%s: %d composite alarms, want 1", name, len(composites))
		}
		for _, props := range composites {
			rule, ok := props["AlarmRule"].(string)
			if !ok {
				t.Fatalf("%s: AlarmRule is not a plain string: %v", name, props["AlarmRule"])
			}
			rules[name] = rule
			if props["AlarmName"] != name+"-certificate-platform-healthy" {
				t.Errorf("%s: composite alarm name %v", name, props["AlarmName"])
			}
			if actions, _ := props["AlarmActions"].([]interface{}); len(actions) != 1 {
				t.Errorf("%s: composite alarm actions %v, want the one topic", name, props["AlarmActions"])
			}
		}
		raw, _ := json.Marshal(templateJSON(tpl))
		if strings.Contains(string(raw), "Fn::ImportValue") {
			t.Errorf("%s imports a value from another stack: a destroy of that stack would be blocked", name)
		}
		// Its own alarms are in the rule too.
		for id, props := range resourcesOfType(tpl, "AWS::CloudWatch::Alarm") {
			if an, _ := props["AlarmName"].(string); an == "" || !strings.Contains(rules[name], fmt.Sprintf("ALARM(%q)", an)) {
				t.Errorf("%s: own alarm %s (%v) not in the composite rule", name, id, props["AlarmName"])
			}
		}
	}
	total := 0
	for name, tpl := range tpls {
		if strings.HasPrefix(name, OpsStackName) {
			continue
		}
		rule, ok := rules[opsStackOf(name)]
		if !ok {
			t.Errorf("%s: no operations stack %s", name, opsStackOf(name))
			continue
		}
		for id, props := range resourcesOfType(tpl, "AWS::CloudWatch::Alarm") {
			an, ok := props["AlarmName"].(string)
			if !ok || an == "" {
				t.Errorf("%s/%s: alarm without a name known at synth (%v)", name, id, props["AlarmName"])
				continue
			}
			total++
			if !strings.Contains(rule, fmt.Sprintf("ALARM(%q)", an)) {
				t.Errorf("%s/%s: alarm %q is not in the composite alarm of %s", name, id, an, opsStackOf(name))
			}
		}
	}
	if total < 6 {
		t.Errorf("found %d capability alarms, want at least the rotation stack's five and the replication's", total)
	}
}

// TestOpsOnlySomeCapabilities: with -c ops_capabilities=E only the rotation stack's alarms and widgets are gathered,
// and no operations stack is defined for the multi-region regions.
func TestOpsOnlySomeCapabilities(t *testing.T) {
	tpls := opsOnlyE()
	var ops []string
	for name := range tpls {
		if strings.HasPrefix(name, OpsStackName) {
			ops = append(ops, name)
		}
	}
	sort.Strings(ops)
	if !slices.Equal(ops, []string{OpsStackName}) {
		t.Fatalf("operations stacks %v, want [%s]", ops, OpsStackName)
	}
	names, titles := dashboardMetrics(t, tpls[OpsStackName])
	for _, n := range names {
		if strings.Contains(n, "Vending") || strings.HasPrefix(n, "AWS/ApiGateway") {
			t.Errorf("the dashboard shows %s: vending is not watched", n)
		}
	}
	if !slices.Contains(names, "CertRotation/StaleHosts") {
		t.Errorf("the dashboard does not show the rotation's stale hosts: %v", titles)
	}
	for _, props := range resourcesOfType(tpls[OpsStackName], "AWS::CloudWatch::CompositeAlarm") {
		rule := props["AlarmRule"].(string)
		if !strings.Contains(rule, `ALARM("CertRotation-StaleHostsAlarm")`) || strings.Contains(rule, "IotMultiRegion") {
			t.Errorf("composite rule %s: want the rotation's alarms only (and the stack's own)", rule)
		}
	}
}

// TestOpsAudit: the audit custom resource, the daily scheduled audit after it, the documented audit role, the
// findings topic and its counter; encrypted topics that refuse plain HTTP.
func TestOpsAudit(t *testing.T) {
	tpl := opsPlatform()[OpsStackName]
	check(t, "custom resource with the nine checks and its record under the shared prefix", func() {
		tpl.HasResourceProperties(jsii.String("Custom::AuditConfiguration"), map[string]interface{}{
			"RecordName": auditRecordPrefix + OpsStackName,
			"Checks":     AuditChecks,
		})
	})
	check(t, "daily scheduled audit of the same checks, after the custom resource", func() {
		tpl.HasResource(jsii.String("AWS::IoT::ScheduledAudit"), map[string]interface{}{
			"Properties": map[string]interface{}{"Frequency": "DAILY", "TargetCheckNames": AuditChecks,
				"ScheduledAuditName": OpsStackName + "-daily"},
			"DependsOn": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_StringLikeRegexp(jsii.String("^AuditConfiguration"))}),
		})
	})
	check(t, "audit role: AWSIoTDeviceDefenderAudit, assumed by AWS IoT of this account only", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]interface{}{
			"AssumeRolePolicyDocument": assertions.Match_ObjectLike(&map[string]interface{}{
				"Statement": []interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
					"Principal": map[string]interface{}{"Service": "iot.amazonaws.com"},
					"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": map[string]interface{}{"Ref": "AWS::AccountId"}}},
				})},
			}),
			"ManagedPolicyArns": []interface{}{map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
				"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit"}}}},
		})
	})
	check(t, "two KMS-encrypted topics", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::SNS::Topic"), map[string]interface{}{
			"KmsMasterKeyId": assertions.Match_AnyValue()}, jsii.Number(2))
	})
	check(t, "topics refuse requests without TLS", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::SNS::TopicPolicy"), map[string]interface{}{
			"PolicyDocument": assertions.Match_ObjectLike(&map[string]interface{}{
				"Statement": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
					"Effect": "Deny", "Condition": map[string]interface{}{"Bool": map[string]interface{}{"aws:SecureTransport": "false"}},
				})}),
			}),
		}, jsii.Number(2))
	})
	check(t, "the findings counter is subscribed to the findings topic", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]interface{}{"Protocol": "lambda"})
	})
	check(t, "the audit function passes the two roles to AWS IoT only", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]interface{}{
			"PolicyDocument": assertions.Match_ObjectLike(&map[string]interface{}{
				"Statement": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
					"Action": "iam:PassRole",
					"Resource": assertions.Match_ArrayWith(&[]interface{}{map[string]interface{}{
						"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^AuditRole")), "Arn"}}}),
					"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"iam:PassedToService": "iot.amazonaws.com"}},
				})}),
			}),
		})
	})
	raw, _ := json.Marshal(templateJSON(tpl))
	if strings.Contains(string(raw), `"iot:*"`) {
		t.Error("a policy grants iot:*")
	}
}

func TestOpsContext(t *testing.T) {
	for ctx, wantErr := range map[string]string{
		"ops_capabilities=C, E":      "",
		"ops_capabilities=G":         `"G" is not a capability`,
		"ops_capabilities=Ops":       `"Ops" is not a capability`,
		"ops_alarm_email=ops@x.org":  "",
		"ops_alarm_email=not-a-mail": `"not-a-mail" is not an e-mail address`,
	} {
		k, v, _ := strings.Cut(ctx, "=")
		p, err := opsPropsFromContext(ctxOf(map[string]string{k: v}))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", ctx, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), k)):
			t.Errorf("%s: error %v, want one naming %s and containing %s", ctx, err, k, wantErr)
		case ctx == "ops_capabilities=C, E" && fmt.Sprint(p.Capabilities) != "[C E]":
			t.Errorf("%s: capabilities %v", ctx, p.Capabilities)
		}
	}
	if got := alarmName("CertRotation", "CertRotation/StaleHostsAlarm/Resource", "CertRotation"); got != "CertRotation-StaleHostsAlarm" {
		t.Errorf("alarmName = %s", got)
	}
	long := alarmName("S", "S/"+strings.Repeat("a", 300)+"/x y\"z", "S")
	if len(long) != 255 || strings.ContainsAny(long, ` "`) {
		t.Errorf("alarmName of a long path with quotes = %q (%d), want 255 safe characters", long, len(long))
	}
}
