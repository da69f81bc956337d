// Command jitr is the Just-in-Time Registration function of the multi-region stacks: AWS IoT's topic rule on
// $aws/events/certificates/registered/<caCertificateId> invokes it asynchronously for every device certificate
// auto-registered under the stack's CA (and again on every connect while that certificate is PENDING_ACTIVATION).
//
// Environment:
//   - CA_CERTIFICATE_ID (required): the id of the CA certificate registered in this region. Events of any other CA
//     are ignored, and device certificates must be signed by this CA's key.
//   - POLICY_NAME (default "jitr-mr-policy"): the AWS IoT policy attached to every registered certificate; the stack
//     defines it.
//   - THING_NAME_PATTERN (optional): a Go regular expression the thing name (the certificate's subject CN) must match
//     in full, besides AWS IoT's thing-name rules; empty allows every valid thing name.
//   - MIN_RSA_BITS (default 2048): the smallest RSA device key accepted. EC keys must be P-256 or larger.
//
// AWS_ENDPOINT_URL_IOT (standard SDK variable) points the IoT client elsewhere, e.g. at a local server in tests.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

// maxBackoff between SDK retries: the function has 30 s, and AWS resends the event on the device's next connect.
const maxBackoff = 2 * time.Second

// newHandler reads the configuration and builds the IoT client once, before the first event.
func newHandler(ctx context.Context) (*Handler, error) {
	conf, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{IoT: iot.NewFromConfig(cfg), Config: conf, Now: time.Now}, nil
}

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}
