package main

import (
	"context"
	"strings"
	"testing"
)

// The function refuses to start on a bad configuration and says which variable is wrong.
func TestNewHandlerNamesTheBadVariable(t *testing.T) {
	t.Setenv("TABLE_NAME", "rotations")
	t.Setenv("JOB_TEMPLATE_ARN", "arn:aws:iot:us-east-1:123456789012:jobtemplate/firmware")
	t.Setenv("AWS_REGION", "us-east-1")
	if _, err := newHandler(context.Background()); err == nil || !strings.Contains(err.Error(), "JOB_TEMPLATE_ARN") {
		t.Fatalf("newHandler() error = %v, want one naming JOB_TEMPLATE_ARN", err)
	}
	t.Setenv("JOB_TEMPLATE_ARN", "arn:aws:iot:us-east-1:123456789012:jobtemplate/iotcert-rotate-certificate")
	h, err := newHandler(context.Background())
	if err != nil || h == nil {
		t.Fatalf("newHandler() = %v, %v", h, err)
	}
	if handle(h) == nil {
		t.Fatal("handle() = nil")
	}
}
