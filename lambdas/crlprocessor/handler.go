package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler forwards a CRL to IAM Roles Anywhere (rotation.CRLProcessor).
type Handler struct {
	Processor *rotation.CRLProcessor
}

// Handle processes one S3 Object Created event. A refused CRL is counted (Refused, capability E, with the refusal's
// reason); failures are not refusals: they are returned and retried.
func (h *Handler) Handle(ctx context.Context, ev events.EventBridgeEvent) (rotation.CRLResult, error) {
	res, err := h.Processor.Handle(ctx, ev)
	if err == nil && res.Action == "refused" {
		metrics.Refuse(metrics.CapE, res.Reason)
	}
	return res, err
}
