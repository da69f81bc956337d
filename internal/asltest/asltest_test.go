package asltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A machine with the shapes the app's state machines use: Choice on a path, a Task with Retry on a named error and a
// Catch of everything into a task that records the failure, a Fail state with Error and Cause.
const machineJSON = `{
  "StartAt": "Route",
  "States": {
    "Route": {"Type": "Choice", "Choices": [
      {"Variable": "$.kind", "StringEquals": "work", "Next": "Work"},
      {"Or": [{"Variable": "$.kind", "StringEquals": "a"}, {"Variable": "$.kind", "StringEquals": "b"}], "Next": "Shape"}
    ], "Default": "NoMatch"},
    "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": true,
      "Retry": [{"ErrorEquals": ["WorkException"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxAttempts": 3}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record"}]},
    "Shape": {"Type": "Pass", "Parameters": {"got.$": "$.kind", "const": 1}, "ResultPath": "$.shaped", "End": true},
    "Record": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
      "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq", "MessageBody.$": "$"},
      "Next": "Failed"},
    "Failed": {"Type": "Fail", "Error": "WorkFailed", "Cause": "work failed, sent to the queue"},
    "NoMatch": {"Type": "Fail", "Error": "DefaultStateError", "Cause": "No Matches!"}
  }
}`

// WorkException is named like the errors the Lambda Go runtime reports by type name.
type WorkException struct{ msg string }

func (e *WorkException) Error() string { return e.msg }

func fast() *time.Duration { d := time.Millisecond; return &d }

func TestRun(t *testing.T) {
	r := New(t)
	ctx := context.Background()

	var recorded atomic.Value
	record := func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
		recorded.Store(string(in))
		return json.RawMessage(`{"MessageId":"m-1"}`), nil
	}
	failTimes := func(n int, err error) Task {
		var calls atomic.Int32
		return func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
			if int(calls.Add(1)) <= n {
				return nil, err
			}
			return json.RawMessage(`{"done":true}`), nil
		}
	}

	tests := []struct {
		name       string
		input      string
		work       Task
		wantStatus string
		wantError  string
		wantStates []string
		wantCalls  int // calls of Work
		wantCaught bool
	}{
		{name: "success", input: `{"kind":"work"}`, work: failTimes(0, nil),
			wantStatus: "SUCCEEDED", wantStates: []string{"Route", "Work"}, wantCalls: 1},
		{name: "retried twice then succeeds", input: `{"kind":"work"}`, work: failTimes(2, &WorkException{"busy"}),
			wantStatus: "SUCCEEDED", wantStates: []string{"Route", "Work"}, wantCalls: 3},
		{name: "retries exhausted then caught", input: `{"kind":"work"}`, work: failTimes(10, &WorkException{"still busy"}),
			wantStatus: "FAILED", wantError: "WorkFailed", wantStates: []string{"Route", "Work", "Record", "Failed"},
			wantCalls: 4, wantCaught: true},
		{name: "other error not retried but caught", input: `{"kind":"work"}`, work: failTimes(10, fmt.Errorf("wrapped: %w", errors.New("x"))),
			wantStatus: "FAILED", wantError: "WorkFailed", wantStates: []string{"Route", "Work", "Record", "Failed"},
			wantCalls: 1, wantCaught: true},
		{name: "explicit error name", input: `{"kind":"work"}`, work: failTimes(1, &Error{Name: "WorkException", Cause: "named"}),
			wantStatus: "SUCCEEDED", wantStates: []string{"Route", "Work"}, wantCalls: 2},
		{name: "or branch", input: `{"kind":"b"}`, work: failTimes(0, nil),
			wantStatus: "SUCCEEDED", wantStates: []string{"Route", "Shape"}},
		{name: "default", input: `{"kind":"zzz"}`, work: failTimes(0, nil),
			wantStatus: "FAILED", wantError: "DefaultStateError", wantStates: []string{"Route", "NoMatch"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recorded.Store("")
			res, err := r.Run(ctx, []byte(machineJSON), json.RawMessage(tc.input), Options{
				Tasks:         map[string]Task{"Work": tc.work, "Record": record},
				RetryInterval: fast(),
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Status != tc.wantStatus || res.Error != tc.wantError {
				t.Fatalf("Run = %s %s (%s), want %s %s", res.Status, res.Error, res.Cause, tc.wantStatus, tc.wantError)
			}
			if !slices.Equal(res.States, tc.wantStates) {
				t.Errorf("States = %v, want %v", res.States, tc.wantStates)
			}
			if got := res.Calls["Work"]; got != tc.wantCalls {
				t.Errorf("Calls[Work] = %d, want %d", got, tc.wantCalls)
			}
			if got := len(res.Caught()) > 0; got != tc.wantCaught {
				t.Errorf("caught = %v, want %v", got, tc.wantCaught)
			}
			if tc.wantCaught {
				// The catcher's ResultPath put the error into the record's body, which Parameters passed on.
				var msg struct {
					QueueURL string `json:"QueueUrl"`
					Body     struct {
						Kind  string `json:"kind"`
						Error struct{ Error, Cause string }
					} `json:"MessageBody"`
				}
				if err := json.Unmarshal([]byte(recorded.Load().(string)), &msg); err != nil {
					t.Fatalf("record input %q: %v", recorded.Load(), err)
				}
				if msg.Body.Kind != "work" || msg.Body.Error.Error == "" || !strings.Contains(msg.Body.Error.Cause, "errorMessage") {
					t.Errorf("record input = %+v, want the original input with the error and a Lambda-style cause", msg)
				}
			}
			if tc.name == "or branch" {
				var out struct{ Shaped map[string]any }
				if err := json.Unmarshal(res.Output, &out); err != nil || out.Shaped["got"] != "b" || out.Shaped["const"] != 1.0 {
					t.Errorf("Output = %s, want the Pass state's payload template applied", res.Output)
				}
			}
		})
	}
}

// The interpreter really waits the definition's retry interval unless told otherwise: 3 s, then 6 s.
func TestRunRealRetryInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 3 s")
	}
	r := New(t)
	n := 0
	work := func(context.Context, json.RawMessage) (json.RawMessage, error) {
		n++
		if n == 1 {
			return nil, &WorkException{"once"}
		}
		return json.RawMessage(`{}`), nil
	}
	began := time.Now()
	res, err := r.Run(context.Background(), []byte(machineJSON), map[string]string{"kind": "work"}, Options{
		Tasks: map[string]Task{"Work": work, "Record": work},
	})
	if err != nil || res.Status != "SUCCEEDED" {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if took := time.Since(began); took < 3*time.Second {
		t.Errorf("one retry took %v, want at least the 3 s IntervalSeconds", took)
	}
}

func TestRunRefusesUnboundTask(t *testing.T) {
	r := New(t)
	_, err := r.Run(context.Background(), []byte(machineJSON), nil, Options{Tasks: map[string]Task{"Work": nil}})
	if err == nil || !strings.Contains(err.Error(), `"Record" has no binding`) && !strings.Contains(err.Error(), `"Work" has no binding`) {
		t.Fatalf("Run without bindings = %v, want an unbound-task error", err)
	}
}

func TestRunReportsBadDefinition(t *testing.T) {
	r := New(t)
	_, err := r.Run(context.Background(), []byte(`{"StartAt":"Nope","States":{"A":{"Type":"Succeed"}}}`), nil, Options{})
	if err == nil {
		t.Fatal("Run of a definition whose StartAt names no state succeeded, want an error")
	}
}

func TestTaskStatesNested(t *testing.T) {
	def := `{"StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{"StartAt":"Inner","States":{"Inner":{"Type":"Task","Resource":"x","End":true}}},"Next":"P"},
	  "P":{"Type":"Parallel","Branches":[{"StartAt":"B","States":{"B":{"Type":"Task","Resource":"y","End":true}}}],"End":true}}}`
	got, err := TaskStates([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"B", "Inner"}; !slices.Equal(got, want) {
		t.Errorf("TaskStates = %v, want %v", got, want)
	}
}

func TestErrorName(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&WorkException{"x"}, "WorkException"},
		{&Error{Name: "States.Timeout"}, "States.Timeout"},
		{errors.New("x"), "errorString"},
		{fmt.Errorf("a: %w", errors.New("b")), "wrapError"},
	} {
		if got := ErrorName(tc.err); got != tc.want {
			t.Errorf("ErrorName(%T) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestRunBatch(t *testing.T) {
	r := New(t)
	var fail atomic.Bool
	work := func(context.Context, json.RawMessage) (json.RawMessage, error) {
		if fail.Load() {
			return nil, &WorkException{"always"}
		}
		return json.RawMessage(`{}`), nil
	}
	record := func(context.Context, json.RawMessage) (json.RawMessage, error) {
		fail.Store(false) // the catch path heals the next execution: proves the executions ran in order
		return json.RawMessage(`{}`), nil
	}
	fail.Store(true)
	res, err := r.RunBatch(context.Background(), []byte(machineJSON),
		[]any{map[string]string{"kind": "work"}, map[string]string{"kind": "work"}, map[string]string{"kind": "x"}},
		Options{Tasks: map[string]Task{"Work": work, "Record": record}, RetryInterval: fast()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range res {
		got = append(got, x.Status+"/"+x.Error)
	}
	if want := []string{"FAILED/WorkFailed", "SUCCEEDED/", "FAILED/DefaultStateError"}; !slices.Equal(got, want) {
		t.Errorf("RunBatch = %v, want %v", got, want)
	}
	if res[0].Calls["Work"] != 4 || res[1].Calls["Work"] != 1 || res[2].Calls["Work"] != 0 {
		t.Errorf("Calls = %v %v %v, want 4, 1 and 0 calls of Work", res[0].Calls, res[1].Calls, res[2].Calls)
	}
}

// Task states inside a Map's item processor are bound like any other, once per item; a failed item fails the Map,
// and its Catch sees the item's error.
func TestRunMap(t *testing.T) {
	r := New(t)
	def := `{"StartAt":"Each","States":{"Each":{"Type":"Map","ItemsPath":"$.items","MaxConcurrency":2,
	  "ItemProcessor":{"ProcessorConfig":{"Mode":"INLINE"},"StartAt":"Inner","States":{"Inner":{"Type":"Task","Resource":"x","End":true}}},
	  "ResultPath":"$.results","Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.error","Next":"Failed"}],"End":true},
	  "Failed":{"Type":"Pass","End":true}}}`
	inner := func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
		var n int
		if err := json.Unmarshal(in, &n); err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, &WorkException{"negative"}
		}
		return json.Marshal(n * 10)
	}
	res, err := r.RunBatch(context.Background(), []byte(def), []any{
		map[string]any{"items": []int{1, 2, 3}}, map[string]any{"items": []int{1, -1}},
	}, Options{Tasks: map[string]Task{"Inner": inner}})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Results []int }
	if err := json.Unmarshal(res[0].Output, &out); err != nil || !slices.Equal(out.Results, []int{10, 20, 30}) || res[0].Calls["Inner"] != 3 {
		t.Errorf("Map over [1 2 3] = %s (%v), %d calls; want [10 20 30] from 3 calls", res[0].Output, err, res[0].Calls["Inner"])
	}
	var caught struct{ Error struct{ Error string } }
	if err := json.Unmarshal(res[1].Output, &caught); err != nil || caught.Error.Error != "WorkException" || !slices.Contains(res[1].Caught(), "Each") {
		t.Errorf("Map with a failing item = %s (%v), want the item's WorkException caught", res[1].Output, err)
	}
}

// A distributed Map runs from its definition: items from the ItemReader's resource, the ItemSelector's shape, one
// child execution per item, tolerated failures and the ResultWriter's objects.
const distributedJSON = `{
  "StartAt": "Each",
  "States": {
    "Each": {"Type": "Map", "Label": "Each",
      "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.where.bucket", "Key.$": "$.where.key"}},
      "ItemSelector": {"id.$": "$$.Map.Item.Value.id", "run.$": "$$.Execution.Id", "at.$": "$$.Map.Item.Index"},
      "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Work",
        "States": {"Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": true}}},
      "MaxConcurrency": 2,
      "ToleratedFailureCount": 1,
      "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "results"}},
      "ResultPath": "$.results",
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
      "End": true},
    "Caught": {"Type": "Fail", "Error": "MapFailed"}
  }
}`

func TestRunDistributedMap(t *testing.T) {
	r := New(t)
	objects := map[string]string{"in/items.json": `[{"id":"a","x":1},{"id":"b"},{"id":"fail"}]`}
	var written []string
	resources := map[string]Task{
		"arn:aws:states:::s3:getObject": func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p struct{ Bucket, Key string }
			_ = json.Unmarshal(in, &p)
			body, ok := objects[p.Key]
			if p.Bucket != "bkt" || !ok {
				return nil, &Error{Name: "S3.NoSuchKeyException", Cause: "no " + p.Key}
			}
			return json.Marshal(body)
		},
		"arn:aws:states:::s3:putObject": func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p struct{ Bucket, Key, Body string }
			_ = json.Unmarshal(in, &p)
			written = append(written, p.Bucket+"/"+p.Key)
			return json.RawMessage(`{}`), nil
		},
	}
	var inputs []string
	work := func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
		var p struct {
			ID, Run string
			At      int
		}
		_ = json.Unmarshal(in, &p)
		if p.ID == "fail" {
			return nil, &WorkException{"item failed"}
		}
		inputs = append(inputs, string(in))
		if !strings.HasPrefix(p.Run, "arn:aws:states:") {
			return nil, &WorkException{"no execution id in the ItemSelector: " + string(in)}
		}
		return json.RawMessage(`{"ok":true}`), nil
	}
	opts := Options{Tasks: map[string]Task{"Work": work}, Resources: resources}
	res, err := r.Run(context.Background(), []byte(distributedJSON), json.RawMessage(`{"where":{"bucket":"bkt","key":"in/items.json"}}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "SUCCEEDED" || len(res.Children) != 3 {
		t.Fatalf("Run() = %s %s %s with %d children, want SUCCEEDED with 3 (one failure tolerated)", res.Status, res.Error, res.Cause, len(res.Children))
	}
	var out struct {
		Results struct {
			MapRunArn           string
			ResultWriterDetails struct{ Bucket, Key string }
		}
	}
	_ = json.Unmarshal(res.Output, &out)
	if out.Results.ResultWriterDetails.Bucket != "out" || !strings.HasPrefix(out.Results.ResultWriterDetails.Key, "results/") ||
		!strings.HasSuffix(out.Results.ResultWriterDetails.Key, "/manifest.json") {
		t.Errorf("Map output = %s, want the ResultWriter's manifest under results/", res.Output)
	}
	if len(written) != 3 { // SUCCEEDED_0.json, FAILED_0.json, manifest.json
		t.Errorf("objects written = %v, want 3", written)
	}
	if len(inputs) != 2 || strings.Contains(strings.Join(inputs, ""), `"x"`) {
		t.Errorf("child inputs = %v, want the ItemSelector's shape only", inputs)
	}
	failed := 0
	for _, c := range res.Children {
		if c.Status == "FAILED" {
			failed++
			if c.Error != "WorkException" || c.Calls["Work"] != 1 {
				t.Errorf("failed child = %+v", c)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d failed children, want 1", failed)
	}

	// Two failures exceed the tolerated count: the Map fails with States.ExceedToleratedFailureThreshold.
	objects["in/items.json"] = `[{"id":"fail"},{"id":"fail"},{"id":"c"}]`
	res, err = r.Run(context.Background(), []byte(distributedJSON), json.RawMessage(`{"where":{"bucket":"bkt","key":"in/items.json"}}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "FAILED" || !slices.Contains(res.Caught(), "Each") || !strings.Contains(res.Events[len(res.Events)-1].Cause+fmt.Sprint(res.Events), "States.ExceedToleratedFailureThreshold") {
		t.Errorf("two failures: %s %s, caught %v", res.Status, res.Error, res.Caught())
	}
	// A wrong reader path fails the Map as the ItemReader's failure.
	res, err = r.Run(context.Background(), []byte(distributedJSON), json.RawMessage(`{"where":{"bucket":"bkt","key":"nowhere.json"}}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "FAILED" || !strings.Contains(fmt.Sprint(res.Events), "States.ItemReaderFailed") || len(res.Children) != 0 {
		t.Errorf("missing items: %s, children %d, events %v", res.Status, len(res.Children), res.Events)
	}
}

// A Task's TimeoutSeconds is not timed on the wall clock: a bound function slower than it (as a step can be on a
// loaded machine) still succeeds; a test simulates a timeout with Error{Name: "States.Timeout"}.
func TestRunTaskTimeoutNotWallClock(t *testing.T) {
	r := New(t)
	def := []byte(`{"StartAt": "Slow", "States": {
  "Slow": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:slow", "TimeoutSeconds": 1, "End": true}}}`)
	slow := func(context.Context, json.RawMessage) (json.RawMessage, error) {
		time.Sleep(1200 * time.Millisecond) // stands for a step slowed down by machine load
		return json.RawMessage(`{"done":true}`), nil
	}
	res, err := r.Run(context.Background(), def, nil, Options{Tasks: map[string]Task{"Slow": slow}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "SUCCEEDED" {
		t.Errorf("slow task: %s %s %s, want SUCCEEDED", res.Status, res.Error, res.Cause)
	}
}
