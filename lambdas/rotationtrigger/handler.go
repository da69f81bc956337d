package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler starts the rotation state machine (rotation.Trigger).
type Handler struct {
	Trigger *rotation.Trigger
}

// Handle starts one execution and returns its ARN.
func (h *Handler) Handle(ctx context.Context, in rotation.TriggerInput) (rotation.TriggerOutput, error) {
	return h.Trigger.Handle(ctx, in)
}
