// Command rotationnotify is the rotation step "notify a failure": it sets status FAILED and lastError on the host
// item (renewAt is kept, so the next run retries the host) and publishes "Certificate rotation failed for <host>: …"
// (the sample's prefix) to the failure topic.
//
// Environment: TABLE_NAME, SNS_TOPIC_ARN.
//
// Input {"hostID", "error": {"Error", "Cause"}} (a Catch with ResultPath $.error); output {"hostID", "status",
// "message"}.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/rotation"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// maxBackoff bounds the SDK's back-off between attempts; the state machine retries a step that is still throttled.
const maxBackoff = 2 * time.Second

// newHandler builds the step from the environment; a missing or malformed variable stops the function at init.
func newHandler(ctx context.Context) (*Handler, error) {
	var env rotation.Env
	c := rotation.Config{TableName: env.Required(rotation.EnvTable), TopicARN: env.Required(rotation.EnvTopicARN)}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Steps: &rotation.Steps{Table: dynamodb.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: c}}, nil
}
