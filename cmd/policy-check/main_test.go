package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runTool(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writePolicy(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		code, out, errOut := runTool(args...)
		if code != 0 || errOut != "" {
			t.Fatalf("run(%q) = %d, stderr %q; want 0 and nothing on stderr", args, code, errOut)
		}
		for _, want := range []string{"policy-check: evaluates an AWS IoT policy offline", "usage:\n  policy-check -policy FILE",
			"-audit\n", "-partner-topic string", "-region string", "(default: \"us-east-1\")", "-account string", "-client-id string",
			"example:\n  policy-check -policy policies/thing-default.json -thing sensor-1 -action iot:Publish -resource topic/things/sensor-1/temp",
			"Exit status: 0 allowed or clean, 1 denied or findings, 2 usage"} {
			if !strings.Contains(out, want) {
				t.Errorf("run(%q) = %q, want it to contain %q", args, out, want)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	good := writePolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/x"}}`)
	notJSON := writePolicy(t, `{"Version":`)
	unknownOp := writePolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}}`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil, "policy-check: -policy is required\n"},
		{"unknown flag", []string{"-nosuch"}, "policy-check: flag provided but not defined: -nosuch\n"},
		{"argument", []string{"-policy", good, "extra"}, "policy-check: unexpected argument \"extra\"\n"},
		{"no question", []string{"-policy", good}, "policy-check: give -action and -resource, or -audit\n"},
		{"audit and action", []string{"-policy", good, "-thing", "a", "-audit", "-action", "iot:Publish"}, "policy-check: -audit asks every question itself: leave out -action and -resource\n"},
		{"audit without thing", []string{"-policy", good, "-audit"}, "policy-check: -audit needs -thing (or -partner-topic for a partner certificate)\n"},
		{"partner topic without audit", []string{"-policy", good, "-partner-topic", "a/b", "-action", "iot:Publish", "-resource", "topic/a"}, "policy-check: -partner-topic goes with -audit\n"},
		{"action without service", []string{"-policy", good, "-action", "Publish", "-resource", "topic/x"}, "policy-check: -action \"Publish\" is not an action: write service:Name, e.g. iot:Publish\n"},
		{"bad short resource", []string{"-policy", good, "-action", "iot:Publish", "-resource", "queue/x"}, "policy-check: -resource: \"queue/x\" is neither an ARN nor <type>/<name> with type topic, topicfilter, client, thing, rolealias, cert\n"},
		{"bad region", []string{"-policy", good, "-region", "us:east", "-action", "iot:Publish", "-resource", "topic/x"}, "policy-check: -region \"us:east\" is not valid\n"},
		{"bad subject", []string{"-policy", good, "-subject", "Acme", "-action", "iot:Publish", "-resource", "topic/x"}, "policy-check: -subject: want Name=value pairs separated by commas, e.g. Organization=Acme\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runTool(tc.args...)
			if want := tc.want + "run 'policy-check -h' for help\n"; code != 2 || errOut != want {
				t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, errOut, want)
			}
		})
	}
	// A policy the tool cannot read or judge: exit 2 with the reason, no verdict.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"-policy", filepath.Join(t.TempDir(), "none.json"), "-action", "iot:Publish", "-resource", "topic/x"}, "no such file"},
		{"not JSON", []string{"-policy", notJSON, "-action", "iot:Publish", "-resource", "topic/x"}, "not valid JSON"},
		{"condition it cannot judge", []string{"-policy", unknownOp, "-action", "iot:Publish", "-resource", "topic/x"}, `condition operator "DateLessThan" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runTool(tc.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 2, no verdict and %q", tc.args, code, out, errOut, tc.want)
			}
		})
	}
}

func TestDecisions(t *testing.T) {
	const shipped = "../../policies/thing-default.json"
	deny := writePolicy(t, `{"Version":"2012-10-17","Statement":[
	  {"Sid":"All","Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:eu-west-1:111122223333:topic/*"},
	  {"Sid":"NotAdmin","Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:eu-west-1:111122223333:topic/admin/*"}]}`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"own topic", []string{"-policy", shipped, "-thing", "sensor-1", "-action", "iot:Publish", "-resource", "topic/things/sensor-1/temp"}, 0,
			"Allow: statement 2 \"PublishReceiveOwnTopics\" (arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*)\n  iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/things/sensor-1/temp, for thing sensor-1, client id \"sensor-1\"\n"},
		{"another thing's topic", []string{"-policy", shipped, "-thing", "sensor-1", "-action", "iot:Publish", "-resource", "topic/things/sensor-2/temp"}, 1,
			"Deny: no statement allows it (default deny)\n"},
		{"own client id", []string{"-policy", shipped, "-thing", "sensor-1", "-action", "iot:Connect", "-resource", "client/sensor-1"}, 0, "Allow: statement 1"},
		{"another client id", []string{"-policy", shipped, "-thing", "sensor-1", "-action", "iot:Connect", "-resource", "client/sensor-2"}, 1, "client id \"sensor-2\""},
		{"not attached", []string{"-policy", shipped, "-thing", "sensor-1", "-attached=false", "-action", "iot:Connect", "-resource", "client/sensor-1"}, 1, "Deny: no statement allows it"},
		{"other region", []string{"-policy", shipped, "-thing", "sensor-1", "-region", "eu-west-1", "-account", "111122223333", "-action", "iot:Publish", "-resource", "topic/things/sensor-1/x"}, 0,
			"on arn:aws:iot:eu-west-1:111122223333:topic/things/sensor-1/x"},
		{"full ARN", []string{"-policy", shipped, "-thing", "sensor-1", "-action", "iot:Subscribe", "-resource", "arn:aws:iot:us-east-1:123456789012:topicfilter/things/sensor-1/#"}, 0, "Allow: statement 3"},
		{"explicit deny", []string{"-policy", deny, "-region", "eu-west-1", "-account", "111122223333", "-action", "iot:Publish", "-resource", "topic/admin/reset"}, 1,
			"Deny: statement 2 \"NotAdmin\" denies it explicitly (arn:aws:iot:eu-west-1:111122223333:topic/admin/*)"},
		{"client id given", []string{"-policy", deny, "-region", "eu-west-1", "-account", "111122223333", "-client-id", "c1", "-action", "iot:Publish", "-resource", "topic/a"}, 0, "no thing, client id \"c1\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runTool(tc.args...)
			if code != tc.code || errOut != "" || !strings.Contains(out, tc.want) {
				t.Errorf("run(%q) = %d, %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
			}
		})
	}
}

// Every policy the app ships is clean for a device; the bypass shapes of the reviews are findings.
func TestAuditShippedAndBypasses(t *testing.T) {
	files, err := filepath.Glob("../../policies/*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("shipped policies: %v, %v", files, err)
	}
	for _, f := range files {
		code, out, errOut := runTool("-policy", f, "-thing", "sensor-1", "-audit")
		if code != 0 || out != "clean: thing sensor-1 may do nothing beyond its own identity\n" || errOut != "" {
			t.Errorf("audit of %s = %d, %q, %q; want 0 and clean", f, code, out, errOut)
		}
	}
	const arn = "arn:aws:iot:us-east-1:123456789012:"
	for _, tc := range []struct{ action, resource, rule string }{
		{"iot:Publish", arn + "topic*", "[iot-resource-wildcard]"},
		{"iot:Subscribe", arn + "topicfilter*", "[iot-resource-wildcard]"},
		{"iot:Receive", arn + "t*", "[iot-resource-wildcard]"},
		{"iot:Connect", arn + "client/*${iot:Connection.Thing.ThingName}", "[iot-variable-wildcard]"},
		{"iot:Publish", arn + "topic/dt/*${iot:Connection.Thing.ThingName}/*", "[iot-variable-wildcard]"},
		{"iot:Publish", arn + "topic/$aws/things/*", "[iot-resource-unscoped]"},
		{"iot:Connect", arn + "client/${iot:Certificate.Subject.Organization}", "[iot-shared-identity]"},
	} {
		p := writePolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"`+tc.action+`","Resource":"`+tc.resource+`"}]}`)
		code, out, errOut := runTool("-policy", p, "-thing", "b", "-audit")
		if code != 1 || errOut != "" || !strings.Contains(out, "thing b may do more than its own") || !strings.Contains(out, tc.rule) {
			t.Errorf("audit of %s on %s = %d, %q, %q; want 1 and a %s finding", tc.action, tc.resource, code, out, errOut, tc.rule)
		}
		if tc.rule != "[iot-shared-identity]" && !strings.Contains(out, "      e.g. "+tc.action+" on arn:aws:iot:") {
			t.Errorf("audit of %s on %s = %q, want an example request", tc.action, tc.resource, out)
		}
	}
}

func TestAuditPartner(t *testing.T) {
	const arn = "arn:aws:iot:us-east-1:123456789012:"
	// The partner policy of the README's example, as the cross-account stack writes it.
	code, out, _ := runTool("-policy", "../../testdata/crossaccount/partner-policy.json", "-audit", "-partner-topic", "producer1/data", "-client-id", "producer-1")
	if code != 0 || out != "clean: the partner certificate of topic \"producer1/data\" may do nothing beyond publishing to its topic and connecting as \"producer-1\"\n" {
		t.Errorf("partner audit = %d, %q; want 0 and clean", code, out)
	}
	code, out, _ = runTool("-policy", "../../testdata/crossaccount/partner-policy.json", "-audit", "-partner-topic", "producer1/data")
	if code != 1 || !strings.Contains(out, `iot:Connect on "client/producer-1"`) {
		t.Errorf("partner audit without its client id = %d, %q; want 1 and the connect finding", code, out)
	}
	wide := writePolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"`+arn+`topic/partner/*"}]}`)
	code, out, _ = runTool("-policy", wide, "-audit", "-partner-topic", "partner/data")
	if code != 1 || !strings.Contains(out, "[iot-partner-scope]") || !strings.Contains(out, "iot:Receive") {
		t.Errorf("partner audit of a wider policy = %d, %q; want 1 and findings naming iot:Receive", code, out)
	}
}
