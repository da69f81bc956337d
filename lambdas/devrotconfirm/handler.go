package main

import (
	"context"
	"encoding/json"

	"github.com/iotcert/iotcert/internal/devrot"
)

// newHandler builds the function once, before the first event.
func newHandler(ctx context.Context) (*devrot.Completion, error) { return devrot.NewCompletion(ctx) }

// handle serves a confirmation, a job execution event or a scheduled sweep (told apart by shape).
func handle(h *devrot.Completion) any {
	return func(ctx context.Context, ev json.RawMessage) (devrot.Result, error) { return h.Handle(ctx, ev) }
}
