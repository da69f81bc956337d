package replay_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/asltest"
	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

// The replay state machine exactly as synthesized (the golden file the stack test keeps in step with the template),
// run in the ASL interpreter with its Task states bound to the CRUD functions' code against the replica fake and the
// Versions table, and the dead-letter task to an in-memory queue.
func TestStateMachineReplays(t *testing.T) {
	def, err := os.ReadFile(filepath.Join("..", "..", "testdata", "multiregion", "replication-statemachine.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := asltest.New(t)
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)

	var mu sync.Mutex
	var dlq []map[string]json.RawMessage
	bind := func(f replay.Function) asltest.Task {
		return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var rec replay.Record
			if err := json.Unmarshal(in, &rec); err != nil {
				return nil, err
			}
			out, err := f.Handle(ctx, env.Applier, rec)
			if err != nil {
				return nil, err
			}
			return json.Marshal(out)
		}
	}
	tasks := map[string]asltest.Task{
		"ThingCrud": bind(replay.ThingCrud), "ThingTypeCrud": bind(replay.ThingTypeCrud), "ThingGroupCrud": bind(replay.ThingGroupCrud),
		"SendToDeadLetterQueue": func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
			var msg struct {
				QueueURL    string          `json:"QueueUrl"`
				MessageBody json.RawMessage `json:"MessageBody"`
			}
			if err := json.Unmarshal(in, &msg); err != nil || !strings.HasPrefix(msg.QueueURL, "https://sqs.") {
				return nil, &asltest.Error{Name: "SQS.InvalidParameterValue", Cause: string(in)}
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(msg.MessageBody, &body); err != nil {
				return nil, err
			}
			mu.Lock()
			dlq = append(dlq, body)
			mu.Unlock()
			return json.RawMessage(`{"MessageId":"m"}`), nil
		},
	}

	// The primary's events in order, one poison event, one event type nothing replays, and a fault that passes on the
	// state machine's retry.
	var inputs []any
	for _, ev := range p.Events {
		inputs = append(inputs, replaytest.Record(ev, replaytest.PrimaryRegion))
	}
	poison := replaytest.Record(map[string]any{"eventType": replay.ThingEvent, "eventId": "poison-1", "timestamp": int64(5),
		"operation": "CREATED", "thingName": "a/b", "versionNumber": int64(1), "attributes": map[string]any{}}, replaytest.PrimaryRegion)
	unknown := replaytest.Record(map[string]any{"eventType": "JOB_EVENT", "eventId": "job-1", "timestamp": int64(6),
		"operation": "CREATED"}, replaytest.PrimaryRegion)
	inputs = slices.Insert(inputs, 3, any(poison))
	inputs = slices.Insert(inputs, 7, any(unknown))
	env.Replica.Inject(awsfake.ServiceIoT, "CreateThingGroup", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})

	fast := time.Millisecond
	results, err := r.RunBatch(context.Background(), def, inputs, asltest.Options{Tasks: tasks, RetryInterval: &fast})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	retried := 0
	for _, res := range results {
		if res.Status != "SUCCEEDED" {
			failed = append(failed, res.Error)
		}
		retried += len(res.Retried())
	}
	slices.Sort(failed)
	if want := []string{"DefaultStateError", "InvalidEventException"}; !slices.Equal(failed, want) {
		t.Errorf("failed executions = %v, want %v", failed, want)
	}
	if retried != 1 {
		t.Errorf("%d retries, want 1 (the injected fault)", retried)
	}
	if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
		t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
	}

	// The dead-letter queue holds each failed record's content with its error: enough to replay it by hand.
	if len(dlq) != 2 {
		t.Fatalf("dead-letter queue has %d messages, want 2", len(dlq))
	}
	for _, msg := range dlq {
		var body struct {
			NewImage struct {
				EventID struct{ S string } `json:"eventId"`
			}
			Error struct{ Error, Cause string } `json:"error"`
		}
		raw, _ := json.Marshal(msg)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatal(err)
		}
		switch body.NewImage.EventID.S {
		case "poison-1":
			if body.Error.Error != "InvalidEventException" || !strings.Contains(body.Error.Cause, "thingName") {
				t.Errorf("poison message error = %+v", body.Error)
			}
		case "job-1":
			if body.Error.Error != "DefaultStateError" || body.Error.Cause != "No Matches!" {
				t.Errorf("unmatched message error = %+v", body.Error)
			}
		default:
			t.Errorf("unexpected dead letter %s", raw)
		}
	}
}
