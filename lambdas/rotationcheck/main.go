// Command rotationcheck is the rotation step "check the CSR": the host's output must hold one CSR with a valid
// signature, subject exactly CN = the host id, no alternative names, an RSA 2048-4096 or EC P-256/P-384 key. It
// derives the 36-character IssueCertificate idempotency token from the CSR (the state language has no substring).
//
// Environment: none. It calls no AWS API.
//
// Input {"hostID", "output", …}; output {"hostID", "csr", "idempotencyToken"}.
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

	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/rotation"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the step from the environment; a missing or malformed variable stops the function at init.
func newHandler(ctx context.Context) (*Handler, error) {
	_ = ctx
	return &Handler{Steps: &rotation.Steps{}}, nil
}
