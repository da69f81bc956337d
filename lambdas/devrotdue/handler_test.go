package main

import (
	"context"
	"strings"
	"testing"
)

// The function refuses to start on a bad configuration and says which variable is wrong.
func TestNewHandlerNamesTheBadVariable(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("JOB_TEMPLATE_ARN", "arn:aws:iot:us-east-1:123456789012:jobtemplate/iotcert-rotate-certificate")
	t.Setenv("ROLLOUT_PER_MINUTE", "100")
	t.Setenv("ABORT_PERCENT", "10")
	t.Setenv("ABORT_MIN_EXECUTED", "20")
	t.Setenv("TIMEOUT_MINUTES", "0")
	if _, err := newHandler(context.Background()); err == nil || !strings.Contains(err.Error(), "TIMEOUT_MINUTES") {
		t.Fatalf("newHandler() error = %v, want one naming TIMEOUT_MINUTES", err)
	}
	t.Setenv("TIMEOUT_MINUTES", "60")
	h, err := newHandler(context.Background())
	if err != nil || h == nil || h.IoT == nil || h.Options.TimeoutMinutes != 60 {
		t.Fatalf("newHandler() = %+v, %v", h, err)
	}
	if handle(h) == nil {
		t.Fatal("handle() = nil")
	}
}
