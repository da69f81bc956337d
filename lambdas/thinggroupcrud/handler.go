package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/replay"
)

// Handler applies one registry event.
type Handler struct {
	Applier *replay.Applier
}

// Handle applies the record's event, or returns the error the state machine retries or catches.
func (h *Handler) Handle(ctx context.Context, rec replay.Record) (replay.Outcome, error) {
	return replay.ThingGroupCrud.Handle(ctx, h.Applier, rec)
}
