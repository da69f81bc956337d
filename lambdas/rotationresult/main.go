// Command rotationresult is the rotation step "read the command's result", after phase 1 and after phase 2: one
// GetCommandInvocation, no polling. A command still running is the error CommandInProgress, which the state machine
// retries after a wait; a failed, timed-out or undeliverable command (an offline host) is CommandFailed with the
// host's error output.
//
// Environment: none.
//
// Input {"hostID", "commandId", …}; output the same State with "output" = the command's standard output.
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

	"github.com/aws/aws-sdk-go-v2/service/ssm"

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
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Steps: &rotation.Steps{Commands: ssm.NewFromConfig(cfg)}}, nil
}
