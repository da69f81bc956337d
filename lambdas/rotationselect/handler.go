package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler selects the hosts due for renewal (rotation.Selector).
type Handler struct {
	Selector *rotation.Selector
}

// Handle returns the due hosts; a step error reaches the state machine with its name as errorType.
func (h *Handler) Handle(ctx context.Context, in rotation.SelectInput) (rotation.SelectOutput, error) {
	out, err := h.Selector.Select(ctx, in)
	return out, rotation.LambdaError(err)
}
