// Command thingtypecrud is the ThingTypeCrud task of the replica region's replay state machine: it applies thing-type events (THING_TYPE_EVENT: created, deprecated, undeprecated, deleted) and thing-type associations (THING_TYPE_ASSOCIATION_EVENT)
// of the primary region to this region's registry, only when the event is newer than what was applied for its entity.
//
// Environment: VERSIONS_TABLE (required: the table of applied versions), ORIGIN_REGIONS (required: the regions whose
// events are replayed, comma-separated; events of other regions are refused, and read-repair reads these regions),
// JITR_POLICY_NAME (default jitr-mr-policy),
// CA_CERTIFICATE_ID (optional: this region's registration of the device CA; certificates under it are deleted with
// their thing).
//
// Input: the stream record's "dynamodb" part as the trigger passes it, {"Keys": …, "NewImage": {"eventType": {"S": …},
// …}, "SequenceNumber": …}. Output: {"eventId", "entity", "result": "applied"|"stale"|"repaired"|"skipped", "reason"}.
// Errors: ThingTypeCrudException (retried by the state machine), ReplayNotReadyException (retried after minutes: a thing type deletes five
// minutes after its deprecation), InvalidEventException (not retried); all are caught and the
// record goes to the dead-letter queue.
package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/replay"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

func newHandler(ctx context.Context) (*Handler, error) {
	a, err := replay.NewApplierFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	return &Handler{Applier: a}, nil
}
