package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

const stateMachine = "arn:aws:states:us-east-1:123456789012:stateMachine:Provisioning"

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	t.Setenv("STATE_MACHINE_ARN", stateMachine)
	t.Setenv("ORIGIN_REGIONS", replaytest.PrimaryRegion)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func insert(seq, id, origin string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: seq,
		Keys:           map[string]events.DynamoDBAttributeValue{"uuid": events.NewStringAttribute(id)},
		NewImage: map[string]events.DynamoDBAttributeValue{
			"uuid": events.NewStringAttribute(id), "eventId": events.NewStringAttribute(id),
			"eventType": events.NewStringAttribute("THING_EVENT"), "originRegion": events.NewStringAttribute(origin),
		},
	}}
}

func TestTrigger(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	h := newTestHandler(t)
	ctx := context.Background()
	modify := insert("3", "e-mod", "us-west-2")
	modify.EventName = "MODIFY"
	remove := insert("4", "e-rem", "us-west-2")
	remove.EventName = "REMOVE"
	bad := insert("6", "bad id/../x", "us-west-2")
	resp, err := h.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		insert("1", "e-1", "us-west-2"), insert("2", "e-own", awsfake.Region), modify, remove,
		insert("5", "e-1", "us-west-2"), bad,
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v, want no failure", resp, err)
	}
	var names []string
	for _, x := range srv.SFN.Executions() {
		names = append(names, x.Name)
		if x.StateMachineArn != stateMachine {
			t.Errorf("execution of %s, want %s", x.StateMachineArn, stateMachine)
		}
	}
	if len(names) != 2 || names[0] != "e-1" || !strings.HasPrefix(names[1], "invalid-") {
		t.Fatalf("executions = %v, want e-1 (once, its copy refused by name) and one for the invalid id", names)
	}
	// The input is the record's dynamodb part: the state machine reads $.NewImage.eventType.S.
	var in struct {
		NewImage struct {
			EventType struct{ S string } `json:"eventType"`
		}
		SequenceNumber string
	}
	if err := json.Unmarshal([]byte(srv.SFN.Executions()[0].Input), &in); err != nil || in.NewImage.EventType.S != "THING_EVENT" || in.SequenceNumber != "1" {
		t.Errorf("execution input = %s (%v), want the stream record", srv.SFN.Executions()[0].Input, err)
	}

	// A failure to start reports that record; the mapping retries from it.
	srv.Inject(awsfake.ServiceSFN, "StartExecution", awsfake.Fault{Status: 400, Code: "StateMachineDoesNotExist", Times: 1})
	resp, err = h.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{insert("7", "e-7", "us-west-2"), insert("8", "e-8", "us-west-2")}})
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "7" {
		t.Errorf("Handle with StartExecution failing once = %+v, %v, want record 7 reported", resp, err)
	}
}

func TestNewHandlerNeedsStateMachine(t *testing.T) {
	t.Setenv("STATE_MACHINE_ARN", "")
	if _, err := newHandler(context.Background()); err == nil {
		t.Error("newHandler without STATE_MACHINE_ARN succeeded")
	}
}

// Items the trigger refuses: a region outside the configured set, none at all, or a timestamp beyond the clock-skew
// bound (a forged far-future DELETE would otherwise pin a tombstone for 30 days). No execution starts for them; they
// are counted in the RefusedEvents metric, which the replication's alarm watches. A malformed item still starts an
// execution, which sends it to the dead-letter queue with its reason.
func TestTriggerRefuses(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	h := newTestHandler(t)
	var metrics strings.Builder
	h.Metrics = &metrics
	now := time.Now()
	event := func(seq, id, origin string, ts time.Time) events.DynamoDBEventRecord {
		r := insert(seq, id, origin)
		for k, v := range map[string]events.DynamoDBAttributeValue{
			"timestamp": events.NewNumberAttribute(fmt.Sprint(ts.UnixMilli())), "operation": events.NewStringAttribute("DELETED"),
			"thingName": events.NewStringAttribute("victim"), "versionNumber": events.NewNumberAttribute("1"),
		} {
			r.Change.NewImage[k] = v
		}
		return r
	}
	resp, err := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		event("1", "e-foreign", "eu-west-1", now),
		event("2", "e-none", "", now),
		event("3", "e-future", replaytest.PrimaryRegion, now.Add(time.Hour)),
		event("4", "e-skew", replaytest.PrimaryRegion, now.Add(time.Minute)), // within the bound
		insert("5", "e-malformed", "eu-west-1"),                              // no timestamp: the dead-letter queue says why
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v, want no failure", resp, err)
	}
	var names []string
	for _, x := range srv.SFN.Executions() {
		names = append(names, x.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"e-malformed", "e-skew"}) {
		t.Errorf("executions = %v, want only e-malformed and e-skew", names)
	}
	var emf struct {
		Region        string
		RefusedEvents int
		AWS           struct {
			CloudWatchMetrics []struct{ Namespace string }
		} `json:"_aws"`
	}
	if err := json.Unmarshal([]byte(metrics.String()), &emf); err != nil || emf.RefusedEvents != 3 ||
		len(emf.AWS.CloudWatchMetrics) != 1 || emf.AWS.CloudWatchMetrics[0].Namespace != "IotMultiRegion" {
		t.Errorf("metric line = %q (%v), want RefusedEvents 3 in IotMultiRegion", metrics.String(), err)
	}
}

// The whole replica path, with nothing imitated: items as the primary's rule writes them (AWS IoT's documented
// registry event shapes) go into a DynamoDB Local table with a stream; the real DynamoDB Streams client reads the
// stream; the trigger starts executions in the Step Functions fake; their inputs run, in order and then shuffled with
// copies, through the state machine definition synthesized from the stack, in the ASL interpreter, whose Task
// states call the CRUD functions' code against the replica fake, with read-repair from the primary. The reconciler
// never runs. The replica converges to the primary: every event but the poison one applies, no execution goes to the
// dead-letter queue, and the simulated time the retries take is the thing type's five minutes.
func TestStreamReplayConverges(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)
	replaytest.ScenarioSameMillisecond(t, p)
	ctx := context.Background()
	table := fmt.Sprintf("IoTMRProvisioning-%d", time.Now().UnixNano())
	if _, err := env.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("uuid"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("uuid"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		StreamSpecification:  &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewTypeNewAndOldImages},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = env.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	put := func(item map[string]ddbtypes.AttributeValue) {
		t.Helper()
		if _, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range p.Events {
		put(replaytest.Item(ev, replaytest.PrimaryRegion))
		if i%4 == 0 { // the rule delivered this event twice: the second write is a MODIFY of the same key
			put(replaytest.Item(ev, replaytest.PrimaryRegion))
		}
	}
	// An event of the replica's own region, replicated into its table: never replayed back.
	put(replaytest.Item(map[string]any{"eventType": replay.ThingEvent, "eventId": "own-1", "timestamp": int64(1), "operation": "CREATED",
		"thingName": "own-thing", "versionNumber": int64(1), "attributes": map[string]any{}}, awsfake.Region))
	// A poison event: a thing name AWS IoT refuses, which a table writer could try to slip in.
	put(replaytest.Item(map[string]any{"eventType": replay.ThingEvent, "eventId": "poison-1", "timestamp": int64(2), "operation": "CREATED",
		"thingName": "../../x", "versionNumber": int64(1), "attributes": map[string]any{}}, replaytest.PrimaryRegion))
	// A forged delete of a real thing from a region that is not an origin: refused by the trigger.
	put(replaytest.Item(map[string]any{"eventType": replay.ThingEvent, "eventId": "forged-1", "timestamp": time.Now().UnixMilli(),
		"operation": "DELETED", "thingName": "sensor-1", "versionNumber": int64(99), "attributes": map[string]any{}}, "eu-west-1"))

	recs := readStream(t, ctx, table)
	if inserts := countInserts(recs); inserts != len(p.Events)+3 {
		t.Fatalf("stream has %d INSERT records, want %d", inserts, len(p.Events)+3)
	}
	h := newTestHandler(t)
	h.Metrics = io.Discard
	for batch := range slices.Chunk(recs, 10) {
		resp, err := h.Handle(ctx, events.DynamoDBEvent{Records: batch})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("trigger = %+v, %v", resp, err)
		}
	}
	execs := env.Replica.SFN.Executions()
	if len(execs) != len(p.Events)+1 {
		t.Fatalf("%d executions started, want one per primary event and the poison one (%d)", len(execs), len(p.Events)+1)
	}
	var inputs []any
	for _, x := range execs {
		if !json.Valid([]byte(x.Input)) {
			t.Fatalf("execution input is not JSON: %s", x.Input)
		}
		inputs = append(inputs, json.RawMessage(x.Input))
	}

	run := func(name string, env *replaytest.Env, inputs []any) {
		t.Run(name, func(t *testing.T) {
			env.WithOrigin(p)
			m := replaytest.NewMachine(t, env)
			results := m.Run(t, inputs)
			if failed := replaytest.Failures(results); !slices.Equal(slices.Compact(failed), []string{"InvalidEventException"}) {
				t.Errorf("failed executions = %v, want only the poison event's", failed)
			}
			for _, msg := range m.DLQ {
				if !strings.Contains(string(msg["NewImage"]), "poison-1") {
					t.Errorf("dead letter %s, want only the poison event", msg["NewImage"])
				}
			}
			if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
				t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
			}
			// The thing type's delete waits AWS IoT's five minutes after its deprecation in the replica, and nothing
			// else waits: no event needs the CRUD exceptions' retries.
			if m.Longest < 5*time.Minute || m.Longest > 7*time.Minute {
				t.Errorf("longest wait of one execution = %v, want the thing type's five minutes and a retry", m.Longest)
			}
			t.Logf("%d executions; simulated waiting: longest execution %v, all executions one after the other %v",
				len(results), m.Longest, m.Waited)
		})
	}
	run("in order", env, inputs)

	shuffled := slices.Clone(inputs)
	rng := mrand.New(mrand.NewPCG(7, 11))
	for _, in := range inputs {
		if rng.IntN(3) == 0 {
			shuffled = append(shuffled, in) // executions retried after a timeout apply again
		}
	}
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	run("shuffled with duplicates", replaytest.New(t), shuffled)
}

func readStream(t *testing.T, ctx context.Context, table string) []events.DynamoDBEventRecord {
	t.Helper()
	streams := dynamodbstreams.NewFromConfig(awsConfig(t))
	ls, err := streams.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: aws.String(table)})
	if err != nil || len(ls.Streams) != 1 {
		t.Fatalf("ListStreams = %v, %v", ls, err)
	}
	arn := ls.Streams[0].StreamArn
	ds, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.DynamoDBEventRecord
	for _, sh := range ds.StreamDescription.Shards {
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: arn, ShardId: sh.ShardId,
			ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for empty := 0; iter != nil && empty < 2; {
			gr, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			if len(gr.Records) == 0 {
				empty++
			}
			for _, r := range gr.Records {
				out = append(out, lambdaRecord(r))
			}
			iter = gr.NextShardIterator
		}
	}
	return out
}

func awsConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background()) // streams: AWS_ENDPOINT_URL_DYNAMODB_STREAMS, DynamoDB Local
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func countInserts(recs []events.DynamoDBEventRecord) int {
	n := 0
	for _, r := range recs {
		if r.EventName == "INSERT" {
			n++
		}
	}
	return n
}

// lambdaRecord is the record as Lambda delivers it to the trigger.
func lambdaRecord(r streamtypes.Record) events.DynamoDBEventRecord {
	img := func(m map[string]streamtypes.AttributeValue) map[string]events.DynamoDBAttributeValue {
		if m == nil {
			return nil
		}
		out := map[string]events.DynamoDBAttributeValue{}
		for k, v := range m {
			out[k] = lambdaValue(v)
		}
		return out
	}
	return events.DynamoDBEventRecord{
		EventName: string(r.EventName), EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{
			Keys: img(r.Dynamodb.Keys), NewImage: img(r.Dynamodb.NewImage), OldImage: img(r.Dynamodb.OldImage),
			SequenceNumber: aws.ToString(r.Dynamodb.SequenceNumber), StreamViewType: string(r.Dynamodb.StreamViewType),
		},
	}
}

func lambdaValue(v streamtypes.AttributeValue) events.DynamoDBAttributeValue {
	switch x := v.(type) {
	case nil:
		// DynamoDB Local's stream writes an empty map attribute as {} with no type key (AWS writes {"M": {}}); this
		// SDK version decodes that as no value. (The schema-serde versions from v1.46 on decode it as the previous
		// attribute's value, which is why go.mod pins v1.32.) The only empty values the rule writes are maps.
		return events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{})
	case *streamtypes.AttributeValueMemberS:
		return events.NewStringAttribute(x.Value)
	case *streamtypes.AttributeValueMemberN:
		return events.NewNumberAttribute(x.Value)
	case *streamtypes.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(x.Value)
	case *streamtypes.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *streamtypes.AttributeValueMemberM:
		m := map[string]events.DynamoDBAttributeValue{}
		for k, e := range x.Value {
			m[k] = lambdaValue(e)
		}
		return events.NewMapAttribute(m)
	case *streamtypes.AttributeValueMemberL:
		l := []events.DynamoDBAttributeValue{}
		for _, e := range x.Value {
			l = append(l, lambdaValue(e))
		}
		return events.NewListAttribute(l)
	}
	panic(fmt.Sprintf("unsupported stream attribute %T", v))
}
