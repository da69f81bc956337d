// Command floorapp is the smallest Go CDK app: one stack with one resource. Its synth time is the floor that the
// jsii runtime and the CDK CLI cost any Go app on this machine; docs/PERFORMANCE.md compares the app against it.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Floor"), nil)
	awssns.NewTopic(stack, jsii.String("Topic"), nil)
	app.Synth(nil)
}
