package iotcert

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"
)

// DenyForeignGrants adds to key's policy a Deny of kms:CreateGrant unless the grant is for an AWS resource and made by
// an AWS service (the table's or the secret's service), so no principal can hand the key on (AWS Control Tower
// CT.KMS.PR.3).
func DenyForeignGrants(key awskms.Key) {
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:CreateGrant"),
		Resources:  jsii.Strings("*"), // in a key policy, "*" is this key
		Conditions: &map[string]interface{}{"BoolIfExists": map[string]interface{}{
			"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false",
		}},
	}), jsii.Bool(false))
}
