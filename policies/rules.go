package policies

import (
	"fmt"
	"sort"
	"strings"
)

// Rule ids. The form rules (size, AWS IoT actions only, condition operators the evaluator knows) look at the text;
// every other rule is a question asked of the evaluator (audit.go). Broad rules are skipped with
// CheckOptions.AllowBroad: they report access that does not depend on the device's identity at all.
const (
	RuleSize             = "iot-policy-size"           // document over MaxDocumentChars
	RuleActionService    = "iot-action-service"        // action outside AWS IoT
	RuleCondition        = "iot-condition-unsupported" // a condition the evaluator cannot judge
	RuleActionWildcard   = "iot-action-wildcard"       // broad: an Allow grants actions it does not name
	RuleConnectScope     = "iot-connect-unscoped"      // broad: iot:Connect as another device's or any client id
	RuleResourceStar     = "iot-resource-wildcard"     // broad: an action on every resource of a type
	RuleResourceUnscoped = "iot-resource-unscoped"     // broad: another device's topics, shadow, jobs or client id
	// another device's client id, topics, shadow or jobs reached through the device's own identity: a policy variable
	// with a wildcard before, after or around it ("client/*${iot:Connection.Thing.ThingName}": thing "b" connects as "ab")
	RuleVariableWildcard = "iot-variable-wildcard"
	// a resource written with a policy variable that holds a value all devices share (the certificate's organization,
	// the thing type), so it is not an identity
	RuleSharedIdentity = "iot-shared-identity"
	// the partner policy of the cross-account stack allows more than publishing to the agreed topic
	RulePartnerScope = "iot-partner-scope"
)

// broadRules report access that does not depend on who the device is: a lab may accept it on purpose.
var broadRules = map[string]bool{RuleActionWildcard: true, RuleConnectScope: true, RuleResourceStar: true, RuleResourceUnscoped: true}

// IsBroadRule reports whether CheckOptions.AllowBroad waives findings of the rule.
func IsBroadRule(id string) bool { return broadRules[id] }

type documentRule struct {
	id    string
	check func(*Document) []string
}

type statementRule struct {
	id    string
	check func(Statement) []string
}

var documentRules = []documentRule{
	{RuleSize, ruleSize},
}

var statementRules = []statementRule{
	{RuleActionService, ruleActionService},
	{RuleCondition, ruleCondition},
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

// ruleCondition: every condition operator must be one the evaluator judges, or no question about the policy could
// be answered.
func ruleCondition(s Statement) []string {
	ops := make([]string, 0, len(s.Condition))
	for op := range s.Condition {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var out []string
	for _, op := range ops {
		if !ConditionOperatorKnown(op) {
			out = append(out, fmt.Sprintf("condition operator %q is not one the checker evaluates", op))
			continue
		}
		block, ok := s.Condition[op].(map[string]any)
		if !ok {
			out = append(out, fmt.Sprintf("condition %s is %s, want an object of keys and values", op, jsonKind(s.Condition[op])))
			continue
		}
		for k, v := range block {
			if _, err := conditionValues(v); err != nil {
				out = append(out, fmt.Sprintf("condition %s %s: %v", op, k, err))
			}
		}
	}
	return out
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
