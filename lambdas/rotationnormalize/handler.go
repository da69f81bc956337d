package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Handler normalizes the host items of one stream batch (rotation.Normalizer).
type Handler struct {
	Normalizer *rotation.Normalizer
}

// Handle processes the batch.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (rotation.NormalizeResult, error) {
	return h.Normalizer.Handle(ctx, ev)
}
