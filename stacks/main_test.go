package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
)

// TestMain prepares the one jsii process this test binary uses: the offline CloudFormation validator off (it costs
// seconds per synth and the synth check runs it as errors), the Lambda binaries built (the assets must exist to be
// fingerprinted), and jsii closed once at the end.
func TestMain(m *testing.M) {
	// jsii snapshots the environment when its runtime starts: re-run this binary with the validator off.
	if os.Getenv("CDK_VALIDATION") != "false" {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), "CDK_VALIDATION=false")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	root := iotcert.ModuleRoot()
	build := exec.Command(filepath.Join(root, "scripts", "build-lambdas.sh"))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build Lambda binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	jsii.Close()
	for _, d := range outdirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// outdirs are the cloud assemblies the tests wrote, removed when the binary ends.
var outdirs []string

// projectContext is the context of cdk.json (the feature flags a user's synth runs with).
var projectContext = sync.OnceValue(func() map[string]interface{} {
	data, err := os.ReadFile(filepath.Join(iotcert.ModuleRoot(), "cdk.json"))
	if err != nil {
		panic(err)
	}
	var c struct {
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		panic(fmt.Sprintf("cdk.json: %v", err))
	}
	return c.Context
})

// newTestApp is an App for unit tests with cdk.json's context: bundling skipped, assets fingerprinted in place
// instead of copied.
func newTestApp(_ testing.TB, context map[string]interface{}) awscdk.App {
	ctx := map[string]interface{}{
		"aws:cdk:bundling-stacks":       []string{},
		"aws:cdk:disable-asset-staging": true,
	}
	for k, v := range projectContext() {
		ctx[k] = v
	}
	for k, v := range context {
		ctx[k] = v
	}
	dir, err := os.MkdirTemp("", "cdk.out-")
	if err != nil {
		panic(err)
	}
	outdirs = append(outdirs, dir)
	return awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(dir)})
}

// check runs one jsii assertion. A failed assertion is a Go panic carrying the JavaScript error; recovering it here
// reports the failure on t and lets the other assertions run.
func check(t *testing.T, what string, assertion func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	assertion()
}

// panicMessage runs f and returns the message it panicked with ("" if it did not).
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// templateJSON returns the synthesized template as a Go value for checks that the assertions library cannot express.
func templateJSON(tpl assertions.Template) map[string]interface{} {
	return (*tpl.ToJSON())
}

// resourcesOfType returns the logical ids and properties of every resource of type typ.
func resourcesOfType(tpl assertions.Template, typ string) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	res, _ := templateJSON(tpl)["Resources"].(map[string]interface{})
	for id, r := range res {
		rm, _ := r.(map[string]interface{})
		if rm["Type"] == typ {
			props, _ := rm["Properties"].(map[string]interface{})
			out[id] = props
		}
	}
	return out
}

func mustJSON(v interface{}) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
