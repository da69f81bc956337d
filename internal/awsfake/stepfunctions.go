package awsfake

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Execution is a Step Functions execution started through StartExecution.
type Execution struct {
	ARN             string
	StateMachineArn string
	Name            string
	Input           string
	// Status is RUNNING until Finish sets it (the fake runs nothing); Output is set by Finish.
	Status string
	Output string
}

// TaskResult is a task token answered through SendTaskSuccess or SendTaskFailure.
type TaskResult struct {
	Token   string
	Success bool
	Output  string // SendTaskSuccess
	Error   string // SendTaskFailure
	Cause   string // SendTaskFailure
}

// StepFunctions is a fake AWS Step Functions that records executions and task answers.
type StepFunctions struct {
	mu         sync.Mutex
	executions []Execution
	tasks      []TaskResult
}

func newStepFunctions() *StepFunctions { return &StepFunctions{} }

// Executions returns the started executions, oldest first.
func (f *StepFunctions) Executions() []Execution {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.executions)
}

// TaskResults returns the task answers, oldest first.
func (f *StepFunctions) TaskResults() []TaskResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tasks)
}

func (f *StepFunctions) handler(op string) jsonHandler {
	switch op {
	case "StartExecution":
		return f.startExecution
	case "SendTaskSuccess":
		return f.sendTaskSuccess
	case "SendTaskFailure":
		return f.sendTaskFailure
	case "DescribeExecution":
		return f.describeExecution
	}
	return nil
}

var (
	stateMachineARNRE = regexp.MustCompile(`^arn:aws:states:[a-z0-9-]+:\d{12}:stateMachine:([A-Za-z0-9_-]{1,80})$`)
	executionNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	executionARNRE    = regexp.MustCompile(`^arn:aws:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:[A-Za-z0-9_-]{1,80}$`)
)

func sfnError(code, format string, args ...any) *apiError { return errorf(400, code, format, args...) }

func (f *StepFunctions) startExecution(body []byte) (any, *apiError) {
	var in struct {
		StateMachineArn string `json:"stateMachineArn"`
		Name            string `json:"name"`
		Input           string `json:"input"`
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	m := stateMachineARNRE.FindStringSubmatch(in.StateMachineArn)
	if m == nil {
		return nil, sfnError("InvalidArn", "Invalid Arn: '%s'", in.StateMachineArn)
	}
	if in.Name == "" {
		in.Name = newUUID()
	} else if !executionNameRE.MatchString(in.Name) {
		return nil, sfnError("InvalidName", "Invalid Name: '%s'", in.Name)
	}
	if in.Input == "" {
		in.Input = "{}"
	}
	if !json.Valid([]byte(in.Input)) {
		return nil, sfnError("InvalidExecutionInput", "Invalid State Machine Execution Input: not valid JSON")
	}
	arn := strings.Replace(in.StateMachineArn, ":stateMachine:", ":execution:", 1) + ":" + in.Name
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.executions {
		if x.ARN == arn {
			if x.Input != in.Input {
				return nil, sfnError("ExecutionAlreadyExists", "Execution Already Exists: '%s'", arn)
			}
			return map[string]any{"executionArn": arn, "startDate": epoch(time.Now())}, nil
		}
	}
	f.executions = append(f.executions, Execution{ARN: arn, StateMachineArn: in.StateMachineArn, Name: in.Name, Input: in.Input, Status: "RUNNING"})
	return map[string]any{"executionArn": arn, "startDate": epoch(time.Now())}, nil
}

func (f *StepFunctions) sendTaskSuccess(body []byte) (any, *apiError) {
	var in struct {
		TaskToken string `json:"taskToken"`
		Output    string `json:"output"`
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if in.TaskToken == "" {
		return nil, sfnError("InvalidToken", "Invalid Token: empty")
	}
	if !json.Valid([]byte(in.Output)) {
		return nil, sfnError("InvalidOutput", "Invalid Output: not valid JSON")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = append(f.tasks, TaskResult{Token: in.TaskToken, Success: true, Output: in.Output})
	return struct{}{}, nil
}

func (f *StepFunctions) sendTaskFailure(body []byte) (any, *apiError) {
	var in struct {
		TaskToken string `json:"taskToken"`
		Error     string `json:"error"`
		Cause     string `json:"cause"`
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if in.TaskToken == "" {
		return nil, sfnError("InvalidToken", "Invalid Token: empty")
	}
	if len(in.Error) > 256 || len(in.Cause) > 32768 {
		return nil, sfnError("ValidationException", "error is limited to 256 and cause to 32768 characters")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = append(f.tasks, TaskResult{Token: in.TaskToken, Error: in.Error, Cause: in.Cause})
	return struct{}{}, nil
}

// Finish sets the status (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) and output DescribeExecution reports for an
// execution; it reports whether the execution exists.
func (f *StepFunctions) Finish(arn, status, output string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.executions {
		if f.executions[i].ARN == arn {
			f.executions[i].Status, f.executions[i].Output = status, output
			return true
		}
	}
	return false
}

func (f *StepFunctions) describeExecution(body []byte) (any, *apiError) {
	var in struct {
		ExecutionArn string `json:"executionArn"`
	}
	if e := decodeJSON(body, &in, "InvalidArn"); e != nil {
		return nil, e
	}
	if !executionARNRE.MatchString(in.ExecutionArn) {
		return nil, sfnError("InvalidArn", "Invalid Arn: '%s'", in.ExecutionArn)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.executions {
		if x.ARN == in.ExecutionArn {
			out := map[string]any{
				"executionArn": x.ARN, "stateMachineArn": x.StateMachineArn, "name": x.Name, "status": x.Status,
				"input": x.Input, "startDate": epoch(time.Now()),
			}
			if x.Output != "" {
				out["output"] = x.Output
			}
			return out, nil
		}
	}
	return nil, sfnError("ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", in.ExecutionArn)
}
