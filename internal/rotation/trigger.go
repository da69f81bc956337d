package rotation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// TriggerInput is CertCheck-Trigger's event. The scheduler's payload and the sample's bare `aws lambda invoke` are
// empty; {"hostID": "i-…"} rotates one host now (the execution input is then the same object).
type TriggerInput struct {
	HostID string `json:"hostID,omitempty"`
}

// TriggerOutput names the started execution.
type TriggerOutput struct {
	ExecutionARN string `json:"executionArn"`
	StartDate    string `json:"startDate"`
}

// Trigger starts the rotation state machine (CertCheck-Trigger).
type Trigger struct {
	SFN    StarterAPI
	Topic  TopicAPI
	Config Config
	Now    func() time.Time
}

// Handle starts an execution and returns its ARN. A failure is published with the sample's prefix
// "Certificate rotation trigger failed: " and returned.
func (t *Trigger) Handle(ctx context.Context, in TriggerInput) (TriggerOutput, error) {
	out, err := t.start(ctx, in)
	if err != nil {
		// The sample's message prefix, which operators' mail filters match.
		msg := fmt.Sprintf("Certificate rotation trigger failed: %v", err)
		if nerr := Notify(ctx, t.Topic, t.Config.TopicARN, msg); nerr != nil {
			slog.ErrorContext(ctx, "notify trigger failure", "error", nerr.Error())
		}
		return TriggerOutput{}, err
	}
	return out, nil
}

func (t *Trigger) start(ctx context.Context, in TriggerInput) (TriggerOutput, error) {
	var exec SelectInput
	if in.HostID != "" {
		if err := CheckHostID(in.HostID); err != nil {
			return TriggerOutput{}, err
		}
		exec.HostID = in.HostID
	}
	input, err := json.Marshal(exec)
	if err != nil {
		return TriggerOutput{}, fmt.Errorf("encode execution input: %w", err)
	}
	now := time.Now().UTC()
	if t.Now != nil {
		now = t.Now().UTC()
	}
	name := "rotation-" + now.Format("20060102T150405Z") + "-" + randomHex()
	out, err := t.SFN.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(t.Config.StateMachineARN),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	if err != nil {
		return TriggerOutput{}, fmt.Errorf("start execution of %s: %w", t.Config.StateMachineARN, err)
	}
	arn := aws.ToString(out.ExecutionArn)
	slog.InfoContext(ctx, "rotation started", "executionArn", arn, "host", exec.HostID)
	return TriggerOutput{ExecutionARN: arn, StartDate: aws.ToTime(out.StartDate).UTC().Format(time.RFC3339)}, nil
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
