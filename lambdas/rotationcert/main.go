// Command rotationcert is the rotation step "get the certificate": one GetCertificate. Private CA answers
// RequestInProgressException until it has signed; that is the error CertificateInProgress, which the state machine
// retries after a wait (no function sleeps). The certificate must name the host and carry the CSR's key. The
// workflow reads the certificate itself, so a missed or failed issuance event cannot strand a host.
//
// Environment: PCAarn.
//
// Input {"hostID", "csr", "certificateArn", …}; output adds "certificate", "chain" (PEM), "serial" (upper-case hex)
// and "notAfter" (RFC 3339).
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

	"github.com/aws/aws-sdk-go-v2/service/acmpca"

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
	c := rotation.Config{PCAARN: env.Required(rotation.EnvPCAARN)}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Steps: &rotation.Steps{PCA: acmpca.NewFromConfig(cfg), Config: c}}, nil
}
