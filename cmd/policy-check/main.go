// Command policy-check answers questions about an AWS IoT policy document offline, with AWS IoT's documented
// evaluation semantics (package policies):
//
//	policy-check -policy p.json -thing T -action iot:Publish -resource topic/x
//	policy-check -policy p.json -thing T -audit
//	policy-check -policy p.json -audit -partner-topic TOPIC [-client-id C]
//
// The first prints Allow or Deny and the statement that decided; the second everything the device T may do beyond its
// own identity; the third everything a cross-account partner certificate may do beyond publishing to its agreed topic.
// Exit status: 0 allowed or clean, 1 denied or findings, 2 usage or a policy it cannot read.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/policies"
)

var tool = cli.Tool{
	Name: "policy-check",
	Synopsis: `policy-check -policy FILE [-thing T] [-client-id C] -action ACTION -resource RESOURCE
	policy-check -policy FILE -thing T -audit
	policy-check -policy FILE -audit -partner-topic TOPIC [-client-id C]`,
	About: `evaluates an AWS IoT policy offline, as AWS IoT documents it: explicit Deny first, then Allow, else
deny; "*" and "?" as wildcards and MQTT's "+" and "#" as plain characters; policy variables substituted for the
principal (thing name, client id, certificate subject, IsAttached; one with no value matches nothing); the IAM condition
operators. With -action and -resource it prints Allow or Deny and the statement that decided. With -audit it prints
what the thing may do beyond its own identity: another client id, other devices' topics, shadow or jobs, every
resource of a type, actions no statement names, a "personal" resource every device shares (other devices are assumed
to share the certificate's organization and the thing type). With -partner-topic, -audit asks instead what a
cross-account partner certificate may do beyond publishing to that topic. A short resource (topic/x, topicfilter/x,
client/x, thing/x) is expanded to an ARN of -partition, -region and -account, which also replace the
${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId} placeholders of the app's policy files. No AWS account or
certificate is needed. Exit status: 0 allowed or clean, 1 denied or findings, 2 usage or an unreadable policy.`,
	Examples: []string{
		"policy-check -policy policies/thing-default.json -thing sensor-1 -action iot:Publish -resource topic/things/sensor-1/temp",
		"policy-check -policy policies/thing-default.json -thing sensor-1 -action iot:Connect -resource client/sensor-2",
		"policy-check -policy policies/vending-device.json -thing sensor-1 -audit",
		"policy-check -policy testdata/crossaccount/partner-policy.json -audit -partner-topic producer1/data -client-id producer-1",
	},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// resourceTypes are the AWS IoT resource types a short resource may name.
var resourceTypes = []string{"topic", "topicfilter", "client", "thing", "rolealias", "cert"}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy-check", flag.ContinueOnError)
	policyFile := fs.String("policy", "", "the policy document, JSON (required)")
	thing := fs.String("thing", "", "the thing the certificate is attached to: ${iot:Connection.Thing.ThingName} (required with -audit on a device)")
	clientID := fs.String("client-id", "", "the MQTT client id: ${iot:ClientId} (default: the thing name; for iot:Connect, the client id of the resource)")
	action := fs.String("action", "", "the action to ask about, e.g. iot:Publish")
	resource := fs.String("resource", "", "the resource: an ARN or a short form such as topic/x, topicfilter/x, client/x, thing/x")
	audit := fs.Bool("audit", false, "print what the principal may do beyond its own identity")
	partnerTopic := fs.String("partner-topic", "", "with -audit: the topic a cross-account partner certificate was agreed to publish to")
	attached := fs.Bool("attached", true, "whether the certificate is attached to the thing: ${iot:Connection.Thing.IsAttached}")
	subject := fs.String("subject", "", "certificate subject fields as Name=value pairs, comma-separated, e.g. Organization=Acme,Country=DE (CommonName defaults to the thing name)")
	partition := fs.String("partition", policies.ProbePartition, "partition of short resources and of ${AWS::Partition}")
	region := fs.String("region", policies.ProbeRegion, "region of short resources and of ${AWS::Region}")
	account := fs.String("account", policies.ProbeAccount, "account of short resources and of ${AWS::AccountId}")
	if code, done := tool.Parse(fs, args, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return tool.UsageError(stderr, "unexpected argument %q", fs.Arg(0))
	case *policyFile == "":
		return tool.UsageError(stderr, "-policy is required")
	case *audit && (*action != "" || *resource != ""):
		return tool.UsageError(stderr, "-audit asks every question itself: leave out -action and -resource")
	case *audit && *partnerTopic == "" && *thing == "":
		return tool.UsageError(stderr, "-audit needs -thing (or -partner-topic for a partner certificate)")
	case !*audit && *partnerTopic != "":
		return tool.UsageError(stderr, "-partner-topic goes with -audit")
	case !*audit && (*action == "" || *resource == ""):
		return tool.UsageError(stderr, "give -action and -resource, or -audit")
	case !*audit && !strings.Contains(*action, ":"):
		return tool.UsageError(stderr, "-action %q is not an action: write service:Name, e.g. iot:Publish", *action)
	}
	fields, err := parseSubject(*subject)
	if err != nil {
		return tool.UsageError(stderr, "-subject: %v", err)
	}
	for _, v := range []struct{ name, value string }{{"partition", *partition}, {"region", *region}, {"account", *account}} {
		if v.value == "" || strings.ContainsAny(v.value, ":/*?${}") {
			return tool.UsageError(stderr, "-%s %q is not valid", v.name, v.value)
		}
	}
	raw, err := os.ReadFile(*policyFile)
	if err != nil {
		fmt.Fprintf(stderr, "policy-check: %v\n", err)
		return cli.ExitUsage
	}
	d, err := readPolicy(raw, *partition, *region, *account)
	if err != nil {
		fmt.Fprintf(stderr, "policy-check: %s: %v\n", *policyFile, err)
		return cli.ExitUsage
	}
	if *audit {
		return runAudit(stdout, stderr, d, *thing, *partnerTopic, *clientID)
	}
	arn, err := expandResource(*resource, *partition, *region, *account)
	if err != nil {
		return tool.UsageError(stderr, "-resource: %v", err)
	}
	p := policies.Principal{ThingName: *thing, IsAttached: *attached && *thing != "", ClientID: *clientID, Subject: fields}
	if _, ok := p.Subject["CommonName"]; !ok && *thing != "" {
		p.Subject["CommonName"] = *thing
	}
	if p.ClientID == "" {
		p.ClientID = *thing
		if prefix := "client/"; strings.HasPrefix(shortName(arn), prefix) && strings.EqualFold(*action, "iot:Connect") {
			p.ClientID = strings.TrimPrefix(shortName(arn), prefix)
		}
	}
	dec, err := d.Evaluate(policies.Request{Principal: p, Action: *action, Resource: arn})
	if err != nil {
		fmt.Fprintf(stderr, "policy-check: %s: %v\n", *policyFile, err)
		return cli.ExitUsage
	}
	who := "no thing"
	if *thing != "" {
		who = "thing " + *thing
	}
	fmt.Fprintf(stdout, "%s\n  %s on %s, for %s, client id %q\n", dec, *action, arn, who, p.ClientID)
	if dec.Allowed {
		return 0
	}
	return 1
}

// readPolicy renders the app's placeholders and parses the document.
func readPolicy(raw []byte, partition, region, account string) (*policies.Document, error) {
	if _, err := policies.Parse(raw); err != nil {
		return nil, err
	}
	rendered, err := policies.Render(raw, partition, region, account)
	if err != nil {
		return nil, err
	}
	return policies.Parse(rendered)
}

func runAudit(stdout, stderr io.Writer, d *policies.Document, thing, partnerTopic, clientID string) int {
	var findings []policies.Finding
	var err error
	subject := "thing " + thing
	if partnerTopic != "" {
		subject = fmt.Sprintf("the partner certificate of topic %q", partnerTopic)
		findings, err = policies.AuditPartner(d, partnerTopic, clientID)
	} else {
		findings, err = policies.AuditDevice(d, thing)
	}
	if err != nil {
		fmt.Fprintf(stderr, "policy-check: %v\n", err)
		return cli.ExitUsage
	}
	if len(findings) == 0 {
		if partnerTopic != "" {
			fmt.Fprintf(stdout, "clean: %s may do nothing beyond publishing to its topic%s\n", subject, clientSuffix(clientID))
		} else {
			fmt.Fprintf(stdout, "clean: %s may do nothing beyond its own identity\n", subject)
		}
		return 0
	}
	noun := "findings"
	if len(findings) == 1 {
		noun = "finding"
	}
	fmt.Fprintf(stdout, "%s may do more than its own (%d %s):\n", subject, len(findings), noun)
	for _, f := range findings {
		fmt.Fprintf(stdout, "  %s\n", f)
		if f.Resource != "" {
			fmt.Fprintf(stdout, "      e.g. %s on %s\n", f.Action, f.Resource)
		}
	}
	return 1
}

func clientSuffix(clientID string) string {
	if clientID == "" {
		return ""
	}
	return fmt.Sprintf(" and connecting as %q", clientID)
}

// expandResource turns a short resource (topic/x) into an ARN; an ARN or "*" is used as given.
func expandResource(r, partition, region, account string) (string, error) {
	if strings.HasPrefix(r, "arn:") || r == "*" {
		return r, nil
	}
	typ, _, ok := strings.Cut(r, "/")
	for _, t := range resourceTypes {
		if ok && typ == t {
			return "arn:" + partition + ":iot:" + region + ":" + account + ":" + r, nil
		}
	}
	return "", fmt.Errorf("%q is neither an ARN nor <type>/<name> with type %s", r, strings.Join(resourceTypes, ", "))
}

// shortName is the resource part of an ARN ("topic/x").
func shortName(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return arn
	}
	return parts[5]
}

func parseSubject(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errors.New("want Name=value pairs separated by commas, e.g. Organization=Acme")
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}
