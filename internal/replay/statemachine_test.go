package replay_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

// The replay state machine exactly as synthesized (the golden file the stack test keeps in step with the template),
// run in the ASL interpreter with its Task states bound to the CRUD functions' code against the replica fake and the
// Versions table, and the dead-letter task to an in-memory queue.
func TestStateMachineReplays(t *testing.T) {
	env := replaytest.New(t)
	m := replaytest.NewMachine(t, env)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)

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

	results := m.Run(t, inputs)
	retried := map[string]int{}
	for _, res := range results {
		for _, e := range res.Events {
			if e.Type == "StateRetried" {
				retried[e.State]++
			}
		}
	}
	if failed := replaytest.Failures(results); !slices.Equal(failed, []string{"DefaultStateError", "InvalidEventException"}) {
		t.Errorf("failed executions = %v, want [DefaultStateError InvalidEventException]", failed)
	}
	// The injected fault once; the thing type's delete three times (80, 120 and 180 s: 380 s after its deprecation,
	// the first retry past AWS IoT's five minutes).
	if want := map[string]int{"ThingGroupCrud": 1, "ThingTypeCrud": 3}; !maps.Equal(retried, want) {
		t.Errorf("retries = %v, want %v", retried, want)
	}
	if m.Longest != 380*time.Second {
		t.Errorf("the longest execution waited %v, want 6m20s", m.Longest)
	}
	if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
		t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
	}

	// The dead-letter queue holds each failed record's content with its error: enough to replay it by hand.
	if len(m.DLQ) != 2 {
		t.Fatalf("dead-letter queue has %d messages, want 2", len(m.DLQ))
	}
	for _, msg := range m.DLQ {
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
