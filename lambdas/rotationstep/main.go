// Command rotationstep runs one per-host step of the rotation workflow; the environment variable STEP says which.
// One binary serves every step (each deployed as its own function with its own role), so the steps share one build.
//
// Steps (internal/rotation's Steps):
//   - SendCSR: reads the host item, takes the host's lease for the run (HostBusy when another run holds it), checks
//     the host id and key directory against the CSR document's patterns and sends phase 1 (make key and CSR on the
//     host) with SendCommand.
//   - CommandResult: one GetCommandInvocation, no polling. A command still pending or running is the error
//     CommandInProgress, which the state machine retries after a wait; a failed, timed-out or undeliverable command
//     (an offline host) is CommandFailed with the host's error output.
//   - CheckCSR: the host's output must hold one CSR with a valid signature, subject exactly CN = the host id, no
//     alternative names, an RSA 2048-4096 or EC P-256/P-384 key; it derives the 36-character IssueCertificate
//     idempotency token from the CSR (the state language has no substring). No AWS call.
//   - Issue: IssueCertificate with that token (the SDK retries Private CA's throttling), after looking at the host
//     item for a certificate already issued for the same CSR; records the ARN with the token and counts the issuance
//     on the item #pca-issued. A run that lost the host's lease issues nothing (HostBusy).
//   - GetCertificate: one GetCertificate. RequestInProgressException is the error CertificateInProgress, retried by
//     the state machine. The certificate must name the host and carry the CSR's key.
//   - SendInstall: reads the host item, checks every value against the install document's patterns and sends
//     phase 2 (test with aws_signing_helper credential-process, then make live by one rename).
//   - Record: UpdateItem (never a whole-item put) of serial, expiry (the sample's "2006-01-02 15:04:05"), renewAt
//     (about two thirds of the lifetime, with jitter), renewShard, status ROTATED, lastRotation; removes lastError
//     and the pending issuance.
//   - NotifyFailure: sets status FAILED and lastError on the item (renewAt kept: the next run retries the host),
//     releases the run's lease and publishes "Certificate rotation failed for <host>: …" (the sample's prefix).
//   - NotifyRunFailure: publishes "Certificate rotation run failed for <hosts asked for, or the due hosts>: …" for a
//     run that failed as a whole.
//
// Environment: STEP, and what the step needs:
//   - TABLE_NAME: SendCSR, Issue, SendInstall, Record, NotifyFailure.
//   - SNS_TOPIC_ARN: NotifyFailure, NotifyRunFailure.
//   - CSR_DOCUMENT (SendCSR), INSTALL_DOCUMENT (SendInstall): the documents' names.
//   - KEY_ALGORITHM (RSA_2048 or EC_prime256v1, default RSA_2048), DEFAULT_CERT_PATH, DEFAULT_KEY_PATH,
//     DEFAULT_CACERT_PATH (default /etc/pki/iamra), DEFAULT_AWSSigningHelperPath (default /root): SendCSR,
//     SendInstall; an item's certPath, keyPath, cacertPath, signinghelperPath win over these.
//   - PCAarn: Issue, GetCertificate; SigningAlgorithm (default SHA256WITHRSA), TEMPLATE_ARN (default the
//     EndEntityClientAuthCertificate/V1 template), VALIDITY_DAYS (default 7): Issue.
//   - IAMRAProfileARN, IAMRARoleARN, IAMRATrustAnchorARN: SendInstall.
//   - RENEW_FRACTION (default 0.6667), RENEW_JITTER (default 0.0417 of the lifetime), RENEW_SHARDS (default 16;
//     must equal the selection function's): Record.
//
// Input and output: the host's rotation state, one JSON object that every step takes and returns with its own
// fields filled (rotation.State); unknown fields (results other states wrote beside it) are ignored:
//
//	{"hostID": "i-0123456789abcdef0", "commandId": "…", "output": "…", "csr": "-----BEGIN CERTIFICATE REQUEST-----…",
//	 "idempotencyToken": "…36 chars…", "certificateArn": "…", "certificate": "…PEM…", "chain": "…PEM…",
//	 "serial": "1A2B…", "notAfter": "2026-12-07T03:15:00Z", "reused": false}
//
// Except: Record returns {"hostID", "serial", "expiry", "renewAt", "status"}; NotifyFailure takes {"hostID",
// "error": {"Error", "Cause"}} (a Catch's ResultPath) and returns {"hostID", "status", "message"}.
//
// Errors carry an errorType for the state machine's Retry and Catch: HostInvalid, CommandInProgress (retry),
// CommandFailed, CSRRejected, CertificateInProgress (retry), IssuanceFailed, Throttled (retry with back-off),
// HostBusy (another run holds the host's lease: the host's execution ends quietly); any
// other error is an AWS or network failure (States.TaskFailed).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
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

// newHandler builds the step named by STEP from the environment; a missing or malformed variable stops the function
// at init, naming the variable.
func newHandler(ctx context.Context) (*Handler, error) {
	step := os.Getenv("STEP")
	var env rotation.Env
	var c rotation.Config
	switch step {
	case StepSendCSR:
		c.TableName, c.CSRDocument, c.Documents = env.Required(rotation.EnvTable), env.Required(rotation.EnvCSRDocument), env.Documents()
	case StepSendInstall:
		c.TableName, c.InstallDocument, c.Documents = env.Required(rotation.EnvTable), env.Required(rotation.EnvInstallDocument), env.Documents()
		c.ProfileARN, c.RoleARN, c.TrustAnchorARN = env.Required(rotation.EnvProfileARN), env.Required(rotation.EnvRoleARN),
			env.Required(rotation.EnvTrustAnchorARN)
		env.Match(rotation.EnvProfileARN, c.ProfileARN, rotation.ProfileARNPattern)
		env.Match(rotation.EnvRoleARN, c.RoleARN, rotation.RoleARNPattern)
		env.Match(rotation.EnvTrustAnchorARN, c.TrustAnchorARN, rotation.TrustAnchorARNPattern)
	case StepIssue:
		c.TableName, c.PCAARN = env.Required(rotation.EnvTable), env.Required(rotation.EnvPCAARN)
		c.SigningAlgorithm = env.Optional(rotation.EnvSigningAlgorithm, rotation.DefaultSigningAlgorithm)
		c.TemplateARN = env.Optional(rotation.EnvTemplateARN, rotation.DefaultTemplateARN)
		c.ValidityDays = env.Int(rotation.EnvValidityDays, rotation.DefaultValidityDays, 1, 3650)
	case StepGetCertificate:
		c.PCAARN = env.Required(rotation.EnvPCAARN)
	case StepRecord:
		c.TableName, c.Schedule = env.Required(rotation.EnvTable), env.Schedule()
		c.RenewShards = env.Int(rotation.EnvRenewShards, rotation.DefaultRenewShards, 1, rotation.MaxRenewShards)
	case StepNotifyFailure:
		c.TableName, c.TopicARN = env.Required(rotation.EnvTable), env.Required(rotation.EnvTopicARN)
	case StepNotifyRun:
		c.TopicARN = env.Required(rotation.EnvTopicARN)
	case StepCommandResult, StepCheckCSR:
	default:
		return nil, fmt.Errorf("STEP=%q is not one of %v", step, Steps)
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, maxBackoff)
	if err != nil {
		return nil, err
	}
	return &Handler{Step: step, Steps: &rotation.Steps{
		Table: dynamodb.NewFromConfig(cfg), Commands: ssm.NewFromConfig(cfg), PCA: acmpca.NewFromConfig(cfg),
		Topic: sns.NewFromConfig(cfg), Config: c,
	}}, nil
}
