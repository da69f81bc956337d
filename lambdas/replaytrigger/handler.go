package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/iotcert/iotcert/internal/replay"
)

// SFNAPI is what the trigger needs of Step Functions.
type SFNAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

// Handler starts replay executions.
type Handler struct {
	SFN             SFNAPI
	StateMachineArn string
	// Region is this function's region: its own events are not replayed back.
	Region string
	// Admission refuses events of unknown origin or stamped too far ahead: no execution is started for them, and
	// their count is published as the RefusedEvents metric (the replication's RefusedAlarm watches it).
	Admission replay.Admission
	// Namespace of the RefusedEvents metric; Metrics receives its embedded-metric-format line (standard output).
	Namespace string
	Metrics   io.Writer
}

// Handle starts an execution for every INSERT record of another region. It never drops a record silently: a record it
// cannot start is reported as a batch item failure, and the batch is retried from there.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	refused := 0
	defer func() {
		if refused > 0 && h.Metrics != nil {
			now := time.Now
			if h.Admission.Now != nil {
				now = h.Admission.Now
			}
			_, _ = fmt.Fprintf(h.Metrics, "%s\n", replay.RefusedEMF(h.Namespace, h.Region, refused, now()))
		}
	}()
	for _, rec := range ev.Records {
		seq := rec.Change.SequenceNumber
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
			slog.Info("not an INSERT: a duplicate delivery or an expiry, not replayed", "eventName", rec.EventName, "sequenceNumber", seq)
			continue
		}
		origin := attr(rec.Change.NewImage, "originRegion")
		if origin == h.Region && origin != "" {
			slog.Info("event of this region: not replayed back", "sequenceNumber", seq)
			continue
		}
		// A well-formed event that names no configured origin, or a time too far ahead, is refused here; a malformed
		// one is started as usual, and the state machine sends it to the dead-letter queue with its reason.
		if parsed, err := replay.ParseRecord(replay.Record{Keys: rec.Change.Keys, NewImage: rec.Change.NewImage}); err == nil {
			if err := h.Admission.Check(parsed); err != nil {
				refused++
				slog.Warn("registry event refused: not replayed", "sequenceNumber", seq, "eventId", parsed.ID, "reason", err.Error())
				continue
			}
		}
		name := executionName(rec.Change)
		input, err := json.Marshal(rec.Change)
		if err != nil {
			slog.Error("encode record", "sequenceNumber", seq, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			continue
		}
		_, err = h.SFN.StartExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(h.StateMachineArn), Name: aws.String(name), Input: aws.String(string(input)),
		})
		var exists *types.ExecutionAlreadyExists
		switch {
		case err == nil:
			slog.Info("replay started", "execution", name, "eventType", attr(rec.Change.NewImage, "eventType"))
		case errors.As(err, &exists):
			slog.Info("replay already started for this event", "execution", name)
		default:
			slog.Error("start replay", "execution", name, "sequenceNumber", seq, "error", err.Error())
			// Report this record and every later one: the mapping retries from the lowest sequence number reported.
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			return resp, nil
		}
	}
	return resp, nil
}

// executionName is the eventId; an item whose eventId cannot name an execution gets a name derived from its content
// (the state machine then sends it to the dead-letter queue as invalid), so that its copies still share one name.
func executionName(r events.DynamoDBStreamRecord) string {
	id := attr(r.NewImage, "eventId")
	if replay.ValidEventID(id) {
		return id
	}
	b, _ := json.Marshal(r.NewImage)
	sum := sha256.Sum256(b)
	return fmt.Sprintf("invalid-%s", hex.EncodeToString(sum[:20]))
}

// attr returns a string attribute of an image ("" when absent or not a string).
func attr(img map[string]events.DynamoDBAttributeValue, key string) string {
	v, ok := img[key]
	if !ok || v.DataType() != events.DataTypeString {
		return ""
	}
	return v.String()
}
