package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler records and publishes a host's failure (rotation.Steps.NotifyFailure).
type Handler struct {
	Steps *rotation.Steps
}

// Handle runs the step; a step error reaches the state machine with its name as errorType.
func (h *Handler) Handle(ctx context.Context, in rotation.Failure) (rotation.FailureOutput, error) {
	out, err := h.Steps.NotifyFailure(ctx, in)
	return out, rotation.LambdaError(err)
}
