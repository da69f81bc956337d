// Command replaytrigger reads the replica region's IoTMRProvisioning stream and starts one replay execution of the
// state machine per registry event, named after the event's eventId: Step Functions refuses a second Standard
// execution of that name, so a record delivered twice is replayed once.
//
// Environment: STATE_MACHINE_ARN (required), ORIGIN_REGIONS (required: the regions whose events are replayed,
// comma-separated; an event naming another region or none, or stamped more than two minutes ahead of this function's
// clock, is refused and counted as the metric <METRIC_NAMESPACE>/RefusedEvents), METRIC_NAMESPACE (default
// IotMultiRegion), AWS_REGION (set by Lambda: records whose originRegion is this region are not replayed back).
//
// Input: a DynamoDB Streams batch (the mapping filters INSERT records of other regions; the function checks again).
// Each execution's input is the record's "dynamodb" part, the sample's shape: {"Keys", "NewImage", "OldImage",
// "SequenceNumber", "SizeBytes", "StreamViewType", "ApproximateCreationDateTime"}.
// Output: {"batchItemFailures": [{"itemIdentifier": <sequence number>}]} for the records whose execution could not be
// started (the mapping retries from the first of them and finally sends the batch's metadata to its on-failure queue).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/replay"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

func newHandler(ctx context.Context) (*Handler, error) {
	arn := os.Getenv("STATE_MACHINE_ARN")
	if arn == "" {
		return nil, errors.New("STATE_MACHINE_ARN must be set")
	}
	origins, err := replay.ParseOrigins(os.Getenv("ORIGIN_REGIONS"))
	if err != nil {
		return nil, fmt.Errorf("ORIGIN_REGIONS: %w", err)
	}
	ns := os.Getenv("METRIC_NAMESPACE")
	if ns == "" {
		ns = "IotMultiRegion"
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{SFN: sfn.NewFromConfig(cfg), StateMachineArn: arn, Region: os.Getenv("AWS_REGION"),
		Admission: replay.Admission{Origins: origins}, Namespace: ns, Metrics: os.Stdout}, nil
}
