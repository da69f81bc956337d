// Command reconciler compares the primary region's AWS IoT registry (things, thing types, thing groups and their
// memberships) with this region's and repairs this region: events that replay lost (registry events are best effort)
// and everything that existed before replication was deployed (the first run is the backfill). It runs on a schedule
// and on demand (aws lambda invoke --function-name <ReconcilerFunctionName> --payload '{"dryRun":true}' out.json).
//
// Environment: PRIMARY_REGION (required), VERSIONS_TABLE (required: the replay's table of applied versions),
// ORIGIN_REGIONS (required, as for ThingCrud),
// JITR_POLICY_NAME (default jitr-mr-policy), CA_CERTIFICATE_ID (optional, as for ThingCrud), RATE_PER_SECOND (AWS IoT
// calls per second in each region, default 8, under the control-plane quotas), METRIC_NAMESPACE (default
// IotMultiRegion), AWS_REGION (set by Lambda).
//
// Input: {} from the schedule, or {"dryRun": true} to count the drift without repairing. Output: the run's report,
// {"drift", "created", "updated", "deleted", "local", "superseded", "failed", "errors", "things", "thingTypes",
// "groups", "seconds"}. The drift count is also published as the metric <METRIC_NAMESPACE>/RegistryDrift (dimension
// Region) through an embedded-metric-format log line.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/replay"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

func newHandler(ctx context.Context) (*Handler, error) {
	primary := os.Getenv("PRIMARY_REGION")
	if primary == "" {
		return nil, errors.New("PRIMARY_REGION must be set")
	}
	rate := 8.0
	if v := os.Getenv("RATE_PER_SECOND"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0.1 || r > 50 {
			return nil, fmt.Errorf("RATE_PER_SECOND must be a number from 0.1 to 50, got %q", v)
		}
		rate = r
	}
	ns := os.Getenv("METRIC_NAMESPACE")
	if ns == "" {
		ns = "IotMultiRegion"
	}
	applier, err := replay.NewApplierFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 20*time.Second)
	if err != nil {
		return nil, err
	}
	// One limiter per region: the quotas are per account and region.
	local, remote := replay.NewLimiter(rate), replay.NewLimiter(rate)
	replica := iot.NewFromConfig(cfg, func(o *iot.Options) { o.APIOptions = append(o.APIOptions, local.Middleware) })
	applier.IoT = replica
	return &Handler{
		Primary: iot.NewFromConfig(cfg, func(o *iot.Options) {
			o.Region = primary
			o.APIOptions = append(o.APIOptions, remote.Middleware)
		}),
		Replica:   replica,
		Applier:   applier,
		Namespace: ns,
		Region:    cfg.Region,
		Metrics:   os.Stdout,
		Now:       time.Now,
	}, nil
}
