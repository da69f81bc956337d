package iotcert

import (
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Acknowledge records, next to the construct it excuses, why a cdk-nag rule does not apply. A reason is required:
// cdk-nag itself refuses reasons shorter than 10 characters. appliesTo narrows the acknowledgement to the named
// findings (for example "Resource::*" or "Action::iot:DescribeEndpoint"); without it the whole rule is acknowledged.
func Acknowledge(scope constructs.IConstruct, rule, reason string, appliesTo ...string) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		list := make([]interface{}, len(appliesTo))
		for i, a := range appliesTo {
			list[i] = a
		}
		s.AppliesTo = &list
	}
	cdknag.NagSuppressions_AddResourceSuppressions(scope, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}
