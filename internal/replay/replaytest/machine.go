package replaytest

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/asltest"
	"github.com/iotcert/iotcert/internal/replay"
)

// Machine binds the Task states of the replay state machine, as synthesized, to the CRUD functions' code against a
// replica, and the dead-letter task to an in-memory queue. The interpreter runs the definition's Retry with a short
// interval (asltest.Options.RetryInterval); Machine moves the replica's clock by the interval the definition itself
// gives each retry (IntervalSeconds, BackoffRate, MaxDelaySeconds), so that rules that depend on time (a thing type is
// deleted five minutes after its deprecation) see the time AWS would, and it adds those intervals up.
type Machine struct {
	Definition []byte
	Tasks      map[string]asltest.Task

	mu sync.Mutex
	// DLQ holds the message bodies sent to the dead-letter queue.
	DLQ []map[string]json.RawMessage
	// Waited is the simulated time the executions spent waiting before retries, summed over executions (they run
	// one after the other in the interpreter); Longest is the longest one execution waited.
	Waited, Longest time.Duration
	retriers        map[string][]retrier
	inflight        map[string]*execution // state + input → the execution retrying it
	clock           *Clock
}

type retrier struct {
	ErrorEquals     []string
	IntervalSeconds *float64
	BackoffRate     *float64
	MaxAttempts     *int
	MaxDelaySeconds *float64
}

type execution struct {
	attempts map[int]int // retrier index → retries used
	wait     time.Duration
	waited   time.Duration
}

// DefinitionPath is the golden file of the synthesized replay state machine (stacks keeps it equal to the template).
func DefinitionPath() string {
	return filepath.Join(ModuleRoot(), "testdata", "multiregion", "replication-statemachine.asl.json")
}

// ModuleRoot is the directory holding go.mod.
func ModuleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// NewMachine reads the synthesized definition and binds it to env's Applier and clock.
func NewMachine(t testing.TB, env *Env) *Machine {
	t.Helper()
	def, err := os.ReadFile(DefinitionPath())
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		States map[string]struct {
			Retry []retrier
		}
	}
	if err := json.Unmarshal(def, &parsed); err != nil {
		t.Fatal(err)
	}
	m := &Machine{Definition: def, retriers: map[string][]retrier{}, inflight: map[string]*execution{}, clock: env.Clock}
	for name, st := range parsed.States {
		m.retriers[name] = st.Retry
	}
	bind := func(state string, f replay.Function) asltest.Task {
		return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			key := state + "\x00" + string(in)
			m.before(key)
			var rec replay.Record
			if err := json.Unmarshal(in, &rec); err != nil {
				return nil, err
			}
			out, err := f.Handle(ctx, env.Applier, rec)
			m.after(state, key, err)
			if err != nil {
				return nil, err
			}
			return json.Marshal(out)
		}
	}
	m.Tasks = map[string]asltest.Task{
		"ThingCrud": bind("ThingCrud", replay.ThingCrud), "ThingTypeCrud": bind("ThingTypeCrud", replay.ThingTypeCrud),
		"ThingGroupCrud": bind("ThingGroupCrud", replay.ThingGroupCrud),
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
			m.mu.Lock()
			m.DLQ = append(m.DLQ, body)
			m.mu.Unlock()
			return json.RawMessage(`{"MessageId":"m"}`), nil
		},
	}
	return m
}

// before moves the clock by the wait of a retry.
func (m *Machine) before(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x := m.inflight[key]; x != nil && x.wait > 0 {
		m.clock.Advance(x.wait)
		m.Waited += x.wait
		x.waited += x.wait
		m.Longest = max(m.Longest, x.waited)
		x.wait = 0
	}
}

// after works out, as Step Functions does, whether the state will be retried and after how long.
func (m *Machine) after(state, key string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.inflight, key)
		return
	}
	name := asltest.ErrorName(err)
	for i, r := range m.retriers[state] {
		if !slices.Contains(r.ErrorEquals, name) && !slices.Contains(r.ErrorEquals, "States.ALL") {
			continue
		}
		x := m.inflight[key]
		if x == nil {
			x = &execution{attempts: map[int]int{}}
			m.inflight[key] = x
		}
		maxAttempts := 3
		if r.MaxAttempts != nil {
			maxAttempts = *r.MaxAttempts
		}
		if x.attempts[i] >= maxAttempts {
			break // retries exhausted: the Catch ends the execution
		}
		interval, backoff := 1.0, 2.0
		if r.IntervalSeconds != nil {
			interval = *r.IntervalSeconds
		}
		if r.BackoffRate != nil {
			backoff = *r.BackoffRate
		}
		secs := interval * math.Pow(backoff, float64(x.attempts[i]))
		if r.MaxDelaySeconds != nil {
			secs = min(secs, *r.MaxDelaySeconds)
		}
		x.attempts[i]++
		x.wait = time.Duration(secs * float64(time.Second))
		return
	}
	delete(m.inflight, key)
}

// Run runs one execution per input, one after the other, with the short retry interval.
func (m *Machine) Run(t testing.TB, inputs []any) []*asltest.Result {
	t.Helper()
	fast := time.Millisecond
	results, err := asltest.New(t).RunBatch(context.Background(), m.Definition, inputs,
		asltest.Options{Tasks: m.Tasks, RetryInterval: &fast, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// Failures lists the error names of the executions that failed, sorted.
func Failures(results []*asltest.Result) []string {
	var failed []string
	for _, res := range results {
		if res.Status != "SUCCEEDED" {
			failed = append(failed, res.Error)
		}
	}
	slices.Sort(failed)
	return failed
}
