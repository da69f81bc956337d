// Package policies holds the AWS IoT policy documents of the app and the pure-Go checks that every
// policy document (shipped, user-supplied or synthesized) must pass.
//
// # Placeholders
//
// Shipped documents name their partition, region and account with the CloudFormation pseudo-parameter
// spelling ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId}, and use AWS IoT policy variables such
// as ${iot:Connection.Thing.ThingName} unescaped. They are NOT meant to go through CloudFormation Fn::Sub
// (which would try to resolve the IoT variables). Instead, [Render] replaces the three pseudo-parameter
// placeholders, and nothing else, with the values it is given: literal strings ("aws", "us-east-2",
// "123456789012") or CDK token strings (awscdk.Aws_REGION() and friends), which CDK later resolves inside the
// template. IoT policy variables pass through untouched, exactly as AWS IoT expects them.
package policies

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

//go:embed thing-default.json
var thingDefault []byte

// Placeholders replaced by [Render].
const (
	PartitionPlaceholder = "${AWS::Partition}"
	RegionPlaceholder    = "${AWS::Region}"
	AccountPlaceholder   = "${AWS::AccountId}"
)

// DefaultThingPolicy returns a copy of the default least-privilege policy for one thing, with placeholders
// (see the package documentation). A thing may connect only with its own thing name as client id and only
// while its certificate is attached to it, and may publish, receive and subscribe only on
// things/<thing name>/... and on its own device shadow topics.
func DefaultThingPolicy() []byte {
	return bytes.Clone(thingDefault)
}

// Render replaces the ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId} placeholders in every string
// of the JSON document doc and returns the re-encoded, compact document. Values are inserted as JSON string
// content, so they cannot change the structure of the document. Other ${...} sequences are left as they are.
func Render(doc []byte, partition, region, account string) ([]byte, error) {
	v, err := render(doc, partition, region, account)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ThingPolicy returns the default thing policy rendered for partition, region and account (see [Render]),
// decoded into the generic form a CloudFormation PolicyDocument property takes.
func ThingPolicy(partition, region, account string) (map[string]any, error) {
	v, err := render(thingDefault, partition, region, account)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("policies: default thing policy is not a JSON object")
	}
	return m, nil
}

func render(doc []byte, partition, region, account string) (any, error) {
	for _, p := range []struct{ name, v string }{{"partition", partition}, {"region", region}, {"account", account}} {
		if p.v == "" {
			return nil, fmt.Errorf("policies: render: %s must not be empty", p.name)
		}
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("policies: render: %w", err)
	}
	r := strings.NewReplacer(PartitionPlaceholder, partition, RegionPlaceholder, region, AccountPlaceholder, account)
	return mapStrings(v, r.Replace), nil
}

// mapStrings applies f to every string value (not to object keys) of a decoded JSON value.
func mapStrings(v any, f func(string) string) any {
	switch t := v.(type) {
	case string:
		return f(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = mapStrings(e, f)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = mapStrings(e, f)
		}
		return out
	default:
		return v
	}
}
