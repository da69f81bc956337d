// Package stacks defines the app's stacks, one file per capability, and Define, which picks the stacks one run of
// the app defines from the selection made in main.go.
package stacks

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/selection"
)

// Define defines the stacks that sel asks for. ctx reads further context keys (the options of each capability).
func Define(app awscdk.App, sel selection.Selection, ctx selection.Lookup) error {
	switch sel.Kind {
	case selection.CrossAccount:
		props, err := crossAccountPropsFromContext(sel, ctx)
		if err != nil {
			return err
		}
		NewCrossAccountStack(app, props.StackName(), props)
	case selection.Thing, selection.Fleet:
		return defineThings(app, sel, ctx)
	case selection.Platform:
		return definePlatform(app, ctx)
	}
	return nil
}

// iotArn is the ARN of an AWS IoT resource of the stack's account and region, e.g. iotArn(stack, "cert", "*").
func iotArn(stack awscdk.Stack, resource, name string) *string {
	return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Resource: jsii.String(resource), ResourceName: jsii.String(name)})
}

// optString returns a context value or def when the key is absent or blank.
func optString(ctx selection.Lookup, key, def string) string {
	if v, ok := ctx(key); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// optBool reads a true/false context value; anything else is an error that names the key and the value.
func optBool(ctx selection.Lookup, key string) (bool, error) {
	v, ok := ctx(key)
	if !ok || strings.TrimSpace(v) == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("context %s must be true or false, got %q", key, v)
	}
	return b, nil
}

// optInt reads an integer context value within [lo, hi].
func optInt(ctx selection.Lookup, key string, def, lo, hi int) (int, error) {
	v, ok := ctx(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("context %s must be a whole number from %d to %d, got %q", key, lo, hi, v)
	}
	return n, nil
}
