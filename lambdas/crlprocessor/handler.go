package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler forwards a CRL to IAM Roles Anywhere (rotation.CRLProcessor).
type Handler struct {
	Processor *rotation.CRLProcessor
}

// Handle processes one S3 Object Created event.
func (h *Handler) Handle(ctx context.Context, ev events.EventBridgeEvent) (rotation.CRLResult, error) {
	return h.Processor.Handle(ctx, ev)
}
