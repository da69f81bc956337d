package main

import (
	"context"
	"errors"
	"testing"

	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

func TestHandle(t *testing.T) {
	env := replaytest.New(t) // sets VERSIONS_TABLE and points the SDK at the fakes
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := map[string]any{"eventType": replay.ThingTypeEvent, "eventId": "e1", "timestamp": int64(1000), "operation": "CREATED", "thingTypeName": "sensor", "isDeprecated": false, "description": "temperature", "searchableAttributes": []any{"site"}}
	out, err := h.Handle(ctx, replaytest.Record(good, replaytest.PrimaryRegion))
	if err != nil || out.Result != "applied" {
		t.Fatalf("Handle = %+v, %v, want applied", out, err)
	}
	if names := env.Replica.IoT.ThingTypeNames(); len(names) != 1 || names[0] != "sensor" {
		t.Errorf("thing types = %v, want [sensor]", names)
	}
	out, err = h.Handle(ctx, replaytest.Record(good, replaytest.PrimaryRegion))
	if err != nil || out.Result != "stale" {
		t.Errorf("Handle of the same event again = %+v, %v, want stale", out, err)
	}

	// An event for another function is refused without retry (the state machine routes by type).
	other := map[string]any{}
	for k, v := range good {
		other[k] = v
	}
	other["eventType"] = replay.ThingEvent
	other["eventId"] = "e2"
	var inv *replay.InvalidEventException
	if _, err := h.Handle(ctx, replaytest.Record(other, replaytest.PrimaryRegion)); !errors.As(err, &inv) {
		t.Errorf("Handle of a %s = %v, want InvalidEventException", replay.ThingEvent, err)
	}
}

func TestNewHandlerNeedsTable(t *testing.T) {
	t.Setenv("VERSIONS_TABLE", "")
	if _, err := newHandler(context.Background()); err == nil {
		t.Error("newHandler without VERSIONS_TABLE succeeded")
	}
}
