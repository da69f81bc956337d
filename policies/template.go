package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// CheckValue checks a policy document given in decoded form, as it appears in a CloudFormation template's
// PolicyDocument property: a JSON object (or a JSON string holding one) whose strings may be CloudFormation
// intrinsic functions. Intrinsics are flattened to placeholder text first: {"Ref": "X"} becomes "${X}",
// Fn::Join is joined, Fn::Sub keeps its text (with "${!x}" unescaped to "${x}"), Fn::GetAtt becomes
// "${Res.Attr}", any other intrinsic becomes "${Fn::Name}". Placeholders are never AWS IoT policy
// variables, so they never count as scoping a resource.
func CheckValue(v any, opts CheckOptions) (*Document, error) {
	b, err := valueText(v)
	if err != nil {
		return nil, err
	}
	return Check(b, opts)
}

// ParseValue reads a policy document in the decoded form [CheckValue] takes, checking only its form ([Parse]): the
// document to evaluate or audit, e.g. a partner policy with [AuditPartner].
func ParseValue(v any) (*Document, error) {
	b, err := valueText(v)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// valueText is a decoded policy document as JSON text, its intrinsic functions flattened to placeholder text.
func valueText(v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	b, err := json.Marshal(flattenIntrinsics(v))
	if err != nil {
		return nil, fmt.Errorf("iot policy: encode document: %w", err)
	}
	return b, nil
}

// CheckTemplate checks the PolicyDocument of every AWS::IoT::Policy in a synthesized CloudFormation
// template (JSON) and returns how many it checked. The error names the logical id of each failing policy.
func CheckTemplate(template []byte, opts CheckOptions) (int, error) {
	var t struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(template, &t); err != nil {
		return 0, fmt.Errorf("read template: %w", err)
	}
	ids := make([]string, 0, len(t.Resources))
	for id, r := range t.Resources {
		if r.Type == "AWS::IoT::Policy" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var errs []error
	// A fleet's stacks carry the same document many times: each distinct one is checked once.
	checked := map[string]error{}
	for _, id := range ids {
		doc, ok := t.Resources[id].Properties["PolicyDocument"]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no PolicyDocument", id))
			continue
		}
		key, _ := json.Marshal(doc)
		err, seen := checked[string(key)]
		if !seen {
			_, err = CheckValue(doc, opts)
			checked[string(key)] = err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	return len(ids), errors.Join(errs...)
}

func flattenIntrinsics(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = flattenIntrinsics(e)
		}
		return out
	case map[string]any:
		if s, ok := intrinsicText(t); ok {
			return s
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = flattenIntrinsics(e)
		}
		return out
	default:
		return v
	}
}

// intrinsicText renders a one-key intrinsic-function object as text.
func intrinsicText(m map[string]any) (string, bool) {
	if len(m) != 1 {
		return "", false
	}
	for k, arg := range m {
		switch {
		case k == "Ref":
			return "${" + fmt.Sprint(arg) + "}", true
		case k == "Fn::Join":
			a, ok := arg.([]any)
			if !ok || len(a) != 2 {
				return "${Fn::Join}", true
			}
			sep, _ := a[0].(string)
			parts, ok := a[1].([]any)
			if !ok {
				return "${Fn::Join}", true
			}
			var b strings.Builder
			for i, p := range parts {
				if i > 0 {
					b.WriteString(sep)
				}
				b.WriteString(text(p))
			}
			return b.String(), true
		case k == "Fn::Sub":
			s, _ := arg.(string)
			if a, ok := arg.([]any); ok && len(a) > 0 {
				s, _ = a[0].(string)
			}
			return strings.ReplaceAll(s, "${!", "${"), true
		case k == "Fn::GetAtt":
			if a, ok := arg.([]any); ok && len(a) == 2 {
				return "${" + text(a[0]) + "." + text(a[1]) + "}", true
			}
			if s, ok := arg.(string); ok {
				return "${" + s + "}", true
			}
			return "${Fn::GetAtt}", true
		case strings.HasPrefix(k, "Fn::"):
			return "${" + k + "}", true
		}
	}
	return "", false
}

func text(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		if s, ok := intrinsicText(t); ok {
			return s
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}
