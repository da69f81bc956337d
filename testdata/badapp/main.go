// Command badapp is a deliberately bad CDK app: the synth check must fail on it, naming each problem. It shows that
// the check's three parts (the CloudFormation validator, cdk-nag and cfn-guard) really fail a run.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("BadStack"), nil)

	// cdk-nag AwsSolutions-S1/S10 and cfn-guard S3_BUCKET_SSL_REQUESTS_ONLY: no access log, plain HTTP allowed.
	awss3.NewBucket(stack, jsii.String("Bucket"), &awss3.BucketProps{BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL()})

	// cdk-nag AwsSolutions-IAM5: iot:* on every resource.
	role := awsiam.NewRole(stack, jsii.String("Role"), &awsiam.RoleProps{AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil)})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("iot:*"), Resources: jsii.Strings("*")}))

	// The app's IoT policy rules: iot:* on every resource (cdk-nag and cfn-guard have no IoT rules).
	awsiot.NewCfnPolicy(stack, jsii.String("Policy"), &awsiot.CfnPolicyProps{PolicyDocument: map[string]interface{}{
		"Version":   "2012-10-17",
		"Statement": []interface{}{map[string]interface{}{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}},
	}})

	// The CloudFormation validator: a property of the wrong type.
	awscdk.NewCfnResource(stack, jsii.String("Certificate"), &awscdk.CfnResourceProps{
		Type:       jsii.String("AWS::IoT::Certificate"),
		Properties: &map[string]interface{}{"Status": 42, "CertificateSigningRequest": []string{"not", "a", "string"}},
	})

	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(nil), nil)
	app.Synth(nil)
}
