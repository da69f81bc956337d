package stacks

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/iotcert/iotcert/internal/selection"
)

const (
	testAccount = "123456789012"
	testRegion  = "eu-west-1"
)

// nagErrors defines the stacks of one selection in scope (the app, or a stage that gives them an account and region),
// runs cdk-nag's AwsSolutions and Serverless packs as main.go does, and returns each stack's unacknowledged findings.
func nagErrors(t *testing.T, scope awscdk.App, context map[string]string) map[string][]string {
	t.Helper()
	sel, err := selection.Select(ctxOf(context), ctxOf(nil))
	if err != nil {
		t.Fatalf("select %v: %v", context, err)
	}
	if err := Define(scope, sel, ctxOf(context)); err != nil {
		t.Fatalf("define %v: %v", context, err)
	}
	out := stackNagErrors(t, scope)
	if len(out) == 0 {
		t.Fatalf("context %v defined no stack", context)
	}
	return out
}

// stackNagErrors runs cdk-nag's AwsSolutions and Serverless packs, as main.go does, over the stacks directly under
// scope and returns each stack's unacknowledged findings.
func stackNagErrors(t *testing.T, scope constructs.IConstruct) map[string][]string {
	t.Helper()
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	awscdk.Aspects_Of(scope).Add(cdknag.NewServerlessChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	out := map[string][]string{}
	for _, c := range *scope.Node().Children() {
		s, ok := c.(awscdk.Stack)
		if !ok || !*awscdk.Stack_IsStack(c) {
			continue
		}
		var findings []string
		check(t, "synth "+*s.StackName(), func() {
			assertions.Template_FromStack(s, nil) // synthesizes: the aspects run
			if msg := panicMessage(func() {
				assertions.Annotations_FromStack(s).HasNoError(jsii.String("*"), assertions.Match_AnyValue())
			}); msg != "" {
				findings = append(findings, strings.SplitN(msg, "\n", 8)...)
			}
		})
		out[*s.StackName()] = findings
	}
	return out
}

// Every stack synthesizes with cdk-nag clean both environment-agnostic and with an explicit account and region: the
// acknowledgements name ARNs by pseudo parameter and must hold once real values replace them (-c region=…).
func TestEveryStackInAnyEnvironment(t *testing.T) {
	t.Setenv("CDK_DEFAULT_ACCOUNT", testAccount)
	selections := map[string]map[string]string{
		"cross-account": {"CSR_FILE": testCSR(nil, "cross-account.csr")},
		"thing":         {"thing_name": "device1234"},
		"fleet":         {"thing_names": "a,b,c", "fleet_stacks": "2"},
		"platform":      {},
	}
	for name, context := range selections {
		t.Run(name+"/environment-agnostic", func(t *testing.T) {
			for stack, findings := range nagErrors(t, newTestApp(t, nil), context) {
				for _, f := range findings {
					t.Errorf("%s: %s", stack, f)
				}
			}
		})
		t.Run(name+"/account and region", func(t *testing.T) {
			app := newTestApp(t, nil)
			stage := awscdk.NewStage(app, jsii.String("Explicit"), &awscdk.StageProps{
				Env: &awscdk.Environment{Account: jsii.String(testAccount), Region: jsii.String(testRegion)},
			})
			var scope awscdk.App = stage
			for stack, findings := range nagErrors(t, scope, context) {
				for _, f := range findings {
					t.Errorf("%s: %s", stack, f)
				}
			}
		})
	}
	// The per-thing and fleet stacks take their region from -c region=… (and the account from the CLI's profile).
	for name, context := range map[string]map[string]string{
		"thing with -c region": {"thing_name": "device1234", "region": testRegion},
		"fleet with -c region": {"thing_names": "a,b,c", "fleet_stacks": "2", "region": testRegion},
	} {
		t.Run(name, func(t *testing.T) {
			app := newTestApp(t, nil)
			errs := nagErrors(t, app, context)
			for stack, findings := range errs {
				for _, f := range findings {
					t.Errorf("%s: %s", stack, f)
				}
			}
			for _, c := range *app.Node().Children() {
				if s, ok := c.(awscdk.Stack); ok && *awscdk.Stack_IsStack(c) && *s.Region() != testRegion {
					t.Errorf("%s: region %s, want %s", *s.StackName(), *s.Region(), testRegion)
				}
			}
		})
	}
}
