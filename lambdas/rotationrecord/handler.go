package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler records the rotation (rotation.Steps.Record).
type Handler struct {
	Steps *rotation.Steps
}

// Handle runs the step; a step error reaches the state machine with its name as errorType.
func (h *Handler) Handle(ctx context.Context, in rotation.State) (rotation.RecordOutput, error) {
	out, err := h.Steps.Record(ctx, in)
	return out, rotation.LambdaError(err)
}
