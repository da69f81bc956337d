package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/metrics/metricstest"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

// TestMetrics: an allowed token publishes nothing; a malformed header and an unknown token publish Refused
// Unauthorized, a revoked token Refused Revoked. No token value reaches a metric.
func TestMetrics(t *testing.T) {
	env := vendtest.New(t)
	id, token := env.AddToken(t, "", time.Time{}, false)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rec := metricstest.Capture(t)
	for _, header := range []string{"DeviceToken " + token, "Bearer x", "DeviceToken " + strings.Repeat("A", len(token))} {
		if _, err := h.Handle(context.Background(), event(t, header)); err != nil && err != errUnauthorized {
			t.Fatalf("Handle(%.12s…) error = %v", header, err)
		}
	}
	putTokenState(t, env, id, vending.StatusRevoked)
	if _, err := h.Handle(context.Background(), event(t, "DeviceToken "+token)); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rec.Names(t), ","), "Refused C Revoked,Refused C Unauthorized"; got != want {
		t.Errorf("metrics = %s, want %s", got, want)
	}
	if n := rec.Sum(t, "Refused", map[string]string{"Reason": "Unauthorized"}); n != 2 {
		t.Errorf("Refused Unauthorized = %v, want 2", n)
	}
	for _, ev := range rec.Events(t) {
		for _, v := range ev.Dimensions {
			if v == token || v == id {
				t.Errorf("a metric dimension holds the token or its id: %v", ev.Dimensions)
			}
		}
	}
}
