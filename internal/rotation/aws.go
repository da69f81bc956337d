package rotation

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// Narrow interfaces: only the SDK calls the steps make.
type (
	// TableAPI reads and updates the host inventory.
	TableAPI interface {
		GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
		UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
		Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	}
	// CommandAPI runs the documents on hosts.
	CommandAPI interface {
		SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
		GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	}
	// PCAAPI issues and reads certificates.
	PCAAPI interface {
		IssueCertificate(context.Context, *acmpca.IssueCertificateInput, ...func(*acmpca.Options)) (*acmpca.IssueCertificateOutput, error)
		GetCertificate(context.Context, *acmpca.GetCertificateInput, ...func(*acmpca.Options)) (*acmpca.GetCertificateOutput, error)
	}
	// TopicAPI publishes failure notices.
	TopicAPI interface {
		Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
	}
	// StarterAPI starts the state machine.
	StarterAPI interface {
		StartExecution(context.Context, *sfn.StartExecutionInput, ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	}
	// ObjectAPI reads CRL objects and writes host manifests.
	ObjectAPI interface {
		GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
		PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	}
	// CRLAPI keeps the trust anchor's CRL in IAM Roles Anywhere.
	CRLAPI interface {
		ListCrls(context.Context, *rolesanywhere.ListCrlsInput, ...func(*rolesanywhere.Options)) (*rolesanywhere.ListCrlsOutput, error)
		ImportCrl(context.Context, *rolesanywhere.ImportCrlInput, ...func(*rolesanywhere.Options)) (*rolesanywhere.ImportCrlOutput, error)
		UpdateCrl(context.Context, *rolesanywhere.UpdateCrlInput, ...func(*rolesanywhere.Options)) (*rolesanywhere.UpdateCrlOutput, error)
		DeleteCrl(context.Context, *rolesanywhere.DeleteCrlInput, ...func(*rolesanywhere.Options)) (*rolesanywhere.DeleteCrlOutput, error)
	}
	// CACertAPI reads the CA's own certificate, which every CRL must be signed with.
	CACertAPI interface {
		GetCertificateAuthorityCertificate(context.Context, *acmpca.GetCertificateAuthorityCertificateInput, ...func(*acmpca.Options)) (*acmpca.GetCertificateAuthorityCertificateOutput, error)
	}
	// CRLStateAPI keeps each trust anchor's CRL record and lock.
	CRLStateAPI interface {
		GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
		UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	}
)

var throttleCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true, "RequestLimitExceeded": true,
	"ProvisionedThroughputExceededException": true, "RateExceeded": true, "SlowDown": true,
}

// errorCode is the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// classify names an AWS error still throttled after the SDK's retries, so the state machine backs off and retries
// it; other errors pass unchanged. err already says what failed.
func classify(err error) error {
	if throttleCodes[errorCode(err)] {
		return stepErr(ErrThrottled, "%v", err)
	}
	return err
}
