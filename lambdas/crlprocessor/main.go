// Command crlprocessor is CRLProcessor (the sample's function name): a new CRL object in the CRL bucket (an S3
// "Object Created" EventBridge event) is read, converted from DER to PEM, checked against IAM Roles Anywhere's
// 300,000-byte limit, and accepted only when our CA signed it, its CRL number is greater than the installed CRL's and
// its nextUpdate is in the future. It is then given to the trust anchor under a lock in the CRL table: ImportCrl the
// first time, UpdateCrl on that same CRL after, so the trust anchor holds exactly one CRL however many deliveries
// overlap (rotation.CRLProcessor says how). Objects not ending in .crl are skipped. Failures are published as "Failed
// to import CRL: …" (the sample's prefix) and returned, so EventBridge's retry policy applies; refusals are published
// and logged with "event": "CRLRefused" (the stack's alarm counts them) and not retried.
//
// Environment: CRL_BUCKET (events naming another bucket are refused), IAMRATrustAnchorARN, SNS_TOPIC_ARN, PCAarn
// (the CA whose certificate must sign each CRL), CRL_TABLE, optional CRL_NAME (default "CRL", the sample's name).
//
// Input: the EventBridge event {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name"},
// "object": {"key", "size"}}}. Output: {"action": "imported"|"updated"|"skipped"|"refused", "crlId", "bytes",
// "number", "removed"}.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/rotation"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the processor from the environment.
func newHandler(ctx context.Context) (*Handler, error) {
	var env rotation.Env
	c := rotation.Config{
		CRLBucket:      env.Required(rotation.EnvCRLBucket),
		TrustAnchorARN: env.Required(rotation.EnvTrustAnchorARN),
		TopicARN:       env.Required(rotation.EnvTopicARN),
		PCAARN:         env.Required(rotation.EnvPCAARN),
		CRLTable:       env.Required(rotation.EnvCRLTable),
		CRLName:        env.Optional(rotation.EnvCRLName, rotation.DefaultCRLName),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{Processor: &rotation.CRLProcessor{
		Objects: s3.NewFromConfig(cfg), CRLs: rolesanywhere.NewFromConfig(cfg), CA: acmpca.NewFromConfig(cfg),
		State: dynamodb.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: c,
	}}, nil
}
