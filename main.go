// Command iotcert is the CDK app. It reads context and environment once, decides which stacks this run defines (see
// internal/selection), defines them and synthesizes. It defines no resources itself.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/stacks"
)

func main() {
	endFilter := filterStderr()
	code := run()
	// Setup runs the app once with a linger so that jsii finishes writing its runtime index in the background:
	// without the index every later synth is about three times slower.
	if d, err := time.ParseDuration(os.Getenv("IOTCERT_LINGER")); err == nil {
		time.Sleep(d)
	}
	jsii.Close()
	endFilter()
	os.Exit(code)
}

func run() (code int) {
	// Synth-time validation panics with a one-line message (CDK style); the user sees that line, not a stack trace.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", firstLine(fmt.Sprint(r)))
			code = 1
		}
	}()
	// No stack traces in the assembly's metadata: under jsii they all point into the runtime's bundled program.js
	// (e.g. "../jsii-runtime.123/lib/program.js:1:5565"), which the CLI prints above an annotation and which helps no one.
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]interface{}{"aws:cdk:disable-stack-trace": true}})
	ctx := contextLookup(app)
	typed, standing, err := typedContextKeys(app)
	if err == nil {
		err = selection.CheckUnknown(typed)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	ctx = selection.PreferTyped(ctx, os.LookupEnv, standing)
	sel, err := selection.Select(ctx, os.LookupEnv)
	if err == nil {
		err = selection.CheckKeys(typed, sel.Kind)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	if err := stacks.Define(app, sel, ctx); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	// cdk-nag's AwsSolutions and Serverless packs: their errors fail `cdk synth` (-c nag=false turns them off).
	if v, _ := ctx("nag"); v != "false" {
		awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
		awscdk.Aspects_Of(app).Add(cdknag.NewServerlessChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	}
	app.Synth(nil)
	return 0
}

// contextLookup reads CDK context values as strings; a key that is absent (or JSON null) is "not given".
func contextLookup(app awscdk.App) selection.Lookup {
	return func(key string) (string, bool) {
		v := app.Node().TryGetContext(jsii.String(key))
		switch t := v.(type) {
		case nil:
			return "", false
		case string:
			return t, true
		case []interface{}:
			parts := make([]string, len(t))
			for i, e := range t {
				parts[i] = fmt.Sprint(e)
			}
			return strings.Join(parts, ","), true
		default:
			return fmt.Sprint(t), true
		}
	}
}

// typedContextKeys returns the context keys of this run that the user typed (with -c or --context): every key except
// the CDK's own and the standing configuration kept in cdk.json (or ~/.cdk.json), which the app reads itself since the
// CLI merges all sources into one.
func typedContextKeys(app awscdk.App) (typed []string, standing map[string]bool, err error) {
	all, _ := app.Node().GetAllContext(nil).(map[string]interface{})
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	home, _ := os.UserHomeDir()
	if standing, err = selection.StandingKeys(".", home); err != nil {
		return nil, nil, err
	}
	return selection.TypedKeys(names, standing), standing, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
