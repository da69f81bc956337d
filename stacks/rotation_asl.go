package stacks

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/iotcert/iotcert/internal/rotation"
)

// The rotation workflow, in Amazon States Language. It is written as data rather than with the CDK's chainable tasks
// so that the definition a test runs in the interpreter is, byte for byte, the one CloudFormation deploys: the stack
// passes the ARNs and names below as DefinitionSubstitutions, and the test renders them with placeholder values.
//
// Every state name is part of the contract with the interpreter test, which binds Task states by name.
//
// SelectDueHosts (lambdas/rotationselect) takes the execution's input ({} from the schedule, {"hostIDs": ["i-…"]} to
// rotate named hosts now) and returns {"count": n, "bucket": "…", "key": "…", "overdue": n, "caDaysLeft": n, …}:
// bucket and key name the JSON array of {"hostID"} items the distributed Map reads; overdue (hosts past renewAt) and
// caDaysLeft (the CA certificate's remaining days; absent when the CA could not be read) become the alarms' metrics.
//
// The per-host functions (internal/rotation's Steps) take and return one rotation.State object
// ({"hostID", "run", "commandId", "output", "csr", "idempotencyToken", "certificateArn", "issued", "certificate",
// "chain", "serial", "notAfter"}); a Lambda task passes it whole and its result replaces it. A step's error name
// (Lambda's errorType) decides what happens: CommandInProgress and CertificateInProgress are the waits (retried at an
// interval, a bounded number of times), Throttled backs off, HostBusy (another run holds the host's lease) ends the
// host's execution quietly, anything else reaches NotifyFailure.
//
// Error names. Every name in a Retry or Catch is one Step Functions emits for that state: States.* (the language's
// own), the Lambda service errors the Lambda integration documents
// (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html,
// https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html), and our steps' errorType
// (internal/rotation's Err* names). No state matches a service's own error name: an AWS SDK integration names an error
// <Service>.<Exception> only when the service's model lists it for the call, otherwise the service's base exception
// (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html#use-awssdk-integ-handle-exception),
// and Private CA's IssueCertificate lists no throttling error at all. So every call that may be throttled is made by
// a Go step, whose SDK retries throttling itself and reports what is still throttled as Throttled; the few
// integrations left (metrics, the last-resort notices) retry only States.TaskFailed or are best effort.

// Workflow state names, used by the stack test to bind tasks and to find states.
const (
	stSelectDueHosts       = "SelectDueHosts"
	stAnyHostsDue          = "AnyHostsDue"
	stPublishFleetMetrics  = "PublishFleetMetrics"
	stRotateHosts          = "RotateHosts"
	stNotifyRunFailure     = "NotifyRunFailure"
	stRequestCSR           = "RequestCSR"
	stWaitForCSR           = "WaitForCSR"
	stPollCSR              = "PollCSR"
	stCheckCSR             = "CheckCSR"
	stIssueCertificate     = "IssueCertificate"
	stPublishIssuanceCount = "PublishIssuanceCount"
	stWaitForCertificate   = "WaitForCertificate"
	stGetCertificate       = "GetCertificate"
	stInstallCertificate   = "InstallCertificate"
	stWaitForInstall       = "WaitForInstall"
	stPollInstall          = "PollInstall"
	stRecordRotation       = "RecordRotation"
	stNotifyFailure        = "NotifyFailure"
	stNotifyFailureDirect  = "NotifyFailureDirect"
	stNotifyRunDirect      = "NotifyRunFailureDirect"
	stHostBusy             = "HostBusy"
)

// Definition substitution variables: the function of each Lambda task, and the resources of the others.
const (
	subSelectFunction = "SelectFunctionArn"
	subSendCSR        = "SendCSRFunctionArn"
	subCommandResult  = "CommandResultFunctionArn"
	subCheckCSR       = "CheckCSRFunctionArn"
	subIssue          = "IssueFunctionArn"
	subGetCertificate = "GetCertificateFunctionArn"
	subSendInstall    = "SendInstallFunctionArn"
	subRecord         = "RecordFunctionArn"
	subNotifyFailure  = "NotifyFailureFunctionArn"
	subNotifyRun      = "NotifyRunFailureFunctionArn"
	subCA             = "CertificateAuthorityArn"
	subTopic          = "TopicArn"
	subManifestBucket = "ManifestBucket"
	subTemplate       = "CertificateTemplateArn"
	subRotation       = "RotationName"
)

// MetricsNamespace holds the rotation metrics IssuedCertificates, OverdueHosts, StaleHosts, CADaysLeft, RotationFailures
// and InvalidHostItems, with
// the dimension Rotation
// (the rotation_name, "default" without one).
const MetricsNamespace = "CertRotation"

// rotationWorkflow are the settings the definition carries as literals.
type rotationWorkflow struct {
	MaxConcurrency   int    // hosts rotated at once (the Map's MaxConcurrency)
	SigningAlgorithm string // of IssueCertificate, matching the CA's key
	ValidityDays     int    // of the host certificates
	PollSeconds      int    // between two looks at an SSM command
	MaxPolls         int    // looks before the command counts as timed out
	TimeoutSeconds   int    // of one whole run
}

func sub(name string) string { return "${" + name + "}" }

// stepRetry retries the Lambda service's transient errors, as the Step Functions documentation recommends, and a
// step's Throttled (an AWS API still throttled after the SDK's own retries) with a longer, jittered back-off.
func stepRetry(extra ...map[string]any) []any {
	r := []any{}
	for _, e := range extra {
		r = append(r, e)
	}
	return append(r,
		map[string]any{
			"ErrorEquals":     []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"},
			"IntervalSeconds": 2, "MaxAttempts": 5, "BackoffRate": 2, "JitterStrategy": "FULL",
		},
		map[string]any{
			"ErrorEquals":     []string{"Throttled"},
			"IntervalSeconds": 5, "MaxAttempts": 6, "BackoffRate": 2, "MaxDelaySeconds": 120, "JitterStrategy": "FULL",
		},
	)
}

func catchAll(next string) []any {
	return []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.error", "Next": next}}
}

// hostCatch sends HostBusy (another run holds the host's lease) to the quiet end and everything else to NotifyFailure.
func hostCatch() []any {
	return append([]any{map[string]any{"ErrorEquals": []string{rotation.ErrHostBusy}, "ResultPath": "$.busy", "Next": stHostBusy}},
		catchAll(stNotifyFailure)...)
}

// step is a Lambda task that takes the rotation State and returns it.
func step(fn string, timeout int, next string, extraRetry ...map[string]any) map[string]any {
	return map[string]any{
		"Type": "Task", "Resource": sub(fn), "TimeoutSeconds": timeout,
		"Retry": stepRetry(extraRetry...), "Catch": hostCatch(), "Next": next,
	}
}

// lastResortRetry retries a service integration on the one name Step Functions gives any failed task
// (States.TaskFailed); the service's own error names are not relied on.
func lastResortRetry() []any {
	return []any{map[string]any{"ErrorEquals": []string{"States.TaskFailed"}, "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2, "JitterStrategy": "FULL"}}
}

// hostStates is the Map's item processor: one host, from its CSR to the record of its new certificate. Its input is
// {"hostID": "…"}.
func hostStates(w rotationWorkflow) map[string]any {
	// The command waits: SSM reports Pending/InProgress (or no invocation yet) until the host has run the command;
	// CommandResult says CommandInProgress and the Retry waits. A host whose agent is offline leaves the command
	// InProgress until its timeout; the Retry gives up first and the host's rotation fails as timed out.
	commandWait := map[string]any{"ErrorEquals": []string{"CommandInProgress"}, "IntervalSeconds": w.PollSeconds, "MaxAttempts": w.MaxPolls, "BackoffRate": 1}
	s := map[string]any{
		stRequestCSR: step(subSendCSR, 60, stWaitForCSR),
		stWaitForCSR: map[string]any{"Type": "Wait", "Seconds": w.PollSeconds, "Next": stPollCSR},
		stPollCSR:    step(subCommandResult, 60, stCheckCSR, commandWait),
		stCheckCSR:   step(subCheckCSR, 30, stIssueCertificate),
		// The Issue step (a Go function, so the SDK retries Private CA's throttling and the CSR travels as the SDK's
		// own blob): a certificate already issued for this CSR (recorded on the host's item) is reused, otherwise
		// IssueCertificate with the CSR's idempotency token, the ARN recorded and the issuance counted. Private CA's
		// rate quota: Throttled backs off with jitter, so throttled hosts spread out.
		stIssueCertificate: step(subIssue, 30, "Counted"),
		// The issuance count feeds the quota alarm; a reused certificate was counted when it was issued.
		"Counted": map[string]any{
			"Type":    "Choice",
			"Choices": []any{map[string]any{"Variable": "$.issued", "NumericGreaterThan": 0, "Next": stPublishIssuanceCount}},
			"Default": stWaitForCertificate,
		},
		stPublishIssuanceCount: map[string]any{
			"Type":     "Task",
			"Resource": "arn:aws:states:::aws-sdk:cloudwatch:putMetricData",
			"Parameters": map[string]any{
				"Namespace": MetricsNamespace,
				"MetricData": []any{map[string]any{
					"MetricName": "IssuedCertificates", "Unit": "Count", "Value.$": "$.issued",
					"Dimensions": []any{map[string]any{"Name": "Rotation", "Value": sub(subRotation)}},
				}},
			},
			"ResultPath": nil, "TimeoutSeconds": 30,
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.issuanceError", "Next": stWaitForCertificate}},
			"Next":  stWaitForCertificate,
		},
		// The workflow reads the certificate itself: Private CA's issuance event is best effort, so no event is
		// waited for and a missed one cannot strand a host. CertificateInProgress means "not signed yet".
		stWaitForCertificate: map[string]any{"Type": "Wait", "Seconds": 2, "Next": stGetCertificate},
		stGetCertificate: step(subGetCertificate, 30, stInstallCertificate, map[string]any{
			"ErrorEquals": []string{"CertificateInProgress"}, "IntervalSeconds": 3, "MaxAttempts": 10, "BackoffRate": 1.5, "MaxDelaySeconds": 30,
		}),
		stInstallCertificate: step(subSendInstall, 60, stWaitForInstall),
		stWaitForInstall:     map[string]any{"Type": "Wait", "Seconds": w.PollSeconds, "Next": stPollInstall},
		stPollInstall:        step(subCommandResult, 60, stRecordRotation, commandWait),
		stRecordRotation: func() map[string]any {
			m := step(subRecord, 30, "")
			delete(m, "Next")
			m["End"] = true
			return m
		}(),
		// Another run holds this host's lease: that run rotates the host; this one neither issues nor reports.
		stHostBusy: map[string]any{"Type": "Succeed"},
		// Every failure is recorded on the host and reaches the topic with the sample's message prefix, then fails
		// the host's execution (which the failure alarm counts). If the function cannot, the topic still hears.
		stNotifyFailure: map[string]any{
			"Type": "Task", "Resource": sub(subNotifyFailure),
			"Parameters": map[string]any{"hostID.$": "$.hostID", "run.$": "$.run", "error.$": "$.error"},
			"ResultPath": "$.notified", "TimeoutSeconds": 30, "Retry": stepRetry(),
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.notifyError", "Next": stNotifyFailureDirect}},
			"Next":  "RotationFailed",
		},
		stNotifyFailureDirect: map[string]any{
			"Type":     "Task",
			"Resource": "arn:aws:states:::sns:publish",
			"Parameters": map[string]any{
				"TopicArn": sub(subTopic),
				// The function that words the failure failed: the error name only (its cause may be a JSON document).
				"Message.$": "States.Format('Certificate rotation failed for {}: {} (the notification function failed too: see the workflow log)', $.hostID, $.error.Error)",
			},
			"ResultPath": nil, "TimeoutSeconds": 30, "Retry": lastResortRetry(),
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.notifyError", "Next": "RotationFailed"}},
			"Next":  "RotationFailed",
		},
		"RotationFailed": map[string]any{"Type": "Fail", "Error": "Rotation.Failed", "Cause": "see the message on the failure topic and the host's lastError"},
	}
	return s
}

// rotationDefinition is the whole workflow: select the due hosts into a manifest, then rotate each in a distributed
// Map that reads the manifest (the host list never travels in the execution's state, whose size is capped at
// 256 KiB) and writes its results to S3, with one child execution per host, so no history grows with the fleet.
func rotationDefinition(w rotationWorkflow) map[string]any {
	states := map[string]any{
		stSelectDueHosts: map[string]any{
			"Type": "Task", "Resource": sub(subSelectFunction),
			"ResultPath": "$.selection", "TimeoutSeconds": 300, "Retry": stepRetry(), "Catch": catchAll(stNotifyRunFailure),
			"Next": "HasFleetMetrics",
		},
		// The selection reports the hosts past renewAt and the CA certificate's days left (Private CA sends no
		// expiry event); both feed alarms, and the CA alarm treats a day without a report as breaching. A path
		// missing in Parameters would be an uncatchable States.Runtime error, hence the Choice.
		"HasFleetMetrics": map[string]any{
			"Type": "Choice",
			"Choices": []any{map[string]any{
				"And": []any{
					map[string]any{"Variable": "$.selection.overdue", "IsNumeric": true},
					map[string]any{"Variable": "$.selection.stale", "IsNumeric": true},
					map[string]any{"Variable": "$.selection.caDaysLeft", "IsNumeric": true},
				},
				"Next": stPublishFleetMetrics,
			}},
			"Default": stAnyHostsDue,
		},
		stPublishFleetMetrics: map[string]any{
			"Type":     "Task",
			"Resource": "arn:aws:states:::aws-sdk:cloudwatch:putMetricData",
			"Parameters": map[string]any{
				"Namespace": MetricsNamespace,
				"MetricData": []any{
					map[string]any{"MetricName": "OverdueHosts", "Unit": "Count", "Value.$": "$.selection.overdue",
						"Dimensions": []any{map[string]any{"Name": "Rotation", "Value": sub(subRotation)}}},
					map[string]any{"MetricName": "StaleHosts", "Unit": "Count", "Value.$": "$.selection.stale",
						"Dimensions": []any{map[string]any{"Name": "Rotation", "Value": sub(subRotation)}}},
					map[string]any{"MetricName": "CADaysLeft", "Unit": "Count", "Value.$": "$.selection.caDaysLeft",
						"Dimensions": []any{map[string]any{"Name": "Rotation", "Value": sub(subRotation)}}},
				},
			},
			"ResultPath": nil, "TimeoutSeconds": 30,
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.metricsError", "Next": stAnyHostsDue}},
			"Next":  stAnyHostsDue,
		},
		stAnyHostsDue: map[string]any{
			"Type":    "Choice",
			"Choices": []any{map[string]any{"Variable": "$.selection.count", "NumericGreaterThan": 0, "Next": stRotateHosts}},
			"Default": "NoHostsDue",
		},
		"NoHostsDue": map[string]any{"Type": "Succeed"},
		stRotateHosts: map[string]any{
			"Type":  "Map",
			"Label": "RotateHosts",
			"ItemReader": map[string]any{
				"Resource":     "arn:aws:states:::s3:getObject",
				"ReaderConfig": map[string]any{"InputType": "JSON"},
				"Parameters":   map[string]any{"Bucket.$": "$.selection.bucket", "Key.$": "$.selection.key"},
			},
			// Only the host id enters a host's execution: its paths are read (and checked) from the table by each step.
			// The run's execution id is the owner of the host's lease (a redriven run keeps its id, and its lease).
			"ItemSelector": map[string]any{"hostID.$": "$$.Map.Item.Value.hostID", "run.$": "$$.Execution.Id"},
			"ItemProcessor": map[string]any{
				"ProcessorConfig": map[string]any{"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
				"StartAt":         stRequestCSR,
				"States":          hostStates(w),
			},
			// At most MaxConcurrency hosts are between RequestCSR and RecordRotation, so at most that many
			// IssueCertificate calls can be in flight: the default stays under Private CA's rate quota.
			"MaxConcurrency": w.MaxConcurrency,
			// A host's failure is reported and recorded by its own execution; it never stops the others.
			"ToleratedFailurePercentage": 100,
			"ResultWriter": map[string]any{
				"Resource":   "arn:aws:states:::s3:putObject",
				"Parameters": map[string]any{"Bucket": sub(subManifestBucket), "Prefix": strings.TrimSuffix(rotation.ResultsPrefix, "/")},
			},
			"ResultPath": "$.results",
			"Catch":      catchAll(stNotifyRunFailure),
			"End":        true,
		},
		// A run that failed as a whole (the selection refused the input, the manifest could not be read): the function
		// words it for a person, with the hosts asked for, and the direct notice is the last resort.
		stNotifyRunFailure: map[string]any{
			"Type": "Task", "Resource": sub(subNotifyRun),
			"Parameters": map[string]any{"input.$": "$$.Execution.Input", "error.$": "$.error"},
			"ResultPath": "$.notified", "TimeoutSeconds": 30, "Retry": stepRetry(),
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.notifyError", "Next": stNotifyRunDirect}},
			"Next":  "RunFailed",
		},
		stNotifyRunDirect: map[string]any{
			"Type":     "Task",
			"Resource": "arn:aws:states:::sns:publish",
			"Parameters": map[string]any{
				"TopicArn":  sub(subTopic),
				"Message.$": "States.Format('Certificate rotation run failed: {} (the notification function failed too: see the workflow log)', $.error.Error)",
			},
			"ResultPath": nil, "TimeoutSeconds": 30, "Retry": lastResortRetry(),
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.notifyError", "Next": "RunFailed"}},
			"Next":  "RunFailed",
		},
		"RunFailed": map[string]any{"Type": "Fail", "Error": "Rotation.RunFailed", "Cause": "see the message on the failure topic"},
	}
	return map[string]any{
		"Comment":        "Certificate rotation: due hosts, then per host: key and CSR on the host, check, issue, install and test on the host, record",
		"StartAt":        stSelectDueHosts,
		"TimeoutSeconds": w.TimeoutSeconds,
		"States":         states,
	}
}

func rotationDefinitionJSON(w rotationWorkflow) string {
	b, err := json.Marshal(rotationDefinition(w))
	if err != nil {
		panic(fmt.Sprintf("rotation: state machine definition: %v", err))
	}
	return string(b)
}
