package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/devrot"
)

// newHandler builds the function once, before the first event; a bad setting stops it with the variable named.
func newHandler(ctx context.Context) (*devrot.Due, error) {
	d, err := devrot.DueFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	d.IoT = iot.NewFromConfig(cfg)
	return &d, nil
}

// handle runs once per invocation; the scheduled event carries nothing the run uses.
func handle(d *devrot.Due) any {
	return func(ctx context.Context, _ json.RawMessage) (devrot.DueResult, error) {
		r, err := d.Run(ctx)
		if err != nil {
			slog.Error("due rotations", "taskId", r.TaskID, "error", err.Error())
			return r, err
		}
		slog.Info("due rotations", "taskId", r.TaskID, "things", len(r.Things), "jobId", r.JobID, "started", r.Started,
			"running", r.Running)
		return r, nil
	}
}
