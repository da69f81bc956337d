package main

import (
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/metrics/metricstest"
)

// TestMetrics: a created certificate publishes CertificatesIssued once; a redeploy that keeps it publishes nothing.
func TestMetrics(t *testing.T) {
	rec := metricstest.Capture(t)
	f := setup(t)
	resp := f.mustHandle(f.event("create.json", ""))
	f.mustHandle(f.event("update-unchanged.json", resp.PhysicalResourceID))
	if got := strings.Join(rec.Names(t), ","); got != "CertificatesIssued B" {
		t.Errorf("metrics = %s, want CertificatesIssued B", got)
	}
	if n := rec.Sum(t, "CertificatesIssued", nil); n != 1 {
		t.Errorf("CertificatesIssued = %v, want 1", n)
	}
}
