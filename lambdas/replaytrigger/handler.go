package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

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
}

// Handle starts an execution for every INSERT record of another region. It never drops a record silently: a record it
// cannot start is reported as a batch item failure, and the batch is retried from there.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
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
