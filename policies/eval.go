package policies

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The evaluator follows AWS IoT Core's documented policy semantics:
//
//   - Effects and default deny, "an explicit Deny wins over any Allow":
//     https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html (which points to the IAM evaluation
//     logic, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
//   - Actions and the resource type each one is checked against (client/, topic/, topicfilter/, thing/):
//     https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-actions.html and
//     https://docs.aws.amazon.com/iot/latest/developerguide/iot-action-resources.html.
//   - Wildcards: "*" matches any characters and "?" one; "The characters + and # are treated as literal strings in a
//     policy"; $(*), $(?) and $($) stand for the literal characters:
//     https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-variables.html and
//     https://docs.aws.amazon.com/iot/latest/developerguide/pub-sub-policy.html.
//   - Policy variables: iot:ClientId, iot:Connection.Thing.ThingName, ThingTypeName, IsAttached and Attributes[...]
//     (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html), the certificate's subject
//     and issuer fields and its id (https://docs.aws.amazon.com/iot/latest/developerguide/cert-policy-variables.html).
//     A variable with no value for the principal is not substituted and its statement entry does not apply ("the
//     missing policy variable doesn't get evaluated in the policy statement",
//     https://docs.aws.amazon.com/iot/latest/developerguide/use-policy-variables.html).
//   - Condition operators and their handling of missing keys, IfExists and the ForAnyValue/ForAllValues qualifiers:
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html and
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html.
//
// Resources are matched as whole ARN strings, so a wildcard may span the ':' between ARN segments: for an Allow that
// is at least as permissive as AWS, which is the safe side for a checker (a Deny with such a wildcard may be read wider
// than AWS reads it). Action names match case-insensitively,
// resources case-sensitively.

// Principal is who a policy is evaluated for: a certificate, the thing it is attached to and its MQTT connection.
// Empty fields have no value, so a policy variable naming them is not resolved.
type Principal struct {
	ThingName     string            // iot:Connection.Thing.ThingName
	ThingTypeName string            // iot:Connection.Thing.ThingTypeName
	Attributes    map[string]string // iot:Connection.Thing.Attributes[name]
	// AnyAttributes: the thing's attributes are not known (an audit asks about every device, whatever an operator
	// set on it): an attribute not in Attributes is an unknown key, met in an Allow and not in a Deny.
	AnyAttributes bool
	IsAttached    bool   // iot:Connection.Thing.IsAttached
	ClientID      string // iot:ClientId: the MQTT client id of the connection (of the request for iot:Connect)
	CertificateID string // iot:CertificateId
	// Subject and Issuer hold the certificate's distinguished-name fields by their AWS IoT names (CommonName,
	// Organization, OrganizationalUnit, Country, State, Locality, SerialNumber, ...): iot:Certificate.Subject.<name>.
	Subject map[string]string
	Issuer  map[string]string
	// Context holds any other condition key (iot:Connection.SourceIp, aws:CurrentTime, ...) by its name.
	Context map[string][]string
}

// Request is one authorization question: may the principal perform Action on Resource (a full ARN)?
type Request struct {
	Principal Principal
	Action    string // e.g. "iot:Publish"
	Resource  string // e.g. "arn:aws:iot:us-east-1:123456789012:topic/dt/b/x"
}

// Decision is the answer to a [Request].
type Decision struct {
	Allowed bool
	// Statement is the 1-based number of the statement that decided: the first Deny that applies, else the first
	// Allow that applies; 0 when no statement applies (the default deny).
	Statement int
	// Entry is the Resource (or NotResource) entry of that statement that decided, as written.
	Entry string
	// Sid is that statement's Sid, if it has one.
	Sid string
}

func (d Decision) String() string {
	stmt := fmt.Sprintf("statement %d", d.Statement)
	if d.Sid != "" {
		stmt += fmt.Sprintf(" %q", d.Sid)
	}
	switch {
	case d.Statement == 0:
		return "Deny: no statement allows it (default deny)"
	case d.Allowed:
		return fmt.Sprintf("Allow: %s (%s)", stmt, d.Entry)
	default:
		return fmt.Sprintf("Deny: %s denies it explicitly (%s)", stmt, d.Entry)
	}
}

// Evaluate answers req with AWS IoT's semantics. The error names a condition the evaluator cannot judge (an
// operator it does not know, a malformed condition block); no decision is made then.
func (d *Document) Evaluate(req Request) (Decision, error) {
	return d.evaluate(req, false)
}

// evaluate is Evaluate; with audit set it answers "might this be allowed?" for a principal whose request details
// are partly unknown: a condition on a key the principal does not describe (the source IP, the time) counts as met in
// an Allow and as not met in a Deny, and so does a placeholder that is not an AWS IoT policy variable (a CloudFormation
// value still unresolved in a template) stand for any text in an Allow and for nothing in a Deny.
func (d *Document) evaluate(req Request, audit bool) (Decision, error) {
	pr, err := d.prepare(&req.Principal, audit)
	if err != nil {
		return Decision{}, err
	}
	return pr.decide(req.Action, req.Resource), nil
}

// prepared is a document with its variables substituted and its conditions decided for one principal: what is left
// to do per request is matching the action and the resource.
type prepared struct {
	stmts []preparedStatement
}

type preparedStatement struct {
	s       Statement
	actions []string // Action or NotAction, lower case
	allow   bool
	skip    bool      // the condition does not hold, or an unresolved variable in NotResource
	res     []pattern // nil entries did not resolve
	notRes  []pattern
	notText string
}

func (d *Document) prepare(p *Principal, audit bool) (*prepared, error) {
	pr := &prepared{stmts: make([]preparedStatement, len(d.Statement))}
	for i, s := range d.Statement {
		ps := preparedStatement{s: s, allow: s.Effect == "Allow"}
		for _, a := range append(append([]string(nil), s.Action...), s.NotAction...) {
			ps.actions = append(ps.actions, strings.ToLower(a))
		}
		if len(s.Condition) > 0 {
			held, err := conditionHolds(s.Condition, p, audit, ps.allow)
			if err != nil {
				return nil, fmt.Errorf("statement %d: %w", i+1, err)
			}
			ps.skip = !held
		}
		if s.NotResource != nil {
			ps.notText = "NotResource " + strings.Join(s.NotResource, ", ")
			for _, e := range s.NotResource {
				pat, ok := compilePattern(e, p, audit, !ps.allow)
				switch {
				case ok:
					ps.notRes = append(ps.notRes, pat)
				case audit && ps.allow:
					// might be allowed: the entry excludes nothing
				default:
					ps.skip = true // an unresolved variable: the statement is not evaluated
				}
			}
		}
		for _, e := range s.Resource {
			pat, ok := compilePattern(e, p, audit, ps.allow)
			if !ok {
				pat = nil
			}
			ps.res = append(ps.res, pat)
		}
		pr.stmts[i] = ps
	}
	return pr, nil
}

func (pr *prepared) decide(action, resource string) Decision {
	var allow Decision
	action = strings.ToLower(action)
	for i := range pr.stmts {
		ps := &pr.stmts[i]
		if ps.skip || !ps.actionApplies(action) {
			continue
		}
		entry, ok := ps.resourceApplies(resource)
		if !ok {
			continue
		}
		if !ps.allow {
			return Decision{Allowed: false, Statement: i + 1, Entry: entry, Sid: ps.s.Sid}
		}
		if allow.Statement == 0 {
			allow = Decision{Allowed: true, Statement: i + 1, Entry: entry, Sid: ps.s.Sid}
		}
	}
	return allow
}

// actionApplies matches a lower-case action against the statement's Action (or NotAction) list.
func (ps *preparedStatement) actionApplies(action string) bool {
	hit := false
	for _, p := range ps.actions {
		if globMatch(p, action) {
			hit = true
			break
		}
	}
	return hit != (ps.s.NotAction != nil)
}

// actionApplies reports whether the statement's Action list (or NotAction list) covers action.
func actionApplies(s Statement, action string) bool {
	a := strings.ToLower(action)
	if s.NotAction != nil {
		for _, p := range s.NotAction {
			if globMatch(strings.ToLower(p), a) {
				return false
			}
		}
		return true
	}
	for _, p := range s.Action {
		if globMatch(strings.ToLower(p), a) {
			return true
		}
	}
	return false
}

// resourceApplies returns the entry that makes the statement apply to the resource.
func (ps *preparedStatement) resourceApplies(resource string) (string, bool) {
	if ps.s.NotResource != nil {
		for _, p := range ps.notRes {
			if p.match(resource) {
				return "", false
			}
		}
		return ps.notText, true
	}
	for i, p := range ps.res {
		if p != nil && p.match(resource) {
			return ps.s.Resource[i], true
		}
	}
	return "", false
}

// A pattern is a compiled Resource entry (or StringLike value): literal runes, "*" and "?".
type pattern []token

type token struct {
	kind byte // 'l' literal, '*' any run, '?' one character
	r    rune
}

// compilePattern substitutes the principal's policy variables into s and compiles its wildcards. ok is false when a
// variable has no value (the entry then matches nothing). openUnknown (audit mode only) turns a placeholder that is no
// AWS IoT policy variable into "*".
func compilePattern(s string, p *Principal, audit, openUnknown bool) (pattern, bool) {
	out := make(pattern, 0, len(s))
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$(") && len(s) >= i+4 && s[i+3] == ')' && strings.ContainsRune("*?$", rune(s[i+2])) {
			out = append(out, token{'l', rune(s[i+2])})
			i += 4
			continue
		}
		if strings.HasPrefix(s[i:], "${") {
			if end := strings.IndexByte(s[i+2:], '}'); end >= 0 {
				name := s[i+2 : i+2+end]
				i += end + 3
				vals, state := p.lookup(name)
				switch {
				case state == keyPresent && len(vals) == 1:
					for _, r := range vals[0] {
						out = append(out, token{'l', r})
					}
				case audit && state == keyUnknown && !isIoTVariable(name):
					if !openUnknown {
						return nil, false
					}
					out = append(out, token{'*', 0})
				default:
					return nil, false
				}
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '*', '?':
			out = append(out, token{byte(r), 0})
		default:
			out = append(out, token{'l', r})
		}
		i += size
	}
	return out, true
}

// literal is a pattern that matches exactly s.
func literal(s string) pattern {
	out := make(pattern, 0, len(s))
	for _, r := range s {
		out = append(out, token{'l', r})
	}
	return out
}

func (p pattern) String() string {
	var b strings.Builder
	for _, t := range p {
		switch {
		case t.kind != 'l':
			b.WriteByte(t.kind)
		case t.r == '*' || t.r == '?':
			b.WriteString("$(" + string(t.r) + ")")
		default:
			b.WriteRune(t.r)
		}
	}
	return b.String()
}

func (p pattern) match(s string) bool {
	rs := []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(rs) {
		switch {
		case pi < len(p) && (p[pi].kind == '?' || p[pi].kind == 'l' && p[pi].r == rs[si]):
			pi++
			si++
		case pi < len(p) && p[pi].kind == '*':
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
	for pi < len(p) && p[pi].kind == '*' {
		pi++
	}
	return pi == len(p)
}

// intersect returns a shortest string that both patterns match, if there is one. A character both sides leave free
// is written as filler.
func intersect(a, b pattern, filler rune) (string, bool) {
	// Literal heads and tails both share are taken as they are; a literal mismatch there ends the search.
	var head, tail []rune
	for len(a) > 0 && len(b) > 0 && a[0].kind == 'l' && b[0].kind == 'l' {
		if a[0].r != b[0].r {
			return "", false
		}
		head = append(head, a[0].r)
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1].kind == 'l' && b[len(b)-1].kind == 'l' {
		if a[len(a)-1].r != b[len(b)-1].r {
			return "", false
		}
		tail = append([]rune{a[len(a)-1].r}, tail...)
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	mid, ok := intersectCore(a, b, filler)
	if !ok {
		return "", false
	}
	return string(head) + mid + string(tail), true
}

func intersectCore(a, b pattern, filler rune) (string, bool) {
	// Breadth-first search over pairs of positions; prev records how each pair was first reached.
	w := len(b) + 1
	type edge struct {
		from int32
		r    rune
		has  bool
	}
	prev := make([]edge, (len(a)+1)*w)
	seen := make([]bool, len(prev))
	queue := make([]int32, 1, 64)
	seen[0] = true
	push := func(from, i, j int, r rune, has bool) {
		to := i*w + j
		if !seen[to] {
			seen[to] = true
			prev[to] = edge{int32(from), r, has}
			queue = append(queue, int32(to))
		}
	}
	for q := 0; q < len(queue); q++ {
		cur := int(queue[q])
		i, j := cur/w, cur%w
		if i == len(a) && j == len(b) {
			var out []rune
			for c := cur; c != 0; c = int(prev[c].from) {
				if e := prev[c]; e.has {
					out = append(out, e.r)
				}
			}
			for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
				out[l], out[r] = out[r], out[l]
			}
			return string(out), true
		}
		if i < len(a) && a[i].kind == '*' {
			push(cur, i+1, j, 0, false)
		}
		if j < len(b) && b[j].kind == '*' {
			push(cur, i, j+1, 0, false)
		}
		if i == len(a) || j == len(b) {
			continue
		}
		ta, tb := a[i], b[j]
		r := filler
		switch {
		case ta.kind == 'l' && tb.kind == 'l':
			if ta.r != tb.r {
				continue
			}
			r = ta.r
		case ta.kind == 'l':
			r = ta.r
		case tb.kind == 'l':
			r = tb.r
		}
		ni, nj := i+1, j+1
		if ta.kind == '*' {
			ni = i
		}
		if tb.kind == '*' {
			nj = j
		}
		push(cur, ni, nj, r, true)
	}
	return "", false
}

type keyState int

const (
	keyAbsent  keyState = iota // a key the principal describes, with no value
	keyPresent                 // a value
	keyUnknown                 // a key the principal does not describe at all
)

// isIoTVariable reports whether name is one of AWS IoT's policy variables (case-insensitive).
func isIoTVariable(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "iot:") || strings.HasPrefix(n, "aws:") && !strings.HasPrefix(n, "aws::")
}

// lookup returns the value of a policy variable or condition key for the principal.
func (p *Principal) lookup(name string) ([]string, keyState) {
	n := strings.ToLower(name)
	one := func(v string) ([]string, keyState) {
		if v == "" {
			return nil, keyAbsent
		}
		return []string{v}, keyPresent
	}
	field := func(m map[string]string, f string) ([]string, keyState) {
		for k, v := range m {
			if strings.EqualFold(k, f) {
				return one(v)
			}
		}
		return nil, keyAbsent
	}
	switch {
	case n == "iot:connection.thing.thingname":
		return one(p.ThingName)
	case n == "iot:connection.thing.thingtypename":
		return one(p.ThingTypeName)
	case n == "iot:connection.thing.isattached":
		return []string{strconv.FormatBool(p.IsAttached)}, keyPresent
	case strings.HasPrefix(n, "iot:connection.thing.attributes[") && strings.HasSuffix(n, "]"):
		vals, st := field(p.Attributes, name[len("iot:connection.thing.attributes["):len(name)-1])
		if st == keyAbsent && p.AnyAttributes {
			return nil, keyUnknown
		}
		return vals, st
	case n == "iot:clientid":
		return one(p.ClientID)
	case n == "iot:certificateid", n == "iot:certificate.id":
		return one(p.CertificateID)
	case strings.HasPrefix(n, "iot:certificate.subject."):
		return field(p.Subject, name[len("iot:certificate.subject."):])
	case strings.HasPrefix(n, "iot:certificate.issuer."):
		return field(p.Issuer, name[len("iot:certificate.issuer."):])
	}
	for k, v := range p.Context {
		if strings.EqualFold(k, name) {
			if len(v) == 0 {
				return nil, keyAbsent
			}
			return v, keyPresent
		}
	}
	if strings.HasPrefix(n, "iot:certificate.") || strings.HasPrefix(n, "iot:connection.thing.") {
		return nil, keyAbsent // a certificate or thing field this principal does not have
	}
	return nil, keyUnknown
}

// conditionHolds evaluates a Condition block: every operator, and every key under it, must hold; a key holds when
// one of its values matches.
func conditionHolds(cond map[string]any, p *Principal, audit, allow bool) (bool, error) {
	ops := make([]string, 0, len(cond))
	for op := range cond {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		block, ok := cond[op].(map[string]any)
		if !ok {
			return false, fmt.Errorf("condition %s is %s, want an object of keys and values", op, jsonKind(cond[op]))
		}
		keys := make([]string, 0, len(block))
		for k := range block {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			vals, err := conditionValues(block[key])
			if err != nil {
				return false, fmt.Errorf("condition %s %s: %w", op, key, err)
			}
			held, err := keyHolds(op, key, vals, p, audit, allow)
			if err != nil {
				return false, err
			}
			if !held {
				return false, nil
			}
		}
	}
	return true, nil
}

func conditionValues(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case bool:
		return []string{strconv.FormatBool(t)}, nil
	case float64:
		return []string{strconv.FormatFloat(t, 'f', -1, 64)}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, err := conditionValues(e)
			if err != nil || len(s) != 1 {
				return nil, fmt.Errorf("values must be strings, booleans or numbers, got %s", jsonKind(e))
			}
			out = append(out, s[0])
		}
		return out, nil
	default:
		return nil, fmt.Errorf("values must be strings, booleans or numbers, got %s", jsonKind(v))
	}
}

// conditionOperators are the base operators the evaluator knows, with whether each is a negated one.
var conditionOperators = map[string]bool{
	"stringequals": false, "stringnotequals": true, "stringequalsignorecase": false, "stringnotequalsignorecase": true,
	"stringlike": false, "stringnotlike": true, "bool": false, "arnequals": false, "arnlike": false,
	"arnnotequals": true, "arnnotlike": true, "numericequals": false, "numericnotequals": true,
	"numericlessthan": false, "numericlessthanequals": false, "numericgreaterthan": false, "numericgreaterthanequals": false,
	"null": false,
}

// ConditionOperatorKnown reports whether the evaluator can judge a condition operator (qualifiers included).
func ConditionOperatorKnown(op string) bool {
	_, _, base := splitOperator(op)
	_, ok := conditionOperators[base]
	return ok
}

func splitOperator(op string) (qualifier string, ifExists bool, base string) {
	l := strings.ToLower(op)
	for _, q := range []string{"foranyvalue:", "forallvalues:"} {
		if strings.HasPrefix(l, q) {
			qualifier, l = q, l[len(q):]
		}
	}
	if strings.HasSuffix(l, "ifexists") && l != "ifexists" {
		ifExists, l = true, strings.TrimSuffix(l, "ifexists")
	}
	return qualifier, ifExists, l
}

func keyHolds(op, key string, policyVals []string, p *Principal, audit, allow bool) (bool, error) {
	qualifier, ifExists, base := splitOperator(op)
	negated, known := conditionOperators[base]
	if !known {
		return false, fmt.Errorf("condition operator %q is not supported by the evaluator", op)
	}
	ctx, state := p.lookup(key)
	if state == keyUnknown {
		if audit {
			return allow, nil
		}
		state = keyAbsent
	}
	if base == "null" {
		if len(policyVals) != 1 {
			return false, fmt.Errorf("condition %s %s: want one value, true or false", op, key)
		}
		want := strings.EqualFold(policyVals[0], "true")
		return (state == keyAbsent) == want, nil
	}
	if state == keyAbsent {
		switch {
		case ifExists, qualifier == "forallvalues:":
			return true, nil
		case qualifier == "foranyvalue:":
			return false, nil
		default:
			return negated, nil
		}
	}
	one := func(v string) (bool, error) {
		hit := false
		for _, pv := range policyVals {
			m, err := valueMatches(base, pv, v, p)
			if err != nil {
				return false, fmt.Errorf("condition %s %s: %w", op, key, err)
			}
			if m {
				hit = true
				break
			}
		}
		return hit != negated, nil
	}
	if qualifier == "forallvalues:" {
		for _, v := range ctx {
			if ok, err := one(v); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
	for _, v := range ctx {
		if ok, err := one(v); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// valueMatches applies the positive form of a base operator to one policy value (which may hold policy variables)
// and one context value.
func valueMatches(base, policyVal, v string, p *Principal) (bool, error) {
	switch base {
	case "bool":
		return strings.EqualFold(policyVal, v), nil
	case "numericequals", "numericnotequals", "numericlessthan", "numericlessthanequals", "numericgreaterthan", "numericgreaterthanequals":
		a, err1 := strconv.ParseFloat(v, 64)
		b, err2 := strconv.ParseFloat(policyVal, 64)
		if err2 != nil {
			return false, fmt.Errorf("%q is not a number", policyVal)
		}
		if err1 != nil {
			return false, nil
		}
		switch base {
		case "numericlessthan":
			return a < b, nil
		case "numericlessthanequals":
			return a <= b, nil
		case "numericgreaterthan":
			return a > b, nil
		case "numericgreaterthanequals":
			return a >= b, nil
		}
		return a == b, nil
	}
	pat, ok := compilePattern(policyVal, p, false, false)
	if !ok {
		return false, nil // an unresolved variable matches nothing
	}
	switch base {
	case "stringlike", "stringnotlike", "arnlike", "arnnotlike":
		return pat.match(v), nil
	case "stringequalsignorecase", "stringnotequalsignorecase":
		return strings.EqualFold(pat.literalText(), v), nil
	}
	return pat.literalText() == v, nil
}

// literalText is the pattern read as plain text: "*" and "?" are not wildcards for the Equals operators.
func (p pattern) literalText() string {
	var b strings.Builder
	for _, t := range p {
		if t.kind == 'l' {
			b.WriteRune(t.r)
		} else {
			b.WriteByte(t.kind)
		}
	}
	return b.String()
}
