// Command auditconfig is the onEvent Lambda of the Custom::AuditConfiguration resource: it turns on the Device
// Defender audit checks the operations stack needs in the account's shared audit configuration, records what it
// changed, and restores exactly that on delete.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

// maxBackoff between retries: a custom resource has minutes to wait out a throttled control plane.
const maxBackoff = 10 * time.Second

func newHandler(ctx context.Context) (*Handler, error) {
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{IoT: iot.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg)}, nil
}

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}
