package awsfake

import "strings"

// How Step Functions names the error of a failed AWS SDK integration task
// (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html#use-awssdk-integ-handle-exception):
// the service name and the error name in PascalCase, joined by a period, the error name always with the Exception
// suffix ("AcmPca.ResourceNotFoundException", "S3.BucketAlreadyExistsException" for S3's BucketAlreadyExists). The
// error names are those the service's API reference lists for the call; an error the service's model does not list
// for it (throttling, for Private CA) reaches the state machine only as the service's base exception,
// <Service>.<Service>Exception, the SDK for Java's class for an unmodelled service error
// (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). A Retry or Catch on any other
// name never fires.

// sfnModelledErrors are the errors each API reference lists for the calls a state machine of ours could make
// through the SDK integration, by "<service>:<operation>" as the Resource ARN spells it.
var sfnModelledErrors = map[string]struct {
	service string
	errors  []string
}{
	// https://docs.aws.amazon.com/privateca/latest/APIReference/API_IssueCertificate.html#API_IssueCertificate_Errors
	"acmpca:issueCertificate": {"AcmPca", []string{"InvalidArgsException", "InvalidArnException", "InvalidStateException",
		"LimitExceededException", "MalformedCSRException", "ResourceNotFoundException"}},
	// https://docs.aws.amazon.com/privateca/latest/APIReference/API_GetCertificate.html#API_GetCertificate_Errors
	"acmpca:getCertificate": {"AcmPca", []string{"InvalidArnException", "InvalidStateException", "RequestFailedException",
		"RequestInProgressException", "ResourceNotFoundException"}},
}

// SFNIntegrationErrors returns the error names Step Functions can report for the SDK integration
// arn:aws:states:::aws-sdk:<service>:<operation> (given as "service:operation"): the modelled errors and the base
// exception. ok is false for a call whose list is not modelled here.
func SFNIntegrationErrors(call string) (names []string, ok bool) {
	m, ok := sfnModelledErrors[call]
	if !ok {
		return nil, false
	}
	for _, e := range m.errors {
		names = append(names, m.service+"."+e)
	}
	return append(names, m.service+"."+m.service+"Exception"), true
}

// SFNIntegrationError is the error name Step Functions reports when the SDK integration call ("service:operation")
// fails with the AWS error code code: the modelled name, else the service's base exception.
func SFNIntegrationError(call, code string) string {
	m, ok := sfnModelledErrors[call]
	if !ok {
		return "States.TaskFailed"
	}
	name := code
	if !strings.HasSuffix(name, "Exception") {
		name += "Exception"
	}
	for _, e := range m.errors {
		if e == name {
			return m.service + "." + name
		}
	}
	return m.service + "." + m.service + "Exception"
}
