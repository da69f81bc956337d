package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/iotcert/iotcert/internal/replay"
)

// Request is the input of an on-demand run.
type Request struct {
	DryRun bool `json:"dryRun"`
}

// Handler runs the reconciler.
type Handler struct {
	Primary, Replica replay.ReadAPI
	Applier          *replay.Applier
	Namespace        string
	Region           string
	// Metrics receives the embedded-metric-format line (the function's standard output).
	Metrics io.Writer
	Now     func() time.Time
}

// Handle runs one reconciliation and publishes its drift count.
func (h *Handler) Handle(ctx context.Context, req Request) (replay.Report, error) {
	// Stop repairing a little before the function's deadline, to publish what was done; the next run continues.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-20*time.Second))
		defer cancel()
	}
	r := &replay.Reconciler{Primary: h.Primary, Replica: h.Replica, Applier: h.Applier, DryRun: req.DryRun, Now: h.Now}
	rep, err := r.Run(ctx)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	if _, err := fmt.Fprintf(h.Metrics, "%s\n", replay.DriftEMF(h.Namespace, h.Region, rep.Drift, h.Now())); err != nil {
		return rep, fmt.Errorf("publish the drift metric: %w", err)
	}
	return rep, nil
}
