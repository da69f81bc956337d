// Command crossregion runs in each replica region, subscribed to the primary region's SNS topic IoTCrossRegion: it
// republishes every message that the primary's topic rule on cmd/+/cross/region sent there on the same MQTT topic in
// its own region, through the AWS IoT data plane's Publish API.
//
// Environment:
//   - AWS_REGION (set by Lambda): the region it publishes in; an envelope from this same region is refused.
//   - TOPIC_FILTER (default "cmd/+/cross/region"): the MQTT topic filter a republished topic must match.
//   - IOT_DATA_ENDPOINT (optional): the data-plane endpoint, e.g. "https://data-ats.iot.us-east-1.amazonaws.com";
//     default: that address for AWS_REGION. The standard AWS_ENDPOINT_URL_IOT_DATA_PLANE overrides both.
package main

import (
	"context"
	"time"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

const maxBackoff = 2 * time.Second

func newHandler(ctx context.Context) (*Handler, error) {
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	_ = cfg
	return &Handler{}, nil
}

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}
