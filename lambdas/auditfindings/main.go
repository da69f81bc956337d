// Command auditfindings counts the certificates Device Defender's last scheduled audit found expiring and publishes
// them as the metrics CertificatesExpiring30d and CertificatesExpiring7d. It runs on each audit notification.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

func newHandler(ctx context.Context) (*Handler, error) {
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{IoT: iot.NewFromConfig(cfg), ScheduledAudit: os.Getenv("SCHEDULED_AUDIT_NAME")}, nil
}

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}
