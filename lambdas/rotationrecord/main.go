// Command rotationrecord is the rotation step "record": an UpdateItem (never a whole-item put) of serial, expiry (the
// sample's "2006-01-02 15:04:05"), renewAt (about two thirds of the lifetime, with jitter), renewShard, status
// ROTATED and lastRotation; lastError and the pending issuance are removed.
//
// Environment: TABLE_NAME, optional RENEW_FRACTION (default 0.6667), RENEW_JITTER (default 0.0417, a fraction of the
// lifetime), RENEW_SHARDS (default 16; must equal the selection function's).
//
// Input: the State after the phase-2 result; output {"hostID", "serial", "expiry", "renewAt", "status"}.
//
// Input and output: the host's rotation state, one JSON object that every per-host step takes and returns with its
// own fields filled (rotation.State):
//
//	{"hostID": "i-0123456789abcdef0", "commandId": "…", "output": "…", "csr": "-----BEGIN CERTIFICATE REQUEST-----…",
//	 "idempotencyToken": "…36 chars…", "certificateArn": "…", "certificate": "…PEM…", "chain": "…PEM…",
//	 "serial": "1A2B…", "notAfter": "2026-12-07T03:15:00Z", "reused": false}
//
// Errors carry an errorType for the state machine's Retry and Catch: HostInvalid, CommandInProgress (retry),
// CommandFailed, CSRRejected, CertificateInProgress (retry), IssuanceFailed, Throttled (retry with back-off); any
// other error is an AWS or network failure (States.TaskFailed).
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
	c := rotation.Config{
		TableName:   env.Required(rotation.EnvTable),
		Schedule:    env.Schedule(),
		RenewShards: env.Int(rotation.EnvRenewShards, rotation.DefaultRenewShards, 1, rotation.MaxRenewShards),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Steps: &rotation.Steps{Table: dynamodb.NewFromConfig(cfg), Config: c}}, nil
}
