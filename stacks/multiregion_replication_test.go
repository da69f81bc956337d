package stacks

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func init() {
	// Golden files are rewritten with `go test ./stacks/ -run <Test> -update`.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// ReplicationGolden is the synthesized replay state machine, its ARNs replaced by placeholders: the input of the
// interpreter test in internal/replay.
var replicationGolden = filepath.Join("..", "testdata", "multiregion", "replication-statemachine.asl.json")

var replicationTemplate = sync.OnceValues(func() (assertions.Template, error) {
	var tpl assertions.Template
	msg := panicMessage(func() {
		app := newTestApp(nil, nil)
		stack := awscdk.NewStack(app, jsii.String("ReplicationTest"), &awscdk.StackProps{
			Env: &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")},
		})
		NewReplication(stack, "Replication", &ReplicationProps{
			StreamArn:       jsii.String("arn:aws:dynamodb:us-east-1:123456789012:table/IoTMRProvisioning/stream/2026-11-30T00:00:00.000"),
			PrimaryRegion:   "us-west-2",
			CACertificateID: jsii.String("0123456789abcdef"),
		})
		tpl = assertions.Template_FromStack(stack, nil)
	})
	if msg != "" {
		return nil, fmt.Errorf("synth: %s", msg)
	}
	return tpl, nil
})

func replicationTpl(t *testing.T) assertions.Template {
	t.Helper()
	tpl, err := replicationTemplate()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// renderDefinition joins DefinitionString's Fn::Join with placeholders for the tokens: a Lambda function's ARN names
// the function by its logical id, a queue's URL the queue.
func renderDefinition(t *testing.T, tpl assertions.Template) []byte {
	t.Helper()
	sms := resourcesOfType(tpl, "AWS::StepFunctions::StateMachine")
	if len(sms) != 1 {
		t.Fatalf("%d state machines, want 1", len(sms))
	}
	var def interface{}
	for _, p := range sms {
		def = p["DefinitionString"]
	}
	join, ok := def.(map[string]interface{})["Fn::Join"].([]interface{})
	if !ok {
		t.Fatalf("DefinitionString = %v, want an Fn::Join", def)
	}
	var b strings.Builder
	for _, part := range join[1].([]interface{}) {
		switch v := part.(type) {
		case string:
			b.WriteString(v)
		case map[string]interface{}:
			switch {
			case v["Fn::GetAtt"] != nil:
				ga := v["Fn::GetAtt"].([]interface{})
				b.WriteString("arn:aws:lambda:us-east-1:123456789012:function:" + ga[0].(string))
			case v["Ref"] == "AWS::Partition":
				b.WriteString("aws")
			case v["Ref"] != nil:
				b.WriteString("https://sqs.us-east-1.amazonaws.com/123456789012/" + v["Ref"].(string))
			default:
				t.Fatalf("unexpected token in the definition: %v", v)
			}
		default:
			t.Fatalf("unexpected part in the definition: %v", v)
		}
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(b.String()), "", "  "); err != nil {
		t.Fatalf("rendered definition is not JSON: %v\n%s", err, b.String())
	}
	pretty.WriteByte('\n')
	return pretty.Bytes()
}

func TestReplicationStateMachineGolden(t *testing.T) {
	got := renderDefinition(t, replicationTpl(t))
	if updateGolden() {
		if err := os.WriteFile(replicationGolden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(replicationGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the synthesized state machine differs from %s (run with -update to accept it):\n%s", replicationGolden, got)
	}
}

// The sample's shape, the retries, and that every failure reaches the dead-letter queue.
func TestReplicationStateMachineShape(t *testing.T) {
	var def struct {
		StartAt string
		States  map[string]struct {
			Type    string
			Choices []map[string]interface{}
			Default string
			Retry   []struct {
				ErrorEquals                               []string
				IntervalSeconds, BackoffRate, MaxAttempts float64
			}
			Catch []struct {
				ErrorEquals      []string
				Next, ResultPath string
			}
			Resource string
			Next     string
			End      bool
		}
	}
	if err := json.Unmarshal(renderDefinition(t, replicationTpl(t)), &def); err != nil {
		t.Fatal(err)
	}
	if def.StartAt != StateChoiceEventType || def.States[StateChoiceEventType].Default != StateDefault {
		t.Errorf("StartAt %s, default %s; want ChoiceEventType → DefaultState", def.StartAt, def.States[StateChoiceEventType].Default)
	}
	for state, exception := range map[string]string{StateThingCrud: "ThingCrudException", StateThingTypeCrud: "ThingTypeCrudException",
		StateThingGroupCrud: "ThingGroupCrudException"} {
		s := def.States[state]
		found := false
		for _, r := range s.Retry {
			if len(r.ErrorEquals) == 1 && r.ErrorEquals[0] == exception {
				found = r.IntervalSeconds == 3 && r.BackoffRate == 2 && r.MaxAttempts == 3
			}
		}
		if !found {
			t.Errorf("%s retries = %+v, want %s every 3 s, back-off 2, 3 attempts", state, s.Retry, exception)
		}
		// An event that can apply only later (a thing type's delete within five minutes of its deprecation) is retried
		// past those five minutes: 80 s, 120 s, 180 s (380 s after the first attempt), ...
		later := false
		for _, r := range s.Retry {
			if len(r.ErrorEquals) == 1 && r.ErrorEquals[0] == "ReplayNotReadyException" {
				later = r.IntervalSeconds == 80 && r.BackoffRate == 1.5 && r.MaxAttempts == 6
			}
		}
		if !later {
			t.Errorf("%s retries = %+v, want ReplayNotReadyException after 80 s, back-off 1.5, 6 attempts", state, s.Retry)
		}
		if len(s.Catch) != 1 || s.Catch[0].ErrorEquals[0] != "States.ALL" || s.Catch[0].Next != StateSendToDLQ || s.Catch[0].ResultPath != "$.error" {
			t.Errorf("%s catch = %+v, want States.ALL → %s with the error at $.error", state, s.Catch, StateSendToDLQ)
		}
	}
	if s := def.States[StateSendToDLQ]; s.Resource != "arn:aws:states:::sqs:sendMessage" || s.Next != StateReplayFailed {
		t.Errorf("%s = %+v, want an SQS SendMessage then %s", StateSendToDLQ, s, StateReplayFailed)
	}
	if def.States[StateReplayFailed].Type != "Fail" {
		t.Errorf("%s is a %s, want Fail", StateReplayFailed, def.States[StateReplayFailed].Type)
	}
}

func TestReplicationResources(t *testing.T) {
	tpl := replicationTpl(t)
	check(t, "stream mapping: INSERT of other regions, on-failure queue, partial batch failures", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), &map[string]interface{}{
			"EventSourceArn":             "arn:aws:dynamodb:us-east-1:123456789012:table/IoTMRProvisioning/stream/2026-11-30T00:00:00.000",
			"StartingPosition":           "TRIM_HORIZON",
			"FunctionResponseTypes":      []interface{}{"ReportBatchItemFailures"},
			"BisectBatchOnFunctionError": true,
			"DestinationConfig": assertions.Match_ObjectLike(&map[string]interface{}{
				"OnFailure": assertions.Match_ObjectLike(&map[string]interface{}{"Destination": assertions.Match_AnyValue()})}),
			"FilterCriteria": map[string]interface{}{"Filters": []interface{}{map[string]interface{}{
				"Pattern": `{"dynamodb":{"NewImage":{"originRegion":{"S":[{"anything-but":["us-east-1"]}]}}},"eventName":["INSERT"]}`}}},
		})
	})
	check(t, "standard workflow (duplicate execution names refused), traced, logged", func() {
		tpl.HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), &map[string]interface{}{
			"StateMachineType":     "STANDARD",
			"TracingConfiguration": map[string]interface{}{"Enabled": true},
		})
	})
	check(t, "versions table with TTL", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), &map[string]interface{}{
			"KeySchema":               []interface{}{map[string]interface{}{"AttributeName": "pk", "KeyType": "HASH"}},
			"TimeToLiveSpecification": map[string]interface{}{"AttributeName": "expiresAt", "Enabled": true},
		})
	})
	check(t, "alarm on refused items (unknown origin, far-future timestamp)", func() {
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), &map[string]interface{}{
			"Namespace": ReconcilerMetricNamespace, "MetricName": ReplicationMetricRefused, "Threshold": 0,
			"ComparisonOperator": "GreaterThanThreshold", "Statistic": "Sum",
			"Dimensions": []interface{}{map[string]interface{}{"Name": "Region", "Value": "us-east-1"}},
		})
	})
	check(t, "the trigger, the CRUD functions and the reconciler know the origin regions", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"), &map[string]interface{}{
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"ORIGIN_REGIONS": "us-west-2"})},
		}, jsii.Number(5))
	})
	check(t, "read-repair: read-only describes in the origin region", func() {
		n := 0
		for _, p := range resourcesOfType(tpl, "AWS::IAM::Policy") {
			b, _ := json.Marshal(p["PolicyDocument"])
			doc := string(b)
			if strings.Contains(doc, `{"Action":["iot:DescribeThing","iot:DescribeThingGroup","iot:DescribeThingType",`+
				`"iot:ListThingGroupsForThing"],"Effect":"Allow","Resource":["arn:aws:iot:us-west-2:123456789012:thing/*",`+
				`"arn:aws:iot:us-west-2:123456789012:thinggroup/*","arn:aws:iot:us-west-2:123456789012:thingtype/*"]}`) {
				n++
			}
		}
		if n != 3 {
			panic(fmt.Sprintf("%d policies grant the origin region's describes, want the 3 CRUD functions'", n))
		}
	})
	check(t, "reconciler runs daily", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), &map[string]interface{}{"ScheduleExpression": "rate(1 day)"})
	})
	check(t, "drift alarm on the reconciler's metric", func() {
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), &map[string]interface{}{
			"Namespace": ReconcilerMetricNamespace, "MetricName": ReconcilerMetricName, "Threshold": 0,
			"ComparisonOperator": "GreaterThanThreshold",
			"Dimensions":         []interface{}{map[string]interface{}{"Name": "Region", "Value": "us-east-1"}},
		})
	})
	check(t, "reconciler: one run at a time, rate and regions in its environment", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]interface{}{
			"ReservedConcurrentExecutions": 1,
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"PRIMARY_REGION": "us-west-2", "RATE_PER_SECOND": "8"})},
		})
	})
	check(t, "CRUD functions and the reconciler know this region's CA", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"), &map[string]interface{}{
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"CA_CERTIFICATE_ID": "0123456789abcdef", "JITR_POLICY_NAME": "jitr-mr-policy"})},
		}, jsii.Number(4))
	})

	// Least privilege: no iot:* and no Resource "*" except the actions AWS defines no resource for.
	unscoped := map[string]bool{"xray:PutTraceSegments": true, "xray:PutTelemetryRecords": true, "dynamodb:ListStreams": true,
		"iot:ListThings": true, "iot:ListThingTypes": true, "iot:ListThingGroups": true,
		"logs:CreateLogDelivery": true, "logs:GetLogDelivery": true, "logs:UpdateLogDelivery": true, "logs:DeleteLogDelivery": true,
		"logs:ListLogDeliveries": true, "logs:PutResourcePolicy": true, "logs:DescribeResourcePolicies": true, "logs:DescribeLogGroups": true,
		"xray:GetSamplingRules": true, "xray:GetSamplingTargets": true}
	for id, p := range resourcesOfType(tpl, "AWS::IAM::Policy") {
		doc := p["PolicyDocument"].(map[string]interface{})
		for _, st := range doc["Statement"].([]interface{}) {
			s := st.(map[string]interface{})
			actions := replicationStrings(s["Action"])
			for _, a := range actions {
				if a == "iot:*" || a == "*" {
					t.Errorf("%s grants %s", id, a)
				}
			}
			if s["Resource"] == "*" {
				for _, a := range actions {
					if !unscoped[a] {
						t.Errorf("%s grants %s on *", id, a)
					}
				}
			}
		}
	}
}

func TestReplicationPropsRefused(t *testing.T) {
	cases := map[string]*ReplicationProps{
		"StreamArn":     {PrimaryRegion: "us-west-2"},
		"PrimaryRegion": {StreamArn: jsii.String("arn"), PrimaryRegion: "mars-1"},
		"batch size":    {StreamArn: jsii.String("arn"), PrimaryRegion: "us-west-2", BatchSize: 5000},
		"rate":          {StreamArn: jsii.String("arn"), PrimaryRegion: "us-west-2", Reconciler: &ReconcilerProps{RatePerSecond: 500}},
		"OriginRegions": {StreamArn: jsii.String("arn"), PrimaryRegion: "us-west-2", OriginRegions: []string{"us-west-2", "eu-west-1,x"}},
	}
	names := make([]string, 0, len(cases))
	for k := range cases {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, want := range names {
		msg := panicMessage(func() {
			app := newTestApp(nil, nil)
			stack := awscdk.NewStack(app, jsii.String("Bad"), &awscdk.StackProps{
				Env: &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")}})
			NewReplication(stack, "Replication", cases[want])
		})
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(want)) || strings.Contains(msg, "\n") {
			t.Errorf("NewReplication with a bad %s panicked with %q, want one line naming it", want, msg)
		}
	}
}

func replicationStrings(v interface{}) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []interface{}:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Stateful resources keep their logical ids: a rename would replace the versions table (losing the order of applied
// events) or the dead-letter queues (losing their messages). The ids are those of a replica stack that defines the
// construct with the id "Replication", as IotMultiRegion-Replica-<region> does.
func TestReplicationLogicalIDsPinned(t *testing.T) {
	tpl := replicationTpl(t)
	for typ, want := range map[string][]string{
		"AWS::DynamoDB::Table": {"ReplicationVersionsF3351F1E"},
		"AWS::SQS::Queue":      {"ReplicationDeadLettersAC64B84A", "ReplicationReconcilerFunctionDeadLettersC8295270", "ReplicationTriggerFailures3EF7F436"},
	} {
		var got []string
		for id := range resourcesOfType(tpl, typ) {
			got = append(got, id)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s logical ids = %v, want %v", typ, got, want)
		}
	}
}

// The findings the synth check reports are fixed or acknowledged with a reason: the versions table is encrypted with a
// key of its own whose use is granted on its ARN alone, the state machine logs every transition (without execution
// data), and both queues, being dead-letter targets themselves, say so for the rules that ask them for one.
func TestReplicationSynthCheckFindings(t *testing.T) {
	tpl := replicationTpl(t)
	keys := resourcesOfType(tpl, "AWS::KMS::Key")
	if len(keys) != 1 {
		t.Fatalf("%d KMS keys, want 1 (the versions table's)", len(keys))
	}
	var keyID string
	for id, p := range keys {
		keyID = id
		if p["EnableKeyRotation"] != true {
			t.Errorf("key %s: rotation off", id)
		}
	}
	check(t, "versions table encrypted with the replication's key", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), &map[string]interface{}{
			"SSESpecification": map[string]interface{}{"SSEEnabled": true, "SSEType": "KMS",
				"KMSMasterKeyId": map[string]interface{}{"Fn::GetAtt": []interface{}{keyID, "Arn"}}},
		})
	})
	// Every KMS grant names the key, and only the table's users (three CRUD functions and the reconciler) have one.
	granted := 0
	for id, p := range resourcesOfType(tpl, "AWS::IAM::Policy") {
		for _, st := range p["PolicyDocument"].(map[string]interface{})["Statement"].([]interface{}) {
			s := st.(map[string]interface{})
			if !strings.HasPrefix(replicationStrings(s["Action"])[0], "kms:") {
				continue
			}
			granted++
			want := map[string]interface{}{"Fn::GetAtt": []interface{}{keyID, "Arn"}}
			if got, _ := json.Marshal(s["Resource"]); string(got) != string(must(json.Marshal(want))) {
				t.Errorf("%s grants %v on %s, want the versions key only", id, s["Action"], got)
			}
		}
	}
	if granted != 4 {
		t.Errorf("%d policies grant KMS actions, want 4 (three CRUD functions and the reconciler)", granted)
	}
	check(t, "state machine logs ALL, without execution data", func() {
		tpl.HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), &map[string]interface{}{
			"LoggingConfiguration": assertions.Match_ObjectLike(&map[string]interface{}{
				"Level": "ALL", "IncludeExecutionData": false}),
		})
	})
	for _, q := range []string{"ReplicationDeadLettersAC64B84A", "ReplicationTriggerFailures3EF7F436"} {
		res := (*tpl.ToJSON())["Resources"].(map[string]interface{})[q].(map[string]interface{})
		md, _ := res["Metadata"].(map[string]interface{})
		guard, _ := md["guard"].(map[string]interface{})
		reasons, _ := guard["Reasons"].(map[string]interface{})
		if r, _ := reasons["SQS_DLQ_CHECK"].(string); len(r) < 10 {
			t.Errorf("%s: SQS_DLQ_CHECK acknowledged with %q, want a reason", q, r)
		}
		var nag []string
		if cn, ok := md["cdk_nag"].(map[string]interface{}); ok {
			for _, r := range cn["rules_to_suppress"].([]interface{}) {
				nag = append(nag, r.(map[string]interface{})["id"].(string))
			}
		}
		if !strings.Contains(strings.Join(nag, " "), "Serverless-SQSRedrivePolicy") {
			t.Errorf("%s: cdk-nag acknowledgements %v, want Serverless-SQSRedrivePolicy", q, nag)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// cdk-nag's AwsSolutions and Serverless packs find nothing unacknowledged in the construct, in a stack pinned to an
// account and a region (ARNs written literally, as the replica stacks are) and in one whose account is unknown.
func TestReplicationNagClean(t *testing.T) {
	for _, account := range []string{"123456789012", ""} {
		app := newTestApp(t, nil)
		env := &awscdk.Environment{Region: jsii.String("eu-west-1")}
		if account != "" {
			env.Account = jsii.String(account)
		}
		stack := awscdk.NewStack(app, jsii.String("ReplicationNag"), &awscdk.StackProps{Env: env})
		NewReplication(stack, "Replication", &ReplicationProps{
			StreamArn:     jsii.String("arn:aws:dynamodb:eu-west-1:123456789012:table/IoTMRProvisioning/stream/2026-11-30T00:00:00.000"),
			PrimaryRegion: "us-west-2",
		})
		for _, f := range stackNagErrors(t, app)["ReplicationNag"] {
			t.Errorf("account %q: %s", account, f)
		}
	}
}
