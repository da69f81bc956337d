// Command rotationnormalize reads the host inventory's DynamoDB stream (NEW_IMAGE) and brings every host item into
// the rotation schedule, whoever wrote it (rotation.Normalizer): an item written the sample's way, with hostID and
// paths but no renewAt or renewShard, gets both (due at the next run); an item whose id or paths break the patterns
// gets status INVALID and lastError, and one notice on the failure topic ("Certificate rotation cannot rotate
// host …"). No table scan: each write is one stream record.
//
// Environment: TABLE_NAME, SNS_TOPIC_ARN, RENEW_SHARDS (default 16; must equal the selection's).
// Input: a DynamoDB stream batch. Output: {"normalized": n, "invalid": n}. An error fails the batch (retried by the
// event source, then sent to the stack's dead-letter queue).
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

// newHandler builds the normalizer from the environment.
func newHandler(ctx context.Context) (*Handler, error) {
	var env rotation.Env
	c := rotation.Config{
		TableName:   env.Required(rotation.EnvTable),
		TopicARN:    env.Required(rotation.EnvTopicARN),
		RenewShards: env.Int(rotation.EnvRenewShards, rotation.DefaultRenewShards, 1, rotation.MaxRenewShards),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{Normalizer: &rotation.Normalizer{Table: dynamodb.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: c}}, nil
}
