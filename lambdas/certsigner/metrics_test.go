package main

import (
	"context"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/metrics/metricstest"
)

// TestMetrics: an issued certificate publishes CertificatesIssued, a CSR that does not verify Refused InvalidCSR.
func TestMetrics(t *testing.T) {
	rec := metricstest.Capture(t)
	_, h, _ := setup(t)
	if _, err := h.Handle(context.Background(), event(t, "signer-create.json")); err != nil {
		t.Fatalf("Handle(create) = %v", err)
	}
	if _, err := h.Handle(context.Background(), event(t, "signer-bad-signature.json")); err == nil {
		t.Fatal("Handle(bad signature) = nil error")
	}
	if got, want := strings.Join(rec.Names(t), ","), "CertificatesIssued A,Refused A InvalidCSR"; got != want {
		t.Errorf("metrics = %s, want %s", got, want)
	}
}
