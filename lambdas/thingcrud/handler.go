package main

import (
	"context"
	"errors"
	"time"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/replay"
)

// Handler applies one registry event.
type Handler struct {
	Applier *replay.Applier
}

// Handle applies the record's event, or returns the error the state machine retries or catches.
func (h *Handler) Handle(ctx context.Context, rec replay.Record) (replay.Outcome, error) {
	out, err := replay.ThingCrud.Handle(ctx, h.Applier, rec)
	var invalid *replay.InvalidEventException
	var at time.Time // the event's time in the primary region, for the replication lag
	if ev, perr := replay.ParseRecord(rec); perr == nil {
		at = time.UnixMilli(ev.Timestamp)
	}
	metrics.Replayed(metrics.CapD, out.Result, errors.As(err, &invalid), at)
	return out, err
}
