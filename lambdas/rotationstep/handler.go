package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Step names, the values of STEP.
const (
	StepSendCSR        = "SendCSR"
	StepCommandResult  = "CommandResult"
	StepCheckCSR       = "CheckCSR"
	StepIssue          = "Issue"
	StepGetCertificate = "GetCertificate"
	StepSendInstall    = "SendInstall"
	StepRecord         = "Record"
	StepNotifyFailure  = "NotifyFailure"
	StepNotifyRun      = "NotifyRunFailure"
)

// Steps lists every step.
var Steps = []string{StepSendCSR, StepCommandResult, StepCheckCSR, StepIssue, StepGetCertificate, StepSendInstall,
	StepRecord, StepNotifyFailure, StepNotifyRun}

// Handler runs one step of the rotation workflow (rotation.Steps).
type Handler struct {
	Step  string
	Steps *rotation.Steps
}

// Handle decodes the event for the step, runs it and returns its result; a step error reaches the state machine
// with its name as errorType.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (any, error) {
	if h.Step == StepNotifyRun {
		var f rotation.RunFailure
		if err := json.Unmarshal(event, &f); err != nil {
			return nil, fmt.Errorf("decode run failure event: %w", err)
		}
		out, err := h.Steps.NotifyRunFailure(ctx, f)
		return out, rotation.LambdaError(err)
	}
	if h.Step == StepNotifyFailure {
		var f rotation.Failure
		if err := json.Unmarshal(event, &f); err != nil {
			return nil, fmt.Errorf("decode failure event: %w", err)
		}
		out, err := h.Steps.NotifyFailure(ctx, f)
		publish(h.Step, err)
		return out, rotation.LambdaError(err)
	}
	var st rotation.State
	if err := json.Unmarshal(event, &st); err != nil {
		return nil, rotation.LambdaError(&rotation.Error{Name: rotation.ErrHostInvalid, Message: "decode state: " + err.Error()})
	}
	var (
		out any
		err error
	)
	switch h.Step {
	case StepSendCSR:
		out, err = h.Steps.SendCSR(ctx, st)
	case StepCommandResult:
		out, err = h.Steps.CommandResult(ctx, st)
	case StepCheckCSR:
		out, err = h.Steps.CheckCSR(ctx, st)
	case StepIssue:
		out, err = h.Steps.Issue(ctx, st)
	case StepGetCertificate:
		out, err = h.Steps.GetCertificate(ctx, st)
	case StepSendInstall:
		out, err = h.Steps.SendInstall(ctx, st)
	case StepRecord:
		out, err = h.Steps.Record(ctx, st)
	default:
		return nil, fmt.Errorf("unknown step %q", h.Step)
	}
	publish(h.Step, err)
	if err != nil {
		return nil, rotation.LambdaError(err)
	}
	return out, nil
}
