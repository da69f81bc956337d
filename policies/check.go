package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDocumentChars is the AWS IoT limit on a policy document: 2048 characters, not counting whitespace
// (CreatePolicy / CreatePolicyVersion API reference: "maximum length of 2048, excluding whitespace").
const MaxDocumentChars = 2048

// CheckOptions tunes [Check].
type CheckOptions struct {
	// AllowBroad accepts access that does not depend on the device's identity: wildcard actions, every resource
	// of a type, any client id, other devices' topics for every device alike (the rules [IsBroadRule] names). The
	// other checks still apply: JSON, structure, AWS IoT actions only, size, conditions the evaluator can judge, and
	// the identity rules (a variable beside a wildcard, a variable every device shares).
	AllowBroad bool
}

// Document is a parsed AWS IoT policy document, with every Action/Resource normalised to a list.
type Document struct {
	Version   string
	Statement []Statement
	// Chars is the length of the document in characters, not counting whitespace.
	Chars int
}

// Statement is one statement of a [Document].
type Statement struct {
	Sid         string
	Effect      string // "Allow" or "Deny"
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	Condition   map[string]any
}

// Finding is one problem found by [Check].
type Finding struct {
	Rule      string // rule id, e.g. "iot-action-wildcard"
	Statement int    // 1-based statement number; 0 for the whole document
	Message   string // names the problem and the bad value
	// Action and Resource are, for a finding of the evaluator's questions, one request the policy allows that shows
	// it (the first one found); empty otherwise.
	Action, Resource string
}

func (f Finding) String() string {
	if f.Statement > 0 {
		return fmt.Sprintf("statement %d: %s [%s]", f.Statement, f.Message, f.Rule)
	}
	return fmt.Sprintf("%s [%s]", f.Message, f.Rule)
}

// Error is the error returned by [Check]: every finding, on one line.
type Error struct {
	Findings []Finding
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		parts[i] = f.String()
	}
	return "iot policy: " + strings.Join(parts, "; ")
}

// HasRule reports whether one of the findings comes from the rule with the given id.
func (e *Error) HasRule(id string) bool {
	for _, f := range e.Findings {
		if f.Rule == id {
			return true
		}
	}
	return false
}

// Rule ids for problems with the document's form (the policy rules are listed in rules.go).
const (
	RuleJSON      = "json"
	RuleStructure = "structure"
)

// Check parses doc as an AWS IoT policy document and applies every rule to it. The error, if any, is an
// *[Error] listing each problem on one line. The Document is returned only when there is no error.
func Check(doc []byte, opts CheckOptions) (*Document, error) {
	d, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	var findings []Finding
	for _, r := range documentRules {
		for _, msg := range r.check(d) {
			findings = append(findings, Finding{Rule: r.id, Message: msg})
		}
	}
	judgeable := true
	for i, s := range d.Statement {
		for _, r := range statementRules {
			for _, msg := range r.check(s) {
				findings = append(findings, Finding{Rule: r.id, Statement: i + 1, Message: msg})
				judgeable = judgeable && r.id != RuleCondition
			}
		}
	}
	if judgeable {
		audit, err := AuditDevice(d, CheckThing)
		if err != nil {
			findings = append(findings, Finding{Rule: RuleCondition, Message: err.Error()})
		}
		for _, f := range audit {
			if !(opts.AllowBroad && IsBroadRule(f.Rule)) {
				findings = append(findings, f)
			}
		}
	}
	if len(findings) > 0 {
		return nil, &Error{Findings: findings}
	}
	return d, nil
}

// Parse reads doc as an AWS IoT policy document, checking only its form (JSON, structure) and none of the rules:
// the document an evaluator or an audit works on. The error is an *[Error].
func Parse(doc []byte) (*Document, error) {
	if err := checkSyntax(doc); err != nil {
		return nil, &Error{Findings: []Finding{{Rule: RuleJSON, Message: err.Error()}}}
	}
	d, f := parseDocument(doc)
	if f != nil {
		return nil, &Error{Findings: []Finding{*f}}
	}
	return d, nil
}

// checkSyntax reports invalid JSON with its byte offset, and duplicate object keys (which JSON parsers
// resolve differently, so a checked document could mean something else to AWS IoT).
func checkSyntax(doc []byte) error {
	if !utf8.Valid(doc) {
		return errors.New("not valid JSON: not UTF-8 text")
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not valid JSON at offset %d: %s", se.Offset, se.Error())
		}
		return fmt.Errorf("not valid JSON: %s", err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		keys   map[string]bool
		object bool
		expect bool // next token in an object is a key
	}
	var stack []*frame
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not valid JSON at offset %d: %s", off, err.Error())
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return fmt.Errorf("not valid JSON at offset %d: duplicate key %q", off, k)
				}
				top.keys[k] = true
				top.expect = false
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{keys: map[string]bool{}, object: true, expect: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
	}
}

var (
	documentKeys  = map[string]bool{"Version": true, "Statement": true, "Id": true}
	statementKeys = map[string]bool{"Sid": true, "Effect": true, "Action": true, "NotAction": true, "Resource": true, "NotResource": true, "Condition": true}
)

// parseDocument turns syntactically valid JSON into a Document, or reports the first structural problem.
func parseDocument(doc []byte) (*Document, *Finding) {
	bad := func(stmt int, format string, args ...any) *Finding {
		return &Finding{Rule: RuleStructure, Statement: stmt, Message: fmt.Sprintf(format, args...)}
	}
	var raw any
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, bad(0, "not valid JSON: %s", err.Error())
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, bad(0, "not a policy document: top level is %s, want an object", jsonKind(raw))
	}
	if k := unknownKey(top, documentKeys); k != "" {
		return nil, bad(0, "not a policy document: unknown key %q", k)
	}
	d := &Document{Chars: countChars(doc)}
	switch v := top["Version"].(type) {
	case nil:
		return nil, bad(0, "not a policy document: no Version")
	case string:
		if v != "2012-10-17" && v != "2008-10-17" {
			return nil, bad(0, "not a policy document: Version %q, want \"2012-10-17\"", v)
		}
		d.Version = v
	default:
		return nil, bad(0, "not a policy document: Version is %s, want a string", jsonKind(v))
	}
	var stmts []any
	switch v := top["Statement"].(type) {
	case nil:
		return nil, bad(0, "not a policy document: no Statement")
	case map[string]any:
		stmts = []any{v}
	case []any:
		stmts = v
	default:
		return nil, bad(0, "not a policy document: Statement is %s, want an object or a list", jsonKind(v))
	}
	if len(stmts) == 0 {
		return nil, bad(0, "not a policy document: Statement is empty")
	}
	for i, e := range stmts {
		n := i + 1
		m, ok := e.(map[string]any)
		if !ok {
			return nil, bad(n, "statement is %s, want an object", jsonKind(e))
		}
		if k := unknownKey(m, statementKeys); k != "" {
			return nil, bad(n, "unknown statement key %q", k)
		}
		var s Statement
		if v, ok := m["Sid"]; ok {
			sid, ok := v.(string)
			if !ok {
				return nil, bad(n, "Sid is %s, want a string", jsonKind(v))
			}
			s.Sid = sid
		}
		switch eff := m["Effect"].(type) {
		case nil:
			return nil, bad(n, "no Effect")
		case string:
			if eff != "Allow" && eff != "Deny" {
				return nil, bad(n, "Effect %q, want \"Allow\" or \"Deny\"", eff)
			}
			s.Effect = eff
		default:
			return nil, bad(n, "Effect is %s, want a string", jsonKind(eff))
		}
		var err string
		if s.Action, err = stringList(m, "Action"); err != "" {
			return nil, bad(n, "%s", err)
		}
		if s.NotAction, err = stringList(m, "NotAction"); err != "" {
			return nil, bad(n, "%s", err)
		}
		if s.Action == nil && s.NotAction == nil {
			return nil, bad(n, "no Action")
		}
		if s.Action != nil && s.NotAction != nil {
			return nil, bad(n, "both Action and NotAction")
		}
		if s.Resource, err = stringList(m, "Resource"); err != "" {
			return nil, bad(n, "%s", err)
		}
		if s.NotResource, err = stringList(m, "NotResource"); err != "" {
			return nil, bad(n, "%s", err)
		}
		if s.Resource == nil && s.NotResource == nil {
			return nil, bad(n, "no Resource")
		}
		if s.Resource != nil && s.NotResource != nil {
			return nil, bad(n, "both Resource and NotResource")
		}
		if v, ok := m["Condition"]; ok {
			c, ok := v.(map[string]any)
			if !ok {
				return nil, bad(n, "Condition is %s, want an object", jsonKind(v))
			}
			s.Condition = c
		}
		d.Statement = append(d.Statement, s)
	}
	return d, nil
}

// stringList reads key as a string or a non-empty list of non-empty strings. A missing key gives nil.
func stringList(m map[string]any, key string) ([]string, string) {
	v, ok := m[key]
	if !ok {
		return nil, ""
	}
	switch t := v.(type) {
	case string:
		if t == "" {
			return nil, fmt.Sprintf("%s is an empty string", key)
		}
		return []string{t}, ""
	case []any:
		if len(t) == 0 {
			return nil, fmt.Sprintf("%s is an empty list", key)
		}
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Sprintf("%s holds %s, want strings", key, jsonKind(e))
			}
			if s == "" {
				return nil, fmt.Sprintf("%s holds an empty string", key)
			}
			out = append(out, s)
		}
		return out, ""
	default:
		return nil, fmt.Sprintf("%s is %s, want a string or a list of strings", key, jsonKind(v))
	}
}

func unknownKey(m map[string]any, known map[string]bool) string {
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	sort.Strings(unknown)
	return unknown[0]
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// countChars counts the characters of doc that are not whitespace, the measure AWS IoT applies to its
// policy size limit.
func countChars(doc []byte) int {
	n := 0
	for _, r := range string(doc) {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
