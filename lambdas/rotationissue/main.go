// Command rotationissue is the rotation step "issue": IssueCertificate with the CSR's idempotency token, after
// looking at the host item for a certificate already issued for that same CSR (a retry past Private CA's 5-minute
// token memory then issues nothing twice). It records the certificate ARN with the token on the item.
//
// Environment: TABLE_NAME, PCAarn (the CA), optional SigningAlgorithm (default SHA256WITHRSA), TEMPLATE_ARN (default
// arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1), VALIDITY_DAYS (default 7, 1 to 7 on a short-lived
// CA).
//
// Input {"hostID", "csr", "idempotencyToken"}; output adds "certificateArn" (and "reused": true when the recorded
// certificate was used).
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
		TableName:        env.Required(rotation.EnvTable),
		PCAARN:           env.Required(rotation.EnvPCAARN),
		SigningAlgorithm: env.Optional(rotation.EnvSigningAlgorithm, rotation.DefaultSigningAlgorithm),
		TemplateARN:      env.Optional(rotation.EnvTemplateARN, rotation.DefaultTemplateARN),
		ValidityDays:     env.Int(rotation.EnvValidityDays, rotation.DefaultValidityDays, 1, 3650),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Steps: &rotation.Steps{Table: dynamodb.NewFromConfig(cfg), PCA: acmpca.NewFromConfig(cfg), Config: c}}, nil
}
