// Package iotcert holds the shared constructs of the app: the house Go Lambda, the custom-resource provider that
// fronts it, and the cdk-nag acknowledgement helper.
package iotcert

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// AssetsDirEnv overrides where prebuilt Lambda binaries are found (default: build/assets under the module root).
const AssetsDirEnv = "IOTCERT_ASSETS_DIR"

// GoFunctionProps configures NewGoFunction.
type GoFunctionProps struct {
	// Handler is the directory name under lambdas/; its binary is <assets>/<Handler>/bootstrap. Required.
	Handler string
	// Description of the function.
	Description string
	// Timeout of one invocation. Default: 10 seconds.
	Timeout awscdk.Duration
	// MemorySize in MB. Default: 256 (Go handlers are small; more memory also buys CPU for key generation).
	MemorySize float64
	// Environment variables.
	Environment map[string]*string
	// LogRetention of the function's log group. Default: one year (AWS Control Tower's minimum).
	LogRetention awslogs.RetentionDays
	// OnFailure, for functions invoked asynchronously, sends failed events to an encrypted SQS queue. Default: false,
	// for functions invoked synchronously (API Gateway, the custom-resource provider framework), whose caller receives
	// the error itself; cdk-nag's Serverless-LambdaDLQ is acknowledged for them with that reason.
	OnFailure bool
	// SyncCaller names what invokes a function without OnFailure synchronously, for the Serverless-LambdaDLQ
	// acknowledgement. Default: "API Gateway or the custom-resource provider framework".
	SyncCaller string
	// ReservedConcurrency caps concurrent executions (0: unreserved).
	ReservedConcurrency float64
	// UnscopedActions are actions the function is granted on "*" because the service defines no resource ARN for them
	// (iot:DescribeEndpoint, iot:CreateCertificateFromCsr); they are named in the cdk-nag acknowledgement.
	UnscopedActions []string
}

// GoFunction is a Go Lambda with the house defaults: provided.al2023 on arm64, the prebuilt stripped binary as its
// asset, JSON logs into a log group with retention, X-Ray tracing, and its own role that may write only to that group.
type GoFunction struct {
	constructs.Construct
	Function awslambda.Function
	Role     awsiam.Role
	LogGroup awslogs.LogGroup
	// DeadLetters receives failed asynchronous events when OnFailure is set.
	DeadLetters awssqs.Queue
}

func (p GoFunctionProps) withDefaults() GoFunctionProps {
	if p.Timeout == nil {
		p.Timeout = awscdk.Duration_Seconds(jsii.Number(10))
	}
	if p.MemorySize == 0 {
		p.MemorySize = 256
	}
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_ONE_YEAR
	}
	return p
}

// NewGoFunction defines a Go Lambda function from the binary built for lambdas/<Handler>.
func NewGoFunction(scope constructs.Construct, id string, props *GoFunctionProps) *GoFunction {
	p := props.withDefaults()
	if p.Handler == "" {
		panic("iotcert: GoFunction needs a Handler (a directory under lambdas/)")
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	g := &GoFunction{Construct: c}

	g.LogGroup = awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// An own role instead of AWSLambdaBasicExecutionRole: that managed policy may write to every log group.
	g.Role = awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("Runs the %s function", p.Handler)),
	})
	g.LogGroup.GrantWrite(g.Role)
	AcknowledgeGuard(g.LogGroup, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK", reasonLogsUnencrypted)

	fp := &awslambda.FunctionProps{
		Runtime:               awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:          awslambda.Architecture_ARM_64(),
		Handler:               jsii.String("bootstrap"),
		Code:                  awslambda.Code_FromAsset(jsii.String(AssetDir(p.Handler)), nil),
		Description:           jsii.String(p.Description),
		Timeout:               p.Timeout,
		MemorySize:            jsii.Number(p.MemorySize),
		Environment:           &p.Environment,
		Role:                  g.Role,
		LogGroup:              g.LogGroup,
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		Tracing:               awslambda.Tracing_ACTIVE,
		RecursiveLoop:         awslambda.RecursiveLoop_TERMINATE,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:      awslambda.SystemLogLevel_WARN,
	}
	if p.ReservedConcurrency > 0 {
		fp.ReservedConcurrentExecutions = jsii.Number(p.ReservedConcurrency)
	}
	if p.OnFailure {
		g.DeadLetters = awssqs.NewQueue(c, jsii.String("DeadLetters"), &awssqs.QueueProps{
			Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
			EnforceSSL:      jsii.Bool(true),
			RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		})
		Acknowledge(g.DeadLetters, "AwsSolutions-SQS3", "this queue is itself the dead-letter target of the function's failed asynchronous events")
		Acknowledge(g.DeadLetters, "Serverless-SQSRedrivePolicy", "this queue is itself the dead-letter target of the function's failed asynchronous events")
		AcknowledgeGuard(g.DeadLetters, "SQS_DLQ_CHECK", "this queue is itself the dead-letter target of the function's failed asynchronous events")
		fp.OnFailure = awslambdadestinations.NewSqsDestination(g.DeadLetters)
	}
	g.Function = awslambda.NewFunction(c, jsii.String("Resource"), fp)
	if p.OnFailure {
		Acknowledge(g.Function, "Serverless-LambdaDLQ",
			"failed asynchronous events go to the function's on-failure destination, an SQS queue, which records the error "+
				"and the request with each event (a dead-letter queue would keep the event alone)")
	} else {
		caller := p.SyncCaller
		if caller == "" {
			caller = "API Gateway or the custom-resource provider framework"
		}
		Acknowledge(g.Function, "Serverless-LambdaDLQ",
			"invoked synchronously ("+caller+"): the caller receives every error, "+
				"and there is no queued event to keep")
	}
	AcknowledgeGuard(g.Function, "LAMBDA_INSIDE_VPC_CHECK", reasonNoVPC)
	// Lambda adds xray:PutTraceSegments/PutTelemetryRecords on "*" for active tracing.
	unscoped := append([]string{"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, p.UnscopedActions...)
	if len(p.UnscopedActions) > 0 {
		g.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(p.UnscopedActions...),
			Resources: jsii.Strings("*"),
		}))
	}
	Acknowledge(g.Role, "AwsSolutions-IAM5",
		fmt.Sprintf("%s support no resource-level permissions, so they are granted on *; every other grant on this role names ARNs",
			strings.Join(unscoped, ", ")),
		"Resource::*")
	return g
}

// Reasons shared by every function of the app.
const (
	reasonNoVPC = "the function calls only AWS public API endpoints and reaches no private network; a VPC would add NAT or " +
		"interface endpoints and cold-start time without narrowing what it can reach"
	reasonLogsUnencrypted = "logs hold no key material, tokens or secrets by design (tested); CloudWatch Logs encrypts them at rest " +
		"with service-owned keys"
)

var (
	assetsOnce sync.Once
	assetsRoot string
)

// AssetDir returns the directory holding the prebuilt bootstrap of a handler and panics, with the command that builds
// it, when it is missing.
func AssetDir(handler string) string {
	assetsOnce.Do(func() {
		if d := os.Getenv(AssetsDirEnv); d != "" {
			assetsRoot = d
			return
		}
		assetsRoot = filepath.Join(ModuleRoot(), "build", "assets")
	})
	dir := filepath.Join(assetsRoot, handler)
	if _, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil {
		panic(fmt.Sprintf("iotcert: no Lambda binary for %q in %s: run scripts/build-lambdas.sh (cdk synth does it)", handler, dir))
	}
	return dir
}

// ModuleRoot is the nearest directory at or above the working directory that holds go.mod.
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("iotcert: %v", err))
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
