// Command crossregion runs in each replica region, subscribed to the primary region's SNS topic IoTCrossRegion: it
// republishes every message that the primary's topic rule on cmd/+/cross/region sent there on the same MQTT topic in
// its own region, through the AWS IoT data plane's Publish API (iot:Publish on the topics of TOPIC_FILTER).
//
// The primary's rule must produce the envelope of internal/crossregion: use crossregion.RuleSQL(filter, region) as
// its SQL and the SNS action's RAW message format. Loop guard: every republished message carries the MQTT 5 user
// property "iotcert-origin-region"; an envelope of a message that carries it, or that comes from this function's own
// region, is dropped.
//
// Environment:
//   - AWS_REGION (set by Lambda): the region it publishes in.
//   - TOPIC_FILTER (default "cmd/+/cross/region"): the MQTT topic filter every republished topic must match.
//   - SOURCE_TOPIC_ARN (optional, recommended): the ARN of the primary's IoTCrossRegion topic; records of any other
//     topic are refused.
//   - IOT_DATA_ENDPOINT (optional): the data-plane endpoint URL; default https://data-ats.iot.<AWS_REGION>.amazonaws.com.
//     The standard AWS_ENDPOINT_URL_IOT_DATA_PLANE overrides it (tests point it at a local server).
package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

// newHandler reads the configuration and builds the data-plane client once, before the first event.
func newHandler(ctx context.Context) (*Handler, error) {
	conf, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, time.Second)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, errors.New("no AWS credentials: the data plane's Publish must be signed")
	}
	var client aws.HTTPClient = http.DefaultClient
	if cfg.HTTPClient != nil {
		client = cfg.HTTPClient
	}
	dp := &DataPlane{
		Endpoint: conf.Endpoint, Region: conf.Region, Credentials: cfg.Credentials, HTTP: client, Signer: v4.NewSigner(),
	}
	return &Handler{Data: dp, Config: conf}, nil
}

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}
