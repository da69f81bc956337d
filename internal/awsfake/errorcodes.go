package awsfake

import (
	"slices"
	"strings"
)

// sdkErrorCodes lists, per "service/operation", the error codes the AWS SDK for Go v2 deserializes into a typed error
// (github.com/aws/aws-sdk-go-v2/service/<service>/types), copied from the SDK versions in go.mod. A fake that answers
// another code leaves the caller with a *smithy.GenericAPIError, so an errors.As branch for it could never run.
//
// AWS IoT (restJson), Step Functions (awsJson 1.0) and SNS (awsQuery) deserializers know a set per operation.
// Secrets Manager, SSM, ACM PCA and EventBridge (awsJson 1.1, schema-serde clients) type any code of the service's
// type registry, so they are listed per service under "service/*". TestErrorCodesAreTypedBySDK proves every entry through the real clients; New fails a test whose fake
// answers, or is told to inject, a code outside this table and commonErrorCodes. Operations not listed are not checked.
var sdkErrorCodes = map[string]string{
	"iot/DescribeEndpoint":             "InternalFailureException InvalidRequestException ThrottlingException UnauthorizedException",
	"iot/CreateCertificateFromCsr":     "InternalFailureException InvalidRequestException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/CreateKeysAndCertificate":     "InternalFailureException InvalidRequestException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/RegisterCertificateWithoutCA": "CertificateStateException CertificateValidationException InternalFailureException InvalidRequestException ResourceAlreadyExistsException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/RegisterCertificate":          "CertificateConflictException CertificateStateException CertificateValidationException InternalFailureException InvalidRequestException ResourceAlreadyExistsException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DescribeCertificate":          "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/UpdateCertificate":            "CertificateStateException InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DeleteCertificate":            "CertificateStateException DeleteConflictException InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/CreateThing":                  "InternalFailureException InvalidRequestException ResourceAlreadyExistsException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DescribeThing":                "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DeleteThing":                  "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException VersionConflictException",
	"iot/AttachThingPrincipal":         "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DetachThingPrincipal":         "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/ListThingPrincipals":          "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/ListPrincipalThings":          "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/CreateThingType":              "InternalFailureException InvalidRequestException ResourceAlreadyExistsException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DescribeThingType":            "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/ListThingTypes":               "InternalFailureException InvalidRequestException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DeprecateThingType":           "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/CreatePolicy":                 "InternalFailureException InvalidRequestException MalformedPolicyException ResourceAlreadyExistsException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/GetPolicy":                    "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DeletePolicy":                 "DeleteConflictException InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/AttachPolicy":                 "InternalFailureException InvalidRequestException LimitExceededException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DetachPolicy":                 "InternalFailureException InvalidRequestException LimitExceededException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/ListAttachedPolicies":         "InternalFailureException InvalidRequestException LimitExceededException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/ListCertificates":             "InternalFailureException InvalidRequestException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/UpdateEventConfigurations":    "InternalFailureException InvalidRequestException ThrottlingException",
	"iot/DescribeEventConfigurations":  "InternalFailureException ThrottlingException",

	// iot_registry.go
	"iot/UpdateThing":               "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException VersionConflictException",
	"iot/ListThings":                "InternalFailureException InvalidRequestException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/DeleteThingType":           "InternalFailureException InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException UnauthorizedException",
	"iot/CreateThingGroup":          "InternalFailureException InvalidRequestException ResourceAlreadyExistsException ThrottlingException",
	"iot/DescribeThingGroup":        "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
	"iot/UpdateThingGroup":          "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException VersionConflictException",
	"iot/DeleteThingGroup":          "InternalFailureException InvalidRequestException ThrottlingException VersionConflictException",
	"iot/ListThingGroups":           "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
	"iot/AddThingToThingGroup":      "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
	"iot/RemoveThingFromThingGroup": "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
	"iot/ListThingsInThingGroup":    "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
	"iot/ListThingGroupsForThing":   "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",

	// jobs.go (CreateJob and CreateJobTemplate are left out: the generic input filler cannot satisfy their validation)
	"iot/DescribeJob":          "InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException",
	"iot/DescribeJobExecution": "InvalidRequestException ResourceNotFoundException ServiceUnavailableException ThrottlingException",
	"iot/DescribeJobTemplate":  "InternalFailureException InvalidRequestException ResourceNotFoundException ThrottlingException",
	"iot/CancelJobExecution":   "InvalidRequestException InvalidStateTransitionException ResourceNotFoundException ServiceUnavailableException ThrottlingException VersionConflictException",

	// audit_findings.go

	"sfn/StartExecution":    "ExecutionAlreadyExists ExecutionLimitExceeded InvalidArn InvalidExecutionInput InvalidName KmsAccessDeniedException KmsInvalidStateException KmsThrottlingException StateMachineDeleting StateMachineDoesNotExist ValidationException",
	"sfn/DescribeExecution": "ExecutionDoesNotExist InvalidArn KmsAccessDeniedException KmsInvalidStateException KmsThrottlingException",
	"sfn/SendTaskSuccess":   "InvalidOutput InvalidToken KmsAccessDeniedException KmsInvalidStateException KmsThrottlingException TaskDoesNotExist TaskTimedOut",
	"sfn/SendTaskFailure":   "InvalidToken KmsAccessDeniedException KmsInvalidStateException KmsThrottlingException TaskDoesNotExist TaskTimedOut",

	"sns/Publish": "AuthorizationError EndpointDisabled InternalError InvalidParameter InvalidSecurity KMSAccessDenied KMSDisabled KMSInvalidState KMSNotFound KMSOptInRequired KMSThrottling NotFound ParameterValueInvalid PlatformApplicationDisabled ValidationException",

	"secretsmanager/*": "DecryptionFailure EncryptionFailure InternalServiceError InvalidNextTokenException InvalidParameterException InvalidRequestException LimitExceededException MalformedPolicyDocumentException PreconditionNotMetException PublicPolicyException ResourceExistsException ResourceNotFoundException",
	"events/*":         "AccessDeniedException ConcurrentModificationException IllegalStatusException InternalException InvalidEventPatternException InvalidStateException LimitExceededException ManagedRuleException OperationDisabledException PolicyLengthExceededException ResourceAlreadyExistsException ResourceNotFoundException ThrottlingException",
	"acm-pca/*":        "CertificateMismatchException ConcurrentModificationException InvalidArgsException InvalidArnException InvalidNextTokenException InvalidPolicyException InvalidRequestException InvalidStateException InvalidTagException LimitExceededException LockoutPreventedException MalformedCertificateException MalformedCSRException PermissionAlreadyExistsException RequestAlreadyProcessedException RequestFailedException RequestInProgressException ResourceNotFoundException TooManyTagsException",
	// SSM's type registry is long; these are the codes the parameter-store and Run Command operations can answer.
	"ssm/*": "InvalidCommandId InvalidDocument InvalidInstanceId InvalidParameters InvocationDoesNotExist HierarchyLevelLimitExceededException HierarchyTypeMismatchException IncompatiblePolicyException InternalServerError InvalidAllowedPatternException InvalidFilter InvalidFilterKey InvalidFilterOption InvalidFilterValue InvalidKeyId InvalidNextToken InvalidPolicyAttributeException InvalidPolicyTypeException ParameterAlreadyExists ParameterLimitExceeded ParameterMaxVersionLimitExceeded ParameterNotFound ParameterPatternMismatchException ParameterVersionNotFound PoliciesLimitExceededException TooManyUpdates UnsupportedParameterType ValidationException",
}

// commonErrorCodes are answers any AWS API can give outside its model (AWS's common errors: the SDK's retryer and
// callers recognise them by code), and the fake's own protocol diagnostics.
var commonErrorCodes = []string{
	"AccessDeniedException", "InternalFailure", "RequestTimeout", "ServiceUnavailable", "Throttling",
	"ThrottlingException",
	// awsfake diagnostics: a request the SDK would never send.
	"MalformedQueryString", "MissingAuthenticationTokenException", "RequestEntityTooLargeException",
	"SerializationException", "UnknownOperationException", "InvalidAction",
}

// untypedErrorCodes are AWS common errors that a service answers outside its model, for input that breaks a
// constraint ("1 validation error detected"): the SDK hands them to the caller as a *smithy.GenericAPIError, so
// code must match them by ErrorCode(), never by errors.As into a typed error. Only these services may answer them.
var untypedErrorCodes = map[string][]string{
	ServiceSFN:    {"ValidationException"}, // e.g. SendTaskFailure with a cause over 32,768 characters
	ServiceEvents: {"ValidationException"}, // e.g. PutEvents with more than 10 entries
}

// UntypedErrorCodes returns, per service, the codes the fake answers that the SDK leaves untyped (see
// untypedErrorCodes).
func UntypedErrorCodes() map[string][]string {
	out := map[string][]string{}
	for k, v := range untypedErrorCodes {
		out[k] = slices.Clone(v)
	}
	return out
}

// typedErrorCode reports whether the SDK types code for service's op; checked is false when the table does not
// cover the operation.
func typedErrorCode(service, op, code string) (typed, checked bool) {
	codes, ok := sdkErrorCodes[service+"/"+op]
	if !ok {
		if codes, ok = sdkErrorCodes[service+"/*"]; !ok {
			return false, false
		}
	}
	return slices.Contains(strings.Fields(codes), code), true
}

// allowedErrorCode reports whether the fake may answer code from service's op.
func allowedErrorCode(service, op, code string) bool {
	if slices.Contains(commonErrorCodes, code) || slices.Contains(untypedErrorCodes[service], code) {
		return true
	}
	typed, checked := typedErrorCode(service, op, code)
	return typed || !checked
}

// SDKErrorCodes returns the table the fake checks its answers against: "service/operation" (or "service/*" for a
// whole service) → the error codes the SDK types there.
func SDKErrorCodes() map[string][]string {
	out := make(map[string][]string, len(sdkErrorCodes))
	for k, v := range sdkErrorCodes {
		out[k] = strings.Fields(v)
	}
	return out
}
