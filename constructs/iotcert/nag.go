package iotcert

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
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

// AcknowledgeGuard records on a CloudFormation resource that a cfn-guard rule (AWS Control Tower's rule names, upper
// case) does not apply, with the reason. cfn-guard reads Metadata.guard.SuppressedRules; the synth check refuses an
// entry there without a reason in Metadata.guard.Reasons.
func AcknowledgeGuard(scope constructs.IConstruct, rule, reason string) {
	res, ok := cfnResource(scope)
	if !ok {
		panic("iotcert: AcknowledgeGuard needs a CloudFormation resource or a construct whose default child is one")
	}
	guard, _ := res.GetMetadata(jsii.String("guard")).(map[string]interface{})
	if guard == nil {
		guard = map[string]interface{}{}
	}
	rules, _ := guard["SuppressedRules"].([]interface{})
	reasons, _ := guard["Reasons"].(map[string]interface{})
	if reasons == nil {
		reasons = map[string]interface{}{}
	}
	if _, seen := reasons[rule]; !seen {
		rules = append(rules, rule)
	}
	reasons[rule] = reason
	guard["SuppressedRules"] = rules
	guard["Reasons"] = reasons
	res.AddMetadata(jsii.String("guard"), guard)
}

func cfnResource(scope constructs.IConstruct) (awscdk.CfnResource, bool) {
	if r, ok := scope.(awscdk.CfnResource); ok {
		return r, true
	}
	r, ok := scope.Node().DefaultChild().(awscdk.CfnResource)
	return r, ok
}
