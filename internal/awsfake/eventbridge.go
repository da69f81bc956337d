package awsfake

import (
	"encoding/json"
	"slices"
	"sync"
)

// EventEntry is an event accepted by PutEvents.
type EventEntry struct {
	Source       string
	DetailType   string
	Detail       string
	EventBusName string // "default" when the request named none
	Resources    []string
}

// EventBridge is a fake Amazon EventBridge that records the events put on any bus.
type EventBridge struct {
	mu      sync.Mutex
	entries []EventEntry
}

func newEventBridge() *EventBridge { return &EventBridge{} }

// Entries returns the accepted events, oldest first.
func (f *EventBridge) Entries() []EventEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.entries)
	for i := range out {
		out[i].Resources = slices.Clone(out[i].Resources)
	}
	return out
}

func (f *EventBridge) handler(op string) jsonHandler {
	if op == "PutEvents" {
		return f.putEvents
	}
	return nil
}

func (f *EventBridge) putEvents(body []byte) (any, *apiError) {
	var in struct {
		Entries []struct {
			Source       string
			DetailType   string
			Detail       string
			EventBusName string
			Resources    []string
		}
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if len(in.Entries) < 1 || len(in.Entries) > 10 {
		return nil, errorf(400, "ValidationException", "Entries must hold 1 to 10 entries, got %d", len(in.Entries))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	failed := 0
	results := make([]map[string]string, 0, len(in.Entries))
	for _, e := range in.Entries {
		code, msg := "", ""
		var detail map[string]any
		switch {
		case e.Source == "":
			code, msg = "InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."
		case e.DetailType == "":
			code, msg = "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument."
		case e.Detail == "":
			code, msg = "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."
		case json.Unmarshal([]byte(e.Detail), &detail) != nil:
			code, msg = "MalformedDetail", "Detail is malformed."
		}
		if code != "" {
			failed++
			results = append(results, map[string]string{"ErrorCode": code, "ErrorMessage": msg})
			continue
		}
		bus := e.EventBusName
		if bus == "" {
			bus = "default"
		}
		f.entries = append(f.entries, EventEntry{Source: e.Source, DetailType: e.DetailType, Detail: e.Detail,
			EventBusName: bus, Resources: slices.Clone(e.Resources)})
		results = append(results, map[string]string{"EventId": newUUID()})
	}
	return map[string]any{"FailedEntryCount": failed, "Entries": results}, nil
}
