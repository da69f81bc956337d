package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// The rules are questions asked of the evaluator for one device principal: what may it do beyond its own identity?
// The other identities it is asked about are derived from its own name and from the policy's own text (every run of
// characters around a wildcard), so a wildcard placed before, after or around a variable is caught by construction.

// Placeholder ARN parts the audit renders ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId} with.
const (
	ProbePartition = "aws"
	ProbeRegion    = "us-east-1"
	ProbeAccount   = "123456789012"
)

// CheckThing is the device name [Check] asks its questions for.
const CheckThing = "dev-b"

// sharedSubject are certificate subject fields every device of a fleet shares (the CA's profile writes them);
// CommonName and SerialNumber are the device's own.
var sharedSubject = map[string]string{
	"Organization": "Example Org", "OrganizationalUnit": "Devices", "Country": "DE", "State": "Berlin",
	"Locality": "Berlin", "Title": "device", "DistinguishedNameQualifier": "fleet",
}

// DevicePrincipal is the principal a device named thing presents: its certificate is attached to its thing, it
// connects with its thing name as client id, its certificate's common name is its thing name, and it shares its
// other subject fields, its issuer and its thing type with every other device.
func DevicePrincipal(thing string) Principal {
	sum := sha256.Sum256([]byte(thing))
	subject := map[string]string{"CommonName": thing, "SerialNumber": hex.EncodeToString(sum[:8])}
	for k, v := range sharedSubject {
		subject[k] = v
	}
	return Principal{
		ThingName: thing, ThingTypeName: "sensor", IsAttached: true, ClientID: thing,
		CertificateID: hex.EncodeToString(sum[:]), Subject: subject,
		Issuer: map[string]string{"CommonName": "Example Device CA", "Organization": "Example Org", "Country": "DE"},
	}
}

// anonymous is p without anything that names one device: what every device of the fleet holds.
func anonymous(p Principal) Principal {
	q := Principal{ThingTypeName: p.ThingTypeName, IsAttached: p.IsAttached, Issuer: p.Issuer, Context: p.Context,
		Subject: map[string]string{}}
	for k, v := range p.Subject {
		if _, shared := sharedSubject[k]; shared {
			q.Subject[k] = v
		}
	}
	return q
}

type actionInfo struct{ name, typ string }

// probeActions are the AWS IoT data-plane actions and the resource type each is checked against
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-action-resources.html).
var probeActions = []actionInfo{
	{"iot:Connect", "client"}, {"iot:DeleteConnection", "client"},
	{"iot:Publish", "topic"}, {"iot:RetainPublish", "topic"}, {"iot:Receive", "topic"}, {"iot:GetRetainedMessage", "topic"},
	{"iot:Subscribe", "topicfilter"},
	{"iot:GetThingShadow", "thing"}, {"iot:UpdateThingShadow", "thing"}, {"iot:DeleteThingShadow", "thing"},
	{"iot:ListNamedShadowsForThing", "thing"},
	{"iotjobsdata:DescribeJobExecution", "thing"}, {"iotjobsdata:GetPendingJobExecutions", "thing"},
	{"iotjobsdata:StartNextPendingJobExecution", "thing"}, {"iotjobsdata:UpdateJobExecution", "thing"},
}

var probeTypes = []string{"client", "topic", "topicfilter", "thing"}

// unnamedProbes returns, for each action pattern of s with a wildcard, the pattern and an action it matches that no
// one wrote (its wildcards filled with "ZzUnnamed"); for NotAction, actions outside the list.
func unnamedProbes(s Statement) [][2]string {
	var out [][2]string
	if s.NotAction != nil {
		return [][2]string{{fmt.Sprintf("NotAction %q", s.NotAction), "iot:ZzUnnamedAction"}, {fmt.Sprintf("NotAction %q", s.NotAction), "iotjobsdata:ZzUnnamedAction"}}
	}
	for _, act := range s.Action {
		if strings.ContainsAny(act, "*?") {
			probe := strings.NewReplacer("*", "ZzUnnamed", "?", "Z").Replace(act)
			out = append(out, [2]string{fmt.Sprintf("action %q", act), probe})
		}
	}
	return out
}

// deviceTopics are where a device's own topics live, in the layouts of this app, of AWS's reserved topics and of
// common practice; "{}" is the device's name.
var deviceTopics = []string{
	"{}", "{}/x", "x/{}", "dt/{}/x", "cmd/{}/x", "things/{}/x", "tlm/x/{}/d2c", "cmd/x/{}/c2d",
	"$aws/things/{}/shadow/update", "$aws/things/{}/shadow/get/accepted", "$aws/things/{}/shadow/name/x/update",
	"$aws/things/{}/jobs/get", "$aws/things/{}/jobs/notify-next", "$aws/things/{}/jobs/x/update",
	"$aws/things/{}/defender/metrics/json", "$aws/things/{}/tunnels/notify", "$aws/events/presence/connected/{}",
	"iotcert/{}/rotation/csr", "iotcert/{}/rotation/confirm", "iotcert/{}/rotation/certificate",
}

// deviceFilters are topic filters that reach one device's topics, besides its topics themselves.
var deviceFilters = []string{"{}/#", "dt/{}/#", "$aws/things/{}/#", "$aws/things/{}/shadow/#", "iotcert/{}/#"}

// unlisted are resources of no device and of no name any policy would list: reaching one means reaching every
// resource of its type.
var unlisted = map[string][]string{
	"client": {"zz-unlisted-probe"},
	"thing":  {"zz-unlisted-probe"},
	"topic": {"zz-unlisted-probe/x", "$aws/zz-unlisted-probe", "$aws/rules/zz_unlisted_probe/x",
		// AWS IoT's event topics carry every device's events, and name a job or a client, not a thing.
		"$aws/events/jobExecution/zz-unlisted-probe/FAILED", "$aws/events/job/zz-unlisted-probe/completed"},
	"topicfilter": {"#", "+/#", "zz-unlisted-probe/#", "$aws/#", "$aws/events/#", "$aws/events/jobExecution/#"},
}

// probeARNPrefix is the ARN prefix of the probe account.
const probeARNPrefix = "arn:" + ProbePartition + ":iot:" + ProbeRegion + ":" + ProbeAccount + ":"

// arn is the ARN of a resource in the audited policy's account: the partition, region and account of its first
// Allow entry that names them literally, else the probe account's.
func (a *auditor) arn(typ, name string) string { return a.prefix + typ + "/" + name }

// arnPrefix finds the "arn:<partition>:iot:<region>:<account>:" the policy's resources name.
func arnPrefix(d *Document) string {
	for _, s := range d.Statement {
		for _, e := range append(append([]string(nil), s.Resource...), s.NotResource...) {
			parts := strings.SplitN(e, ":", 6)
			if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iot" {
				continue
			}
			if strings.ContainsAny(parts[1]+parts[3]+parts[4], "*?$") || parts[1] == "" || parts[3] == "" || parts[4] == "" {
				continue
			}
			return strings.Join(parts[:5], ":") + ":"
		}
	}
	return probeARNPrefix
}

// Rendered returns a copy of d with ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId} replaced in its
// resources and conditions (see [Render]): the document AWS IoT would evaluate in that account.
func (d *Document) Rendered(partition, region, account string) *Document {
	r := strings.NewReplacer(PartitionPlaceholder, partition, RegionPlaceholder, region, AccountPlaceholder, account)
	out := &Document{Version: d.Version, Chars: d.Chars, Statement: make([]Statement, len(d.Statement))}
	list := func(in []string) []string {
		if in == nil {
			return nil
		}
		o := make([]string, len(in))
		for i, s := range in {
			o[i] = r.Replace(s)
		}
		return o
	}
	for i, s := range d.Statement {
		s.Resource, s.NotResource = list(s.Resource), list(s.NotResource)
		if s.Condition != nil {
			s.Condition = mapStrings(s.Condition, r.Replace).(map[string]any)
		}
		out.Statement[i] = s
	}
	return out
}

// auditEntry is one Resource entry of an Allow statement, compiled for the audited principal.
type auditEntry struct {
	stmt int
	text string
	pat  pattern
}

type auditor struct {
	d       *Document
	prefix  string
	self    Principal
	entries []auditEntry
	found   map[string]*Finding // by rule and statement
	order   []string
	actions map[string][]string
	cache   map[string]*prepared
	err     error
}

// AuditDevice asks the evaluator what the device named thing may do beyond its own identity: connect as another
// client id, act on another device's topics, topic filters, shadow, jobs or other $aws topics, act on every resource
// of a type, use an action no statement names, or hold a "personal" resource that every device shares. Placeholders
// ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId} are taken as the probe account's. Each finding names the
// statement that allowed it and one example. The error names a condition the evaluator cannot judge.
func AuditDevice(d *Document, thing string) ([]Finding, error) {
	self := DevicePrincipal(thing)
	self.AnyAttributes = true // a grant to devices an operator marked with an attribute is a grant to some device
	a := newAuditor(d.Rendered(ProbePartition, ProbeRegion, ProbeAccount), self)
	a.run(thing)
	return a.findings(), a.err
}

func newAuditor(d *Document, self Principal) *auditor {
	a := &auditor{d: d, prefix: arnPrefix(d), self: self, found: map[string]*Finding{}, actions: map[string][]string{}, cache: map[string]*prepared{}}
	for i, s := range d.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, e := range s.Resource {
			if p, ok := compilePattern(e, &self, true, true); ok {
				a.entries = append(a.entries, auditEntry{i + 1, e, p})
			}
		}
	}
	return a
}

func (a *auditor) run(thing string) {
	// Actions no statement names: each wildcard of an action, filled in, is an action the author did not write, and so
	// is any action under NotAction.
	for i, s := range a.d.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, act := range unnamedProbes(s) {
			if actionApplies(s, act[1]) {
				a.add(RuleActionWildcard, i+1, "", fmt.Sprintf("%s is a wildcard: it grants %s, an action the statement does not name; name each action", act[0], act[1]))
			}
		}
	}
	// Every resource of a type; an action the probes do not know (one AWS adds later, or a misspelt one) is asked
	// about every type.
	for _, act := range append(append([]actionInfo(nil), probeActions...), a.otherActions()...) {
		types := []string{act.typ}
		if act.typ == "" {
			types = probeTypes
		}
		for _, typ := range types {
			for _, name := range unlisted[typ] {
				if a.stopped() {
					return
				}
				if dec, ok := a.allowed(actionInfo{act.name, typ}, a.arn(typ, name)); ok {
					rule := RuleResourceStar
					if act.name == "iot:Connect" {
						rule = RuleConnectScope
					}
					a.addExample(rule, dec.Statement, act.name, a.arn(typ, name), fmt.Sprintf("%s on every %s: thing %s may use %q, which no device owns (%s)", act.name, typ, thing, name, dec.Entry))
				}
			}
		}
	}
	// A certificate that carries the policy but is attached to no thing (iot:Connection.Thing.IsAttached false, the
	// thing variables unresolved): what it may do on a resource no device owns, any such certificate may do.
	loose := Principal{ClientID: thing, Subject: a.self.Subject, Issuer: a.self.Issuer, Context: a.self.Context, CertificateID: a.self.CertificateID}
	for _, act := range append(append([]actionInfo(nil), probeActions...), a.otherActions()...) {
		types := []string{act.typ}
		if act.typ == "" {
			types = probeTypes
		}
		for _, typ := range types {
			for _, name := range unlisted[typ] {
				if a.stopped() {
					return
				}
				pr := a.preparedFor("unattached", loose, act, a.arn(typ, name))
				if pr == nil {
					continue
				}
				if dec := pr.decide(act.name, a.arn(typ, name)); dec.Allowed {
					rule := RuleResourceStar
					if act.name == "iot:Connect" {
						rule = RuleConnectScope
					}
					a.addExample(rule, dec.Statement, act.name, a.arn(typ, name), fmt.Sprintf("%s on every %s to a certificate attached to no thing: it may use %q, which no device owns (%s)", act.name, typ, name, dec.Entry))
				}
			}
		}
	}
	victims := a.victims(thing)
	// A resource that names a device through a policy variable but is the same for every device.
	a.sharedIdentity(thing, victims[len(victims)-1])
	// Another device's resources, asked only for the actions some Allow statement grants.
	granted := map[string][]actionInfo{}
	for _, act := range probeActions {
		for _, s := range a.d.Statement {
			if s.Effect == "Allow" && actionApplies(s, act.name) {
				granted[act.typ] = append(granted[act.typ], act)
				break
			}
		}
	}
	for _, v := range victims {
		other := DevicePrincipal(v)
		for _, typ := range probeTypes {
			if len(granted[typ]) == 0 {
				continue
			}
			for _, vp := range a.victimPatterns(typ, v, &other) {
				for _, w := range a.witnesses(typ, vp.pat) {
					for _, act := range granted[typ] {
						if a.stopped() {
							continue
						}
						dec, ok := a.allowed(act, w)
						if !ok {
							continue
						}
						if vp.shaped && !a.principalAllowed("victim/"+v, other, act, w) {
							continue // not the other device's: the policy does not give it to that device either
						}
						rule := RuleVariableWildcard
						how := "through its own identity (a policy variable next to a wildcard)"
						if a.anonymousAllowed(act, w) {
							rule, how = RuleResourceUnscoped, "whatever its identity"
							if act.name == "iot:Connect" {
								rule = RuleConnectScope
							}
						}
						name := strings.TrimPrefix(w, a.arn(typ, ""))
						a.addExample(rule, dec.Statement, act.name, w, fmt.Sprintf("%s on %s %q of thing %q: thing %s may use it %s (%s)", act.name, typ, name, v, thing, how, dec.Entry))
					}
				}
			}
		}
	}
}

func (a *auditor) stopped() bool { return a.err != nil }

// otherActions are the actions Allow statements name, without wildcards, that are not among probeActions.
func (a *auditor) otherActions() []actionInfo {
	known := map[string]bool{}
	for _, act := range probeActions {
		known[strings.ToLower(act.name)] = true
	}
	var out []actionInfo
	for _, s := range a.d.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, act := range s.Action {
			if l := strings.ToLower(act); !known[l] && !strings.ContainsAny(act, "*?") {
				known[l] = true
				out = append(out, actionInfo{name: act})
			}
		}
	}
	return out
}

// allowed evaluates act on resource for the audited principal; for iot:Connect the request's client id is the
// resource's.
func (a *auditor) allowed(act actionInfo, resource string) (Decision, bool) {
	pr := a.preparedFor("self", a.self, act, resource)
	if pr == nil {
		return Decision{}, false
	}
	dec := pr.decide(act.name, resource)
	return dec, dec.Allowed
}

func (a *auditor) anonymousAllowed(act actionInfo, resource string) bool {
	return a.principalAllowed("anonymous", anonymous(a.self), act, resource)
}

func (a *auditor) principalAllowed(key string, p Principal, act actionInfo, resource string) bool {
	pr := a.preparedFor(key, p, act, resource)
	return pr != nil && pr.decide(act.name, resource).Allowed
}

// preparedFor returns the document prepared for p (its client id set to the resource's for a client action), cached
// under key.
func (a *auditor) preparedFor(key string, p Principal, act actionInfo, resource string) *prepared {
	if act.typ == "client" {
		p.ClientID = strings.TrimPrefix(resource, a.arn("client", ""))
		key += "/" + p.ClientID
	}
	if pr, ok := a.cache[key]; ok {
		return pr
	}
	pr, err := a.d.prepare(&p, true)
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		return nil
	}
	a.cache[key] = pr
	return pr
}

// victims are other devices' names: the audited name with a character more before or after it, a sibling, a
// shorter and a doubled form, and every run of name characters around a wildcard of the policy with the wildcards
// filled in. The last one is an unrelated name.
func (a *auditor) victims(thing string) []string {
	seen := map[string]bool{thing: true, "": true}
	var out []string
	add := func(v string) {
		if !seen[v] && len(out) < 64 {
			seen[v] = true
			out = append(out, v)
		}
	}
	// Neither "" nor a name with "/" is asked about: no thing can hold either (thing names are 1 to 128 of
	// [a-zA-Z0-9:_-]), so no device owns such a client id or the topics it would name.
	for _, v := range []string{"a" + thing, "1" + thing, thing + "1", thing + "-1", thing + "_1", thing + ":1", thing + thing} {
		add(v)
	}
	if r := []rune(thing); len(r) > 1 {
		add(string(r[:len(r)-1]))
		last := '1'
		if r[len(r)-1] == '1' {
			last = '2'
		}
		add(string(r[:len(r)-1]) + string(last))
	}
	for _, e := range a.entries {
		for _, run := range wildcardRuns(e.pat) {
			add(run)
		}
	}
	delete(seen, "zz-other-device")
	add("zz-other-device")
	if out[len(out)-1] != "zz-other-device" {
		out[len(out)-1] = "zz-other-device"
	}
	return out
}

// wildcardRuns returns, for the name part of a compiled resource (after its type's "/"), every maximal run of
// characters a thing name may hold ([a-zA-Z0-9:_-]) and wildcards that holds a wildcard, with each wildcard written
// as "1".
func wildcardRuns(p pattern) []string {
	start := 0
	for i, t := range p {
		if t.kind == 'l' && t.r == '/' {
			start = i + 1
			break
		}
	}
	var out []string
	var cur []rune
	wild := false
	flush := func() {
		if wild && len(cur) > 0 {
			out = append(out, string(cur))
		}
		cur, wild = cur[:0], false
	}
	for _, t := range p[start:] {
		switch {
		case t.kind != 'l':
			cur = append(cur, '1')
			wild = true
		case isThingNameRune(t.r):
			cur = append(cur, t.r)
		default:
			flush()
		}
	}
	flush()
	return out
}

func isThingNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ':' || r == '_' || r == '-'
}

// victimPattern is a resource pattern of another device; a shaped one is read from a policy entry, and only what the
// policy allows that device is its own.
type victimPattern struct {
	pat    pattern
	shaped bool
}

// victimPatterns are the resources of type typ that belong to the device v: its well-known topics and client id, and
// each entry of the policy written with a policy variable, as it reads for v, when that differs from how it reads
// for the audited device.
func (a *auditor) victimPatterns(typ, v string, other *Principal) []victimPattern {
	var out []victimPattern
	switch typ {
	case "client", "thing":
		out = append(out, victimPattern{pat: literal(a.arn(typ, v))})
	default:
		list := deviceTopics
		if typ == "topicfilter" {
			list = append(append([]string(nil), deviceTopics...), deviceFilters...)
		}
		for _, t := range list {
			out = append(out, victimPattern{pat: literal(a.arn(typ, strings.ReplaceAll(t, "{}", v)))})
		}
	}
	// A wildcard topic entry without a policy variable reads the same for every device: each device's topics under
	// it (dev/* holds dev/<thing>) are everyone's, whatever layout the devices use.
	if typ == "topic" || typ == "topicfilter" {
		pre := a.arn(typ, "")
		for _, e := range a.entries {
			name, ok := strings.CutPrefix(e.text, pre)
			if !ok || strings.Contains(e.text, "${") || !strings.ContainsAny(name, "*?") {
				continue
			}
			out = append(out, victimPattern{pat: literal(pre + strings.NewReplacer("*", v, "?", "x").Replace(name))})
		}
	}
	for _, e := range a.entries {
		if !strings.Contains(e.text, "${") || !a.typeMayBe(e.pat, typ) {
			continue
		}
		p, ok := compilePattern(e.text, other, true, true)
		if ok && p.String() != e.pat.String() {
			out = append(out, victimPattern{pat: p, shaped: true})
		}
	}
	return out
}

// typeMayBe reports whether a compiled resource may name a resource of type typ.
func (a *auditor) typeMayBe(p pattern, typ string) bool {
	return intersectOK(p, append(literal(a.arn(typ, "")), token{'*', 0}))
}

func intersectOK(a, b pattern) bool {
	_, ok := intersect(a, b, 'x')
	return ok
}

// witnesses are concrete resources of the pattern p to ask about: p with its wildcards filled in, and for each
// Allow entry a resource both match.
func (a *auditor) witnesses(typ string, p pattern) []string {
	seen := map[string]bool{}
	var out []string
	add := func(w string) {
		if !seen[w] && strings.HasPrefix(w, a.arn(typ, "")) {
			seen[w] = true
			out = append(out, w)
		}
	}
	if w, ok := intersect(p, p, 'x'); ok {
		add(w)
	}
	for _, e := range a.entries {
		if w, ok := intersect(p, e.pat, 'x'); ok {
			add(w)
		}
	}
	return out
}

// sharedIdentity reports every Allow entry that names a device through a policy variable yet reads the same for the
// audited device and another: the variable holds a value all devices share.
func (a *auditor) sharedIdentity(thing, other string) {
	op := DevicePrincipal(other)
	for _, e := range a.entries {
		if !strings.Contains(e.text, "${") {
			continue
		}
		p, ok := compilePattern(e.text, &op, true, true)
		if !ok || p.String() != e.pat.String() {
			continue
		}
		a.add(RuleSharedIdentity, e.stmt, "", fmt.Sprintf("resource %q reads %q for thing %s and for thing %s alike: %s holds a value every device shares, not an identity",
			e.text, a.short(e.pat.String()), thing, other, strings.Join(variablesOf(e.text), ", ")))
	}
}

// shortARN drops the probe account's ARN prefix.
func (a *auditor) short(s string) string { return strings.TrimPrefix(s, a.prefix) }

// variablesOf lists the ${...} variables of s.
func variablesOf(s string) []string {
	var out []string
	for rest := s; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			return out
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return out
		}
		out = append(out, rest[i:i+end+1])
		rest = rest[i+end+1:]
	}
}

func (a *auditor) add(rule string, stmt int, action, msg string) {
	a.addExample(rule, stmt, action, "", msg)
}

// addExample records a finding once per rule and statement, with the first action and resource that showed it.
func (a *auditor) addExample(rule string, stmt int, action, resource, msg string) {
	key := fmt.Sprintf("%s/%d", rule, stmt)
	label := action
	if typ, _, ok := strings.Cut(a.short(resource), "/"); ok && resource != "" {
		label += " on " + typ
	}
	if _, ok := a.found[key]; ok {
		if action != "" && !contains(a.actions[key], label) {
			a.actions[key] = append(a.actions[key], label)
		}
		return
	}
	a.found[key] = &Finding{Rule: rule, Statement: stmt, Message: msg, Action: action, Resource: resource}
	a.order = append(a.order, key)
	if action != "" {
		a.actions[key] = []string{label}
	}
}

func (a *auditor) findings() []Finding {
	out := make([]Finding, 0, len(a.order))
	for _, k := range a.order {
		f := *a.found[k]
		if f.Rule == RuleResourceUnscoped && a.found[fmt.Sprintf("%s/%d", RuleResourceStar, f.Statement)] != nil {
			continue // every resource of the type includes other devices'
		}
		if acts := a.actions[k]; len(acts) > 1 {
			f.Message += "; also " + strings.Join(acts[1:], ", ")
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Statement < out[j].Statement })
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// AuditPartner asks the evaluator what a partner certificate of capability A may do beyond publishing to its agreed
// topic (and, when clientID is set, connecting as that one client id). Any other action, topic, client id or thing it
// is allowed is a finding. topic may hold the wildcards the operator allowed on purpose.
func AuditPartner(d *Document, topic, clientID string) ([]Finding, error) {
	d = d.Rendered(ProbePartition, ProbeRegion, ProbeAccount)
	self := Principal{ClientID: clientID, Subject: map[string]string{"CommonName": EncodeTopicCN(topic)}, CertificateID: strings.Repeat("ab", 32)}
	if self.ClientID == "" {
		self.ClientID = "partner-client"
	}
	a := newAuditor(d, self)
	agreed, _ := compilePattern(a.arn("topic", topic), &Principal{}, false, false)
	probes := map[string][]string{
		"topic":       {topic + "x", topic + "/x", "x" + topic, "x/" + topic},
		"topicfilter": {topic, topic + "/#", "#"},
		"client":      {self.ClientID + "x", "x" + self.ClientID},
		"thing":       {},
	}
	if i := strings.LastIndexByte(topic, '/'); i > 0 {
		probes["topic"] = append(probes["topic"], topic[:i], topic[:i]+"/zz")
	}
	for typ, names := range unlisted {
		probes[typ] = append(probes[typ], names...)
	}
	actions := append([]actionInfo(nil), probeActions...)
	for _, act := range a.otherActions() {
		for _, typ := range probeTypes {
			actions = append(actions, actionInfo{act.name, typ})
		}
	}
	for _, act := range actions {
		cands := map[string]bool{}
		for _, n := range probes[act.typ] {
			cands[a.arn(act.typ, n)] = true
		}
		if act.typ == "client" {
			cands[a.arn("client", self.ClientID)] = true
		}
		if act.typ == "topic" {
			cands[a.arn("topic", topic)] = true
		}
		for _, e := range a.entries {
			if w, ok := intersect(e.pat, append(literal(a.arn(act.typ, "")), token{'*', 0}), 'x'); ok {
				cands[w] = true
			}
		}
		list := make([]string, 0, len(cands))
		for c := range cands {
			list = append(list, c)
		}
		sort.Strings(list)
		for _, w := range list {
			if (act.name == "iot:Publish" && agreed.match(w)) || (act.name == "iot:Connect" && clientID != "" && w == a.arn("client", clientID)) {
				continue
			}
			dec, ok := a.allowed(act, w)
			if a.err != nil {
				return nil, a.err
			}
			if ok {
				a.addExample(RulePartnerScope, dec.Statement, act.name, w, fmt.Sprintf("the partner may %s on %q beyond its agreed topic %q (%s)", act.name, a.short(w), topic, dec.Entry))
			}
		}
	}
	return a.findings(), nil
}

// EncodeTopicCN writes a topic as the partner's certificate common name carries it ("/" as "%2F").
func EncodeTopicCN(topic string) string { return strings.ReplaceAll(topic, "/", "%2F") }
