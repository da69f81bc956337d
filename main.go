// Command iotcert is the CDK app. It reads context and environment once, decides which stacks this run defines (see
// internal/selection), defines them and synthesizes. It defines no resources itself.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
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
	// Everything the user configured (command line, cdk.json, environment, the stacks asked for) is judged in pure Go
	// first: a mistake costs no jsii start and no Lambda build (scripts/cdk-app.sh runs this part alone first).
	j, err := judge()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	switch os.Getenv("IOTCERT_MODE") {
	case "check":
		return 0
	case "ls":
		printStacks(os.Stdout, j.Stacks)
		return 0
	}
	// No stack traces in the assembly's metadata: under jsii they all point into the runtime's bundled program.js
	// (e.g. "../jsii-runtime.123/lib/program.js:1:5565"), which the CLI prints above an annotation and which helps no one.
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]interface{}{"aws:cdk:disable-stack-trace": true}})
	if err := stacks.Define(app, j.Selection, j.Context); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	if err := sameStacks(app, j.Stacks); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	// cdk-nag's AwsSolutions and Serverless packs: their errors fail `cdk synth` (-c nag=false turns them off).
	if v, _ := j.Context("nag"); strings.TrimSpace(v) != "false" {
		awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
		awscdk.Aspects_Of(app).Add(cdknag.NewServerlessChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	}
	app.Synth(nil)
	// A Private CA costs from the hour it is created: say so on every synth of a stack that holds one.
	for _, s := range j.Requested {
		if s.PrivateCA != "" {
			fmt.Fprintf(os.Stderr, "cost: %s holds a %s AWS Private CA: USD %.0f a month while it exists (%s)\n",
				s.Name, s.PrivateCA, caPrice(s.PrivateCA), selection.PricingCA)
		}
	}
	return 0
}

func caPrice(mode string) float64 {
	if mode == "short-lived" {
		return selection.PriceCAShortLived
	}
	return selection.PriceCAGeneralPurpose
}

// judge reads the context the CLI passes, the standing configuration and the stacks asked for, and judges them.
func judge() (selection.Judgement, error) {
	all, err := selection.ReadCDKContext(os.LookupEnv, os.ReadFile)
	if err != nil {
		return selection.Judgement{}, err
	}
	home, _ := os.UserHomeDir()
	standing, err := selection.StandingSources(".", home)
	if err != nil {
		return selection.Judgement{}, err
	}
	// Keys the CLI has but the run does not (a standing key overridden to null) are not standing here.
	for k := range standing {
		if _, ok := all[k]; !ok {
			delete(standing, k)
		}
	}
	return selection.Judge(selection.Input{Context: all, Standing: standing, Env: os.LookupEnv, ReadFile: os.ReadFile,
		Requested: requestedStacks()})
}

// sameStacks checks the stacks the app defined against the list the selection package keeps (used before jsii starts
// for `make ls`, mistyped stack names and the cost notes): a stack added to one and not the other fails every synth.
func sameStacks(app awscdk.App, want []selection.Stack) error {
	var got, listed []string
	for _, c := range *app.Node().Children() {
		if *awscdk.Stack_IsStack(c) {
			got = append(got, *awscdk.Stack_Of(c).StackName())
		}
	}
	for _, s := range want {
		listed = append(listed, s.Name)
	}
	sort.Strings(got)
	sort.Strings(listed)
	if strings.Join(got, ",") != strings.Join(listed, ",") {
		return fmt.Errorf("the app defines the stacks %s, but internal/selection/stacks.go lists %s for this selection: add the stack there",
			strings.Join(got, ", "), strings.Join(listed, ", "))
	}
	return nil
}

// printStacks writes the stacks of a selection with their fixed monthly cost and what a destroy leaves behind.
func printStacks(w io.Writer, list []selection.Stack) {
	for _, s := range list {
		fmt.Fprintf(w, "%s\n      fixed cost: USD %.2f a month (%s)\n", s.Name, s.Monthly, s.Cost)
		if s.Leaves != "" {
			fmt.Fprintf(w, "      cdk destroy leaves: %s\n", s.Leaves)
		} else {
			fmt.Fprintf(w, "      cdk destroy leaves: nothing\n")
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
