// Command rotationinstall is the rotation step "install and test on the host": it reads the host item, checks every
// value against the install document's patterns and sends phase 2, which tests the new pair with aws_signing_helper
// credential-process and makes it live only if that returns credentials.
//
// Environment: TABLE_NAME, INSTALL_DOCUMENT (document name), IAMRAProfileARN, IAMRARoleARN, IAMRATrustAnchorARN,
// optional DEFAULT_CERT_PATH, DEFAULT_KEY_PATH, DEFAULT_CACERT_PATH (default /etc/pki/iamra),
// DEFAULT_AWSSigningHelperPath (default /root); the item's certPath, keyPath, cacertPath, signinghelperPath win.
//
// Input: the State after rotationcert; output: the same State with the phase-2 "commandId".
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
	var env rotation.Env
	c := rotation.Config{
		TableName:       env.Required(rotation.EnvTable),
		InstallDocument: env.Required(rotation.EnvInstallDocument),
		ProfileARN:      env.Required(rotation.EnvProfileARN),
		RoleARN:         env.Required(rotation.EnvRoleARN),
		TrustAnchorARN:  env.Required(rotation.EnvTrustAnchorARN),
		Documents:       env.Documents(),
	}
	env.Match(rotation.EnvProfileARN, c.ProfileARN, rotation.ProfileARNPattern)
	env.Match(rotation.EnvRoleARN, c.RoleARN, rotation.RoleARNPattern)
	env.Match(rotation.EnvTrustAnchorARN, c.TrustAnchorARN, rotation.TrustAnchorARNPattern)
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Steps: &rotation.Steps{Table: dynamodb.NewFromConfig(cfg), Commands: ssm.NewFromConfig(cfg), Config: c}}, nil
}
