package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler reads the issued certificate (rotation.Steps.GetCertificate).
type Handler struct {
	Steps *rotation.Steps
}

// Handle runs the step; a step error reaches the state machine with its name as errorType.
func (h *Handler) Handle(ctx context.Context, in rotation.State) (rotation.State, error) {
	out, err := h.Steps.GetCertificate(ctx, in)
	return out, rotation.LambdaError(err)
}
