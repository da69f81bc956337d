// Command rotationtrigger is CertCheck-Trigger (the sample's function name): the schedule CertCheckSchedule and the
// sample's `aws lambda invoke --function-name CertCheck-Trigger …` both call it, and it starts the rotation state
// machine and returns the execution's ARN. It does no work itself.
//
// Environment: STATE_MACHINE_ARN, SNS_TOPIC_ARN (failures are published as "Certificate rotation trigger failed: …").
//
// Environment note: the state machine is defined after its functions, so the stack adds STATE_MACHINE_ARN to this
// function's environment once the state machine exists (the trigger is not one of the workflow's tasks: no cycle).
//
// Input: {} (the scheduler's payload and a bare invoke), or {"hostID": "i-…"} to rotate one host now; the execution
// input is then {"hostID": "i-…"}, else {}.
// Output: {"executionArn": "arn:aws:states:…:execution:…", "startDate": "2026-11-30T03:15:00Z"}.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/rotation"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the trigger from the environment.
func newHandler(ctx context.Context) (*Handler, error) {
	var env rotation.Env
	c := rotation.Config{StateMachineARN: env.Required(rotation.EnvStateMachineARN), TopicARN: env.Required(rotation.EnvTopicARN)}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{Trigger: &rotation.Trigger{SFN: sfn.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: c}}, nil
}
