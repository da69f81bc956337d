package stacks

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/policies"
)

// csrFile writes a CSR whose CN is cn (as a partner would write it, "/" as "%2F") and returns its path.
func csrFile(t *testing.T, cn string) string {
	t.Helper()
	k, err := pki.GenerateKey(pki.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pki.NewCSR(k, cn)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "partner.csr")
	if err := os.WriteFile(f, p, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// captureSynthLog collects what the cross-account stack reports at synth.
func captureSynthLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := synthLog
	synthLog = &buf
	t.Cleanup(func() { synthLog = old })
	return &buf
}

// A partner's CSR cannot choose its own permissions: wildcards, policy variables and reserved topics are refused at
// synth with one line naming the topic, before anything is defined.
func TestCrossAccountTopicGrantRefused(t *testing.T) {
	for _, tc := range []struct {
		name, cn string
		ctx      map[string]string
		wantErr  string
	}{
		{"every topic", "*", nil, `topic "*" contains the IAM wildcard "*"`},
		{"wildcard hint", "producer1%2F*", nil, "add -c allow_topic_wildcard=true"},
		{"another device's shadow", "$aws%2Fthings%2Fvictim%2Fshadow%2Fupdate", nil, `topic "$aws/things/victim/shadow/update" is a reserved topic`},
		{"shadow even with the flag", "$aws%2Fthings%2Fvictim%2Fshadow%2Fupdate", map[string]string{"allow_topic_wildcard": "true"}, "is a reserved topic"},
		{"policy variable", "things%2F${iot:ClientId}", map[string]string{"allow_topic_wildcard": "true"}, `contains "${"`},
		{"bad flag", "producer1%2Fdata", map[string]string{"allow_topic_wildcard": "yes please"}, `context allow_topic_wildcard must be true or false, got "yes please"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := map[string]string{"CSR_FILE": csrFile(t, tc.cn)}
			for k, v := range tc.ctx {
				ctx[k] = v
			}
			sel, err := selection.Select(ctxOf(ctx), ctxOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			_, err = crossAccountPropsFromContext(sel, ctxOf(ctx))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("crossAccountPropsFromContext(CN %q) = %v, want an error containing %q", tc.cn, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines, want one", err)
			}
		})
	}
	t.Run("DESIRED_TOPIC writes nothing", func(t *testing.T) {
		t.Chdir(t.TempDir())
		ctx := map[string]string{"DESIRED_TOPIC": "*"}
		sel, err := selection.Select(ctxOf(ctx), ctxOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crossAccountPropsFromContext(sel, ctxOf(ctx)); err == nil || !strings.Contains(err.Error(), `topic "*" contains the IAM wildcard`) {
			t.Fatalf("DESIRED_TOPIC=* error = %v, want the wildcard refusal", err)
		}
		if entries, _ := os.ReadDir("."); len(entries) != 0 {
			t.Errorf("files written for a refused topic: %v", entries)
		}
	})
	t.Run("construct refuses too", func(t *testing.T) {
		msg := panicMessage(func() {
			NewCrossAccountStack(newTestApp(t, nil), "certificate-based-stack", &CrossAccountStackProps{CSRPEM: []byte("x"), Topic: "*"})
		})
		if !strings.Contains(msg, `topic "*" contains the IAM wildcard "*"`) {
			t.Errorf("NewCrossAccountStack(topic *) panic = %q, want the wildcard refusal", msg)
		}
	})
}

// With allow_topic_wildcard=true a wildcard topic goes through, and synth says what the consumer approves.
func TestCrossAccountTopicWildcardAllowed(t *testing.T) {
	log := captureSynthLog(t)
	tpl, _ := synthCrossAccount(t, map[string]string{"CSR_FILE": csrFile(t, "producer1%2F*"), "allow_topic_wildcard": "true"})
	got := resourcesOfType(tpl, "AWS::IoT::Policy")["PartnerPolicy"]["PolicyDocument"]
	want := map[string]interface{}{
		"Version": "2012-10-17",
		"Statement": []interface{}{map[string]interface{}{
			"Effect": "Allow",
			"Action": "iot:Publish",
			"Resource": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
				"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":iot:", map[string]interface{}{"Ref": "AWS::Region"},
				":", map[string]interface{}{"Ref": "AWS::AccountId"}, ":topic/producer1/*",
			}}},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PartnerPolicy document = %v, want %v", got, want)
	}
	out := log.String()
	for _, w := range []string{
		`certificate-based-stack: the partner may publish (iot:Publish) to topic "producer1/*": arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/producer1/*`,
		"warning: allow_topic_wildcard=true: the partner may publish to every topic that producer1/* matches",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("synth report = %q, want it to contain %q", out, w)
		}
	}
}

// Every synth prints the topic and the exact policy resource (and the client id in MQTT mode).
func TestCrossAccountGrantReport(t *testing.T) {
	log := captureSynthLog(t)
	synthCrossAccount(t, map[string]string{"CSR_FILE": testCSR(t, "cross-account.csr"), "producer": "acme", "mqtt_client_id": "acme-1"})
	want := `certificate-based-stack-acme: the partner may publish (iot:Publish) to topic "producer1/data": arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/producer1/data` + "\n" +
		`certificate-based-stack-acme: the partner may connect (iot:Connect) as client id "acme-1": arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:client/acme-1` + "\n"
	if got := log.String(); got != want {
		t.Errorf("synth report = %q, want %q", got, want)
	}
}

// A Basic Ingest topic ($aws/rules/<rule>/...) reaches a rule of the consumer's account, which acts with its own role:
// the partner may name only a rule the operator lists in basic_ingest_rules.
func TestCrossAccountBasicIngestRules(t *testing.T) {
	const cn = "$aws%2Frules%2Fingest_a%2Fproducer1"
	for _, tc := range []struct {
		name    string
		ctx     map[string]string
		wantErr string
	}{
		{"no rule listed", nil, `topic "$aws/rules/ingest_a/producer1" delivers by Basic Ingest to the rule "ingest_a", and no rule is allowed to partners: to allow it, list it in context basic_ingest_rules (-c basic_ingest_rules=ingest_a)`},
		{"another rule listed", map[string]string{"basic_ingest_rules": "ingest_b"}, `which is not one of the rules allowed to partners (ingest_b): to allow it, list it in context basic_ingest_rules (-c basic_ingest_rules=ingest_b,ingest_a)`},
		{"a prefix listed", map[string]string{"basic_ingest_rules": "ingest"}, `the rule "ingest_a", which is not one of the rules allowed to partners (ingest)`},
		{"bad rule name", map[string]string{"basic_ingest_rules": "ingest-a"}, `context basic_ingest_rules: "ingest-a" is not an AWS IoT rule name`},
		{"wildcard as a rule name", map[string]string{"basic_ingest_rules": "*"}, `context basic_ingest_rules: "*" is not an AWS IoT rule name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := map[string]string{"CSR_FILE": csrFile(t, cn)}
			for k, v := range tc.ctx {
				ctx[k] = v
			}
			sel, err := selection.Select(ctxOf(ctx), ctxOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			_, err = crossAccountPropsFromContext(sel, ctxOf(ctx))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("crossAccountPropsFromContext(CN %q, %v) = %v, want an error containing %q", cn, tc.ctx, err, tc.wantErr)
			}
		})
	}
	t.Run("DESIRED_TOPIC writes nothing", func(t *testing.T) {
		t.Chdir(t.TempDir())
		ctx := map[string]string{"DESIRED_TOPIC": "$aws/rules/ingest_a/p1"}
		sel, err := selection.Select(ctxOf(ctx), ctxOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crossAccountPropsFromContext(sel, ctxOf(ctx)); err == nil || !strings.Contains(err.Error(), "DESIRED_TOPIC: topic \"$aws/rules/ingest_a/p1\" delivers by Basic Ingest") {
			t.Fatalf("DESIRED_TOPIC error = %v, want the Basic Ingest refusal", err)
		}
		if entries, _ := os.ReadDir("."); len(entries) != 0 {
			t.Errorf("files written for a refused topic: %v", entries)
		}
	})
	t.Run("construct refuses too", func(t *testing.T) {
		msg := panicMessage(func() {
			NewCrossAccountStack(newTestApp(t, nil), "certificate-based-stack", &CrossAccountStackProps{CSRPEM: []byte("x"), Topic: "$aws/rules/admin/x", BasicIngestRules: []string{"ingest_a"}})
		})
		if !strings.Contains(msg, `certificate-based-stack: topic "$aws/rules/admin/x" delivers by Basic Ingest to the rule "admin"`) {
			t.Errorf("NewCrossAccountStack(rule admin) panic = %q, want the Basic Ingest refusal", msg)
		}
	})
	t.Run("listed rule: the partner may publish there and do nothing else", func(t *testing.T) {
		tpl, _ := synthCrossAccount(t, map[string]string{"CSR_FILE": csrFile(t, cn), "basic_ingest_rules": "ingest_b, ingest_a", "mqtt_client_id": "producer-1"})
		doc, err := policies.ParseValue(resourcesOfType(tpl, "AWS::IoT::Policy")["PartnerPolicy"]["PolicyDocument"])
		if err != nil {
			t.Fatal(err)
		}
		findings, err := policies.AuditPartner(doc, "$aws/rules/ingest_a/producer1", "producer-1")
		if err != nil || len(findings) != 0 {
			t.Errorf("AuditPartner(PartnerPolicy) = %v, %v; want no finding", findings, err)
		}
		// The evaluator answers for the agreed topic and against a neighbour.
		p := policies.Principal{ClientID: "producer-1"}
		arn := "arn:" + policies.ProbePartition + ":iot:" + policies.ProbeRegion + ":" + policies.ProbeAccount + ":topic/$aws/rules/"
		rendered := doc.Rendered(policies.ProbePartition, policies.ProbeRegion, policies.ProbeAccount)
		for topic, want := range map[string]bool{arn + "ingest_a/producer1": true, arn + "ingest_b/producer1": false} {
			if dec, err := rendered.Evaluate(policies.Request{Principal: p, Action: "iot:Publish", Resource: topic}); err != nil || dec.Allowed != want {
				t.Errorf("Evaluate(iot:Publish %s) = %v, %v; want allowed %v", topic, dec, err, want)
			}
		}
	})
}
