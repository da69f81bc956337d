package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// Handler republishes cross-region messages.
type Handler struct{}

// Handle republishes the messages of one SNS delivery.
func (h *Handler) Handle(ctx context.Context, ev events.SNSEvent) error {
	return fmt.Errorf("crossregion: %d records: republishing is not available in this build", len(ev.Records))
}
