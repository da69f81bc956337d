// Command rotationselect is the rotation step "select due hosts" (the state SelectDueHosts): a Query per shard of
// the table's renewAt index (partition key renewShard, a number from 0 to RENEW_SHARDS-1; sort key renewAt, RFC 3339
// UTC), following every page, never a Scan. It writes the hosts to the manifest bucket as a JSON array of
// {"hostID"} for the distributed Map's ItemReader. Hosts named in the input are checked and listed as they are
// (rotate now). It also reports the CA certificate's days left, for the CA expiry alarm.
//
// Environment: TABLE_NAME, MANIFEST_BUCKET, optional PCAarn (for caDaysLeft; the role then needs
// acm-pca:DescribeCertificateAuthority on the CA), RENEW_SHARDS (default 16; must equal the Record step's),
// MAX_HOSTS (default 5000 per run: the rest stay due for the next run). The role needs s3:PutObject on
// manifests/* and dynamodb:Query on the table's renewAt-index.
//
// Input: {} (scheduled run) or {"hostID": "i-…"} (rotate now; {"hostIDs": [...]} is accepted too).
// Output: {"count": n, "bucket": "…", "key": "manifests/….json", "overdue": n, "truncated": false,
// "caDaysLeft": n (absent when the CA could not be read), "itemsRead": n}.
// Error HostInvalid for a bad host id in the input.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
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
		ManifestBucket: env.Required(rotation.EnvManifestBucket),
		PCAARN:         env.Optional(rotation.EnvPCAARN, ""),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{Selector: &rotation.Selector{
		Table: dynamodb.NewFromConfig(cfg), Objects: s3.NewFromConfig(cfg), CA: acmpca.NewFromConfig(cfg), Config: c,
	}}, nil
}
