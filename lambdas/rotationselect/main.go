// Command rotationselect is the rotation step "select due hosts": a Query per shard of the table's renewAt index
// (partition key renewShard, a number from 0 to RENEW_SHARDS-1; sort key renewAt, RFC 3339 UTC), following every
// page, never a Scan. Hosts named in the input are checked and returned as they are (rotate now).
//
// Environment: TABLE_NAME, optional RENEW_SHARDS (default 16; must equal rotationrecord's), MAX_HOSTS (default 5000:
// the rest stay due for the next run), MANIFEST_BUCKET (when set, the hosts are written to
// s3://<bucket>/manifests/<time>.json as a JSON array of {"hostID"} for a distributed Map's ItemReader, and "hosts"
// is empty).
//
// Input: {} or {"hostIDs": ["i-…", …]}.
// Output: {"hosts": [{"hostID": "i-…"}, …], "count": n, "truncated": false, "itemsRead": n,
// "manifest": {"bucket", "key"} (with MANIFEST_BUCKET only)}. Error HostInvalid for a bad id in the input.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/rotation"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the selector from the environment.
func newHandler(ctx context.Context) (*Handler, error) {
	var env rotation.Env
	c := rotation.Config{
		TableName:      env.Required(rotation.EnvTable),
		RenewShards:    env.Int(rotation.EnvRenewShards, rotation.DefaultRenewShards, 1, rotation.MaxRenewShards),
		MaxHosts:       env.Int(rotation.EnvMaxHosts, rotation.DefaultMaxHosts, 1, 1000000),
		ManifestBucket: env.Optional(rotation.EnvManifestBucket, ""),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{Selector: &rotation.Selector{Table: dynamodb.NewFromConfig(cfg), Objects: s3.NewFromConfig(cfg), Config: c}}, nil
}
