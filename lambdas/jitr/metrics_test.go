package main

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/metrics/metricstest"
)

// TestMetrics: an activation publishes CertificatesIssued and JITRLatency (from the event's timestamp), a refusal
// Refused with its fixed reason, a duplicate event nothing; every line is checked against the format and catalogue.
func TestMetrics(t *testing.T) {
	rec := metricstest.Capture(t)
	f := setup(t)
	registered := time.Now().Add(-1500 * time.Millisecond)
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-metrics"), nil))
	ev.Timestamp = registered.UnixMilli()
	for i := 0; i < 2; i++ { // the second copy finds the certificate active: not counted again
		if _, err := f.h.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle() error = %v", err)
		}
	}
	if got := strings.Join(rec.Names(t), ","); got != "CertificatesIssued D,JITRLatency D" {
		t.Errorf("metrics = %s, want CertificatesIssued D,JITRLatency D", got)
	}
	if n := rec.Sum(t, metrics.CertificatesIssued, nil); n != 1 {
		t.Errorf("CertificatesIssued = %v, want 1", n)
	}
	if ms := rec.Sum(t, metrics.JITRLatency, nil); ms < 1500 || ms > 60_000 {
		t.Errorf("JITRLatency = %v ms, want about 1500", ms)
	}

	rec.Reset()
	other := newTestCA(t, pkix.Name{CommonName: "Elsewhere"})
	bad := f.forced(other.issue(t, deviceTemplate("thing-x"), nil))
	var refused *RefusedError
	if _, err := f.h.Handle(context.Background(), bad); !errors.As(err, &refused) {
		t.Fatalf("Handle(other issuer) error = %v, want a RefusedError", err)
	}
	if got := strings.Join(rec.Names(t), ","); got != "Refused D UntrustedIssuer" {
		t.Errorf("metrics = %s, want Refused D UntrustedIssuer", got)
	}
}

func TestRefusalReasons(t *testing.T) {
	for reason, want := range map[string]metrics.Reason{
		`issuer "CN=x" is not the CA "CN=y"`:      metrics.ReasonUntrustedIssuer,
		"not signed by the CA's key: bad":         metrics.ReasonUntrustedIssuer,
		"not valid now (2026-01-01T00:00:00Z): …": metrics.ReasonValidity,
		"the CA certificate is not valid now":     metrics.ReasonValidity,
		"subject CN: must not be empty":           metrics.ReasonInvalidName,
		`thing name "admin" does not match x`:     metrics.ReasonInvalidName,
		"is a CA certificate":                     metrics.ReasonInvalidCertificate,
		"RSA key of 1024 bits":                    metrics.ReasonInvalidCertificate,
	} {
		if got := refusalReason(reason); got != want {
			t.Errorf("refusalReason(%q) = %s, want %s", reason, got, want)
		}
	}
}
