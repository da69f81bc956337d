package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/metrics/metricstest"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

// TestMetrics: an applied event publishes ReplayApplied and the lag from its time in the primary region, the same
// event again ReplayStale, an event that can never apply ReplayDeadLettered.
func TestMetrics(t *testing.T) {
	replaytest.New(t)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rec := metricstest.Capture(t)
	ctx := context.Background()
	at := time.Now().Add(-3 * time.Second).UnixMilli()
	ev := map[string]any{"eventType": replay.ThingEvent, "eventId": "m1", "timestamp": at, "operation": "CREATED",
		"thingName": "m1", "versionNumber": int64(1), "attributes": map[string]any{}}
	for i := 0; i < 2; i++ {
		if _, err := h.Handle(ctx, replaytest.Record(ev, replaytest.PrimaryRegion)); err != nil {
			t.Fatal(err)
		}
	}
	ev["eventType"], ev["eventId"] = replay.ThingGroupEvent, "m2"
	if _, err := h.Handle(ctx, replaytest.Record(ev, replaytest.PrimaryRegion)); err == nil {
		t.Fatal("Handle(an event of another function) = nil error")
	}
	want := "ReplayApplied D,ReplayDeadLettered D,ReplayStale D,ReplicationLag D"
	if got := strings.Join(rec.Names(t), ","); got != want {
		t.Errorf("metrics = %s, want %s", got, want)
	}
	if ms := rec.Sum(t, metrics.ReplicationLag, nil); ms < 3000 || ms > 120_000 {
		t.Errorf("ReplicationLag = %v ms, want about 3000", ms)
	}
}
