package iotcert

import (
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
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
			list[i] = findingMatcher(a)
		}
		s.AppliesTo = &list
	}
	cdknag.NagSuppressions_AddResourceSuppressions(scope, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

// envPlaceholders are the pseudo parameters cdk-nag writes into a finding when the stack is environment-agnostic, with
// what it writes instead once the stack has an account and region (or the partition is written as a literal).
var envPlaceholders = []struct{ placeholder, concrete string }{
	{"<AWS::Partition>", `aws[a-z-]*`},
	{"<AWS::Region>", `[a-z]{2}(?:-[a-z]+)+-\d`},
	{"<AWS::AccountId>", `\d{12}`},
}

// findingMatcher returns a finding that names the stack's partition, region or account by its pseudo parameter as a
// regular expression that matches it both ways, so that one acknowledgement holds for an environment-agnostic stack
// and for one deployed with -c region=… or an explicit account. Other findings are matched exactly.
func findingMatcher(finding string) interface{} {
	if !strings.Contains(finding, "<AWS::") {
		return finding
	}
	re := regexp.QuoteMeta(finding)
	for _, p := range envPlaceholders {
		re = strings.ReplaceAll(re, regexp.QuoteMeta(p.placeholder), "(?:"+regexp.QuoteMeta(p.placeholder)+"|"+p.concrete+")")
	}
	return &cdknag.RegexAppliesTo{Regex: jsii.String("/^" + re + "$/")}
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

// ScopeServicePermissions adds SourceAccount to every Lambda permission under scope that grants invoke to an AWS service
// principal without one, so that only this account's API (or rule, or bucket) can invoke the function: the
// confused-deputy guard AWS Control Tower's CT.LAMBDA.PR.2 asks for.
func ScopeServicePermissions(scope constructs.IConstruct) {
	for _, c := range *scope.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		perm, ok := c.(awslambda.CfnPermission)
		if !ok || !*awscdk.CfnResource_IsCfnResource(c) || *perm.CfnResourceType() != "AWS::Lambda::Permission" {
			continue
		}
		if principal := perm.Principal(); principal != nil && strings.HasSuffix(*principal, ".amazonaws.com") && perm.SourceAccount() == nil {
			perm.AddPropertyOverride(jsii.String("SourceAccount"), awscdk.Aws_ACCOUNT_ID())
			AcknowledgeGuard(perm, "LAMBDA_FUNCTION_PUBLIC_ACCESS_PROHIBITED_CHECK",
				"the permission names its caller by SourceArn (this stack's API, an Fn::Join) and SourceAccount (AWS::AccountId); "+
					"the rule accepts only literal values, which an account-agnostic template cannot hold")
		}
	}
}
