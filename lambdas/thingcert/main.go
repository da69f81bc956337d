// Command thingcert is the onEvent Lambda of the Custom::ThingCertificate resource: it issues the certificate
// of one thing from a key made in memory, keeps the key in Secrets Manager, and deletes the certificate when
// the resource goes away.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

// maxBackoff between retries: a custom resource has minutes, so it can wait out a throttled control plane.
const maxBackoff = 10 * time.Second

// newHandler builds the SDK clients once, from the environment (AWS_ENDPOINT_URL_<SERVICE> included).
func newHandler(ctx context.Context) (*Handler, error) {
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{IoT: iot.NewFromConfig(cfg), Secrets: secretsmanager.NewFromConfig(cfg)}, nil
}

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}
