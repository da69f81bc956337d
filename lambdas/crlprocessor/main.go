// Command crlprocessor is CRLProcessor (the sample's function name): a new CRL object in the CRL bucket (an S3
// "Object Created" EventBridge event) is read, checked, converted from DER to PEM, checked against IAM Roles
// Anywhere's 300,000-byte limit and given to the trust anchor: ImportCrl the first time, UpdateCrl on that same CRL
// after (the sample imported a new CRL every time). Objects not ending in .crl are skipped. Failures are published as
// "Failed to import CRL: …" (the sample's prefix) and returned, so EventBridge's retry policy applies.
//
// Environment: CRL_BUCKET (events naming another bucket are refused), IAMRATrustAnchorARN, SNS_TOPIC_ARN, optional
// CRL_NAME (default "CRL", the sample's name).
//
// Input: the EventBridge event {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name"},
// "object": {"key", "size"}}}. Output: {"action": "imported"|"updated"|"skipped", "crlId", "bytes"}.
package main

import (
	"context"
	"time"

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
		Objects: s3.NewFromConfig(cfg), CRLs: rolesanywhere.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: c,
	}}, nil
}
