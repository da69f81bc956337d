package policies

import (
	"fmt"
	"strings"
)

// Rule ids, one small function per rule. Broad rules are skipped with CheckOptions.AllowBroad.
const (
	RuleSize           = "iot-policy-size"       // document over MaxDocumentChars
	RuleActionService  = "iot-action-service"    // action outside AWS IoT
	RuleActionWildcard = "iot-action-wildcard"   // broad: wildcard action or NotAction in an Allow
	RuleConnectScope   = "iot-connect-unscoped"  // broad: iot:Connect for any client id
	RuleResourceStar   = "iot-resource-wildcard" // broad: Allow on every resource
	// broad: a wildcard in the resource type ("arn:...:*/*"), which reaches every kind of resource
	RuleResourceType = "iot-resource-type-wildcard"
	// broad: every topic, topic filter, client id or thing ("topic/*", "topicfilter/*", "client/*", "thing/*")
	RuleResourceUnscoped = "iot-resource-unscoped"
	// an identity variable followed by a wildcard ("client/${iot:Connection.Thing.ThingName}*"): the thing "a"
	// reaches the client id, topics or shadow of the thing "ab"
	RuleVariableWildcard = "iot-variable-wildcard"
)

type documentRule struct {
	id    string
	broad bool
	check func(*Document) []string
}

type statementRule struct {
	id    string
	broad bool
	check func(Statement) []string
}

var documentRules = []documentRule{
	{RuleSize, false, ruleSize},
}

var statementRules = []statementRule{
	{RuleActionService, false, ruleActionService},
	{RuleActionWildcard, true, ruleActionWildcard},
	{RuleConnectScope, true, ruleConnectScope},
	{RuleResourceStar, true, ruleResourceStar},
	{RuleResourceType, true, ruleResourceTypeWildcard},
	{RuleResourceUnscoped, true, ruleResourceUnscoped},
	{RuleVariableWildcard, false, ruleVariableWildcard},
}

// ruleSize: AWS IoT refuses documents over 2048 characters, whitespace excluded.
func ruleSize(d *Document) []string {
	if d.Chars > MaxDocumentChars {
		return []string{fmt.Sprintf("document is %d characters without whitespace, AWS IoT allows at most %d", d.Chars, MaxDocumentChars)}
	}
	return nil
}

// iotServices are the action prefixes an AWS IoT policy can grant: the message broker, shadows and
// retained messages ("iot:") and the jobs data plane ("iotjobsdata:").
var iotServices = map[string]bool{"iot": true, "iotjobsdata": true}

// ruleActionService: every action must be an AWS IoT action ("*" alone is left to the wildcard rule).
func ruleActionService(s Statement) []string {
	var out []string
	for _, a := range append(append([]string(nil), s.Action...), s.NotAction...) {
		if a == "*" {
			continue
		}
		if !isIoTAction(a) {
			out = append(out, fmt.Sprintf("action %q is not an AWS IoT action (want iot:<Action>)", a))
		}
	}
	return out
}

func isIoTAction(a string) bool {
	svc, name, ok := strings.Cut(a, ":")
	if !ok || !iotServices[strings.ToLower(svc)] || name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '*' || r == '?') {
			return false
		}
	}
	return true
}

// ruleActionWildcard: an Allow must name its actions; "iot:*", "iot:Pub*" and "*" grant more than
// intended (and every action AWS IoT adds later), and so does NotAction.
func ruleActionWildcard(s Statement) []string {
	if s.Effect != "Allow" {
		return nil
	}
	var out []string
	for _, a := range s.Action {
		if strings.ContainsAny(a, "*?") {
			out = append(out, fmt.Sprintf("action %q is a wildcard, name each action", a))
		}
	}
	for _, a := range s.NotAction {
		out = append(out, fmt.Sprintf("Allow with NotAction %q grants every other action", a))
	}
	return out
}

// ruleConnectScope: iot:Connect must be tied to the connecting identity with a policy variable (or to
// one literal client id), or any holder of the certificate can take over any client id.
func ruleConnectScope(s Statement) []string {
	if s.Effect != "Allow" || !grants(s, "iot:Connect") {
		return nil
	}
	if s.NotResource != nil {
		return []string{fmt.Sprintf("iot:Connect allowed on every resource but %q", s.NotResource[0])}
	}
	var out []string
	for _, r := range s.Resource {
		open := strings.ContainsAny(r, "*?") || strings.Contains(strings.ToLower(r), "${iot:clientid}")
		if !open || hasScopingVariable(r) {
			continue
		}
		out = append(out, fmt.Sprintf("iot:Connect allowed on unscoped resource %q, use client/${iot:Connection.Thing.ThingName}", r))
	}
	return out
}

// hasScopingVariable reports whether r holds an AWS IoT policy variable that names the connecting identity.
// ${iot:ClientId} does not: it is whatever the client sends.
func hasScopingVariable(r string) bool {
	for rest := r; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			return false
		}
		rest = rest[i+2:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return false
		}
		v := strings.ToLower(rest[:end])
		rest = rest[end+1:]
		if strings.HasPrefix(v, "iot:") && v != "iot:clientid" {
			return true
		}
	}
}

// ruleResourceStar: an Allow on "*" (or on every resource of an account) reaches other things' topics,
// shadows and client ids.
func ruleResourceStar(s Statement) []string {
	if s.Effect != "Allow" {
		return nil
	}
	if s.NotResource != nil {
		return []string{fmt.Sprintf("Allow with NotResource %q grants every other resource", s.NotResource[0])}
	}
	var out []string
	for _, r := range s.Resource {
		if isEveryResource(r) {
			out = append(out, fmt.Sprintf("Allow on every resource %q, name the resources", r))
		}
	}
	return out
}

func isEveryResource(r string) bool {
	if r == "*" {
		return true
	}
	// arn:partition:service:region:account:resource
	parts := strings.SplitN(r, ":", 6)
	return len(parts) == 6 && strings.Trim(parts[5], "*") == ""
}

// grants reports whether the statement's Action list matches action, wildcards included.
func grants(s Statement, action string) bool {
	for _, a := range s.Action {
		if globMatch(strings.ToLower(a), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern p, where '*' matches any run of characters and '?' one character.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// splitResource returns the resource type and name of an ARN ("arn:aws:iot:r:a:topic/x" gives "topic", "x").
// ok is false for "*" and for ARNs without a typed resource part.
func splitResource(r string) (typ, name string, ok bool) {
	parts := strings.SplitN(r, ":", 6)
	if len(parts) != 6 {
		return "", "", false
	}
	return strings.Cut(parts[5], "/")
}

// ruleResourceTypeWildcard: the resource type must be literal. "arn:...:*/*" or "t*/x" matches topics, topic
// filters, client ids and things at once, so one statement grants far more than its author read into it.
func ruleResourceTypeWildcard(s Statement) []string {
	if s.Effect != "Allow" {
		return nil
	}
	var out []string
	for _, r := range s.Resource {
		if typ, _, ok := splitResource(r); ok && strings.ContainsAny(typ, "*?") {
			out = append(out, fmt.Sprintf("resource %q has a wildcard in its resource type, name the type (topic, topicfilter, client, thing)", r))
		}
	}
	return out
}

// unscopedTypes are the resource types whose all-wildcard name reaches every device of the account.
var unscopedTypes = map[string]bool{"topic": true, "topicfilter": true, "client": true, "thing": true}

// ruleResourceUnscoped: "topic/*", "topicfilter/*", "client/*" or "thing/*" (or a name of nothing but wildcards
// and slashes) reaches every device's topics, client id or shadow.
func ruleResourceUnscoped(s Statement) []string {
	if s.Effect != "Allow" {
		return nil
	}
	var out []string
	for _, r := range s.Resource {
		typ, name, ok := splitResource(r)
		if !ok || !unscopedTypes[strings.ToLower(typ)] {
			continue
		}
		if strings.EqualFold(typ, "client") && grants(s, "iot:Connect") {
			continue // reported by ruleConnectScope
		}
		if strings.Trim(name, "*?/") == "" && strings.ContainsAny(name, "*?") {
			out = append(out, fmt.Sprintf("resource %q is every %s of the account, scope it (a prefix or ${iot:Connection.Thing.ThingName})", r, typ))
		}
	}
	return out
}

// ruleVariableWildcard: an identity variable followed, within the characters a thing name may hold
// ([a-zA-Z0-9:_-]), by a wildcard matches other identities too: "client/${iot:Connection.Thing.ThingName}*" lets
// the thing "a" connect as "ab". A separator that a thing name cannot hold ("/") ends the variable's reach.
func ruleVariableWildcard(s Statement) []string {
	if s.Effect != "Allow" {
		return nil
	}
	var out []string
	for _, r := range s.Resource {
		for rest := r; ; {
			i := strings.Index(rest, "${")
			if i < 0 {
				break
			}
			rest = rest[i+2:]
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				break
			}
			v := rest[:end]
			rest = rest[end+1:]
			if !hasScopingVariable("${" + v + "}") {
				continue
			}
			after := strings.TrimLeft(rest, thingNameChars)
			if after != "" && (after[0] == '*' || after[0] == '?') {
				out = append(out, fmt.Sprintf("resource %q follows ${%s} with a wildcard, which also matches other things' names", r, v))
				break
			}
		}
	}
	return out
}

const thingNameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-"
