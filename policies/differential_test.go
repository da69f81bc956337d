package policies

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The differential fuzz target: a policy generated from the input, another device and one of its resources chosen
// from the input too (any name, not only those the audit derives). When the evaluator allows the audited device that
// other device's resource, the audit must have a finding; and every finding's example must be a request the evaluator
// allows.

// genReader hands out input bytes, zero once they run out.
type genReader struct {
	b []byte
	i int
}

func (g *genReader) next() int {
	if g.i >= len(g.b) {
		return 0
	}
	g.i++
	return int(g.b[g.i-1])
}

func (g *genReader) pick(list []string) string { return list[g.next()%len(list)] }

var (
	genLevels = []string{"dt", "cmd", "$aws", "things", "shadow", "x", "+", "#", "*", "dev-b", "a"}
	genAround = []string{"", "", "", "*", "?", "x", "-", "1", "*x", "x*", "??", "a*b"}
	genVars   = []string{"${iot:Connection.Thing.ThingName}", "${iot:Connection.Thing.ThingName}", "${iot:ClientId}",
		"${iot:Certificate.Subject.CommonName}", "${iot:Certificate.Subject.Organization}"}
	genActions = []string{"iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe", "iot:GetThingShadow", "iot:*", "iot:Publish", "iot:Subscribe"}
	genTypes   = []string{"topic", "topicfilter", "client", "thing", "topic", "topicfilter", "client", "t*", "*"}
	genPieces  = []string{"*", "?", "${iot:Connection.Thing.ThingName}", "${iot:ClientId}", "${iot:Certificate.Subject.Organization}",
		"${iot:Certificate.Subject.CommonName}", "dt", "cmd", "$aws", "things", "shadow", "x", "dev", "b", "+", "#", "-", "1",
		"${iot:Connection.Thing.ThingName}", "*", "dev-b", "a"}
	genNames = []string{"dev-b", "a", "b", "1", "-", "x", "dt", "c", "dev", "_", ":", "dev-c", "bb"}
)

func genResource(g *genReader) string {
	typ := g.pick(genTypes)
	if typ == "*" {
		return "*"
	}
	var levels []string
	for n := 1 + g.next()%3; n > 0; n-- {
		var b strings.Builder
		switch g.next() % 4 {
		case 0: // free pieces
			for k := 1 + g.next()%3; k > 0; k-- {
				b.WriteString(g.pick(genPieces))
			}
		case 1:
			b.WriteString(g.pick(genLevels))
		default: // a variable with something around it
			b.WriteString(g.pick(genAround) + g.pick(genVars) + g.pick(genAround))
		}
		levels = append(levels, b.String())
	}
	return acct + typ + "/" + strings.Join(levels, "/")
}

func genPolicy(g *genReader) []byte {
	var stmts []map[string]any
	for n := 1 + g.next()%3; n > 0; n-- {
		s := map[string]any{"Effect": "Allow"}
		if g.next()%5 == 0 {
			s["Effect"] = "Deny"
		}
		var actions, resources []string
		for k := 1 + g.next()%2; k > 0; k-- {
			actions = append(actions, g.pick(genActions))
		}
		for k := 1 + g.next()%2; k > 0; k-- {
			resources = append(resources, genResource(g))
		}
		s["Action"] = actions
		if g.next()%7 == 0 {
			s["NotResource"] = resources
		} else {
			s["Resource"] = resources
		}
		if g.next()%3 == 0 {
			s["Condition"] = map[string]any{"Bool": map[string]any{"iot:Connection.Thing.IsAttached": "true"}}
		}
		stmts = append(stmts, s)
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	return b
}

// literalRuns are the runs of thing-name characters without a wildcard in the policy's Allow resources, as they read
// for the principal: names the author wrote on purpose, which the audit does not treat as other devices.
func literalRuns(d *Document, p *Principal) map[string]bool {
	out := map[string]bool{}
	for _, s := range d.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, e := range append(append([]string(nil), s.Resource...), s.NotResource...) {
			pat, ok := compilePattern(e, p, true, true)
			if !ok {
				continue
			}
			var cur []rune
			wild := false
			for _, t := range append(pat, token{'l', '/'}) {
				switch {
				case t.kind != 'l':
					wild = true
				case isThingNameRune(t.r):
					cur = append(cur, t.r)
				default:
					if !wild && len(cur) > 0 {
						out[string(cur)] = true
					}
					cur, wild = cur[:0], false
				}
			}
		}
	}
	return out
}

func FuzzAuditDifferential(f *testing.F) {
	for _, r := range []string{"client/*${iot:Connection.Thing.ThingName}", "client/${iot:Connection.Thing.ThingName}*",
		"topic/dt/*${iot:Connection.Thing.ThingName}/*", "topic/dt/${iot:Connection.Thing.ThingName}x*/y", "topic/$aws/things/*",
		"client/${iot:Certificate.Subject.Organization}", "topicfilter/dt/${iot:Connection.Thing.ThingName}/*"} {
		act := "iot:Publish"
		switch {
		case strings.HasPrefix(r, "client/"):
			act = "iot:Connect"
		case strings.HasPrefix(r, "topicfilter/"):
			act = "iot:Subscribe"
		}
		f.Add(append(append(oneStatement(act, acct+r), 0), 3, 1, 7, 2, 5, 9))
	}
	f.Add(append(append(DefaultThingPolicy(), 0), 1, 2, 3, 4))
	f.Add([]byte{0, 0, 0, 0, 1, 0, 2, 6})
	f.Add([]byte("client/*${thing}"))
	f.Add([]byte{1, 0, 0, 2, 0, 1, 0, 2, 2, 8, 1, 3, 4})
	f.Add([]byte{2, 1, 1, 0, 0, 2, 19, 7, 0, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, in []byte) {
		// An input that starts with "{" carries a policy up to its first NUL byte; any other is read by the
		// generator.
		var doc []byte
		g := &genReader{b: in}
		if len(in) > 0 && in[0] == '{' {
			end := len(in)
			for i, c := range in {
				if c == 0 {
					end = i
					break
				}
			}
			doc, g = in[:end], &genReader{b: in[min(end+1, len(in)):]}
			if checkSyntax(doc) != nil {
				return
			}
		} else {
			doc = genPolicy(g)
		}
		d, f := parseDocument(doc)
		if f != nil {
			if in[0] == '{' {
				return
			}
			t.Fatalf("generated policy %s: %v", doc, f)
		}
		for _, s := range d.Statement {
			for op := range s.Condition {
				if !ConditionOperatorKnown(op) {
					return
				}
			}
		}
		findings, err := AuditDevice(d, CheckThing)
		if err != nil {
			t.Fatalf("AuditDevice(%s) = %v", doc, err)
		}
		self := DevicePrincipal(CheckThing)
		// Every finding's example is allowed.
		for _, fd := range findings {
			if fd.Resource == "" {
				continue
			}
			p := self
			if strings.HasPrefix(fd.Resource, acct+"client/") {
				p.ClientID = strings.TrimPrefix(fd.Resource, acct+"client/")
			}
			dec, err := d.evaluate(Request{Principal: p, Action: fd.Action, Resource: fd.Resource}, true)
			if err != nil || !dec.Allowed {
				t.Fatalf("policy %s: finding %v, but the evaluator says %v, %v", doc, fd, dec, err)
			}
		}
		// Other devices, any names, and every resource of theirs.
		for n := 0; n < 4; n++ {
			var name strings.Builder
			for k := 1 + g.next()%3; k > 0; k-- {
				name.WriteString(g.pick(genNames))
			}
			v := name.String()
			if v == CheckThing || literalRuns(d, &self)[v] {
				continue
			}
			if leak := otherDeviceLeak(t, d, self, v); leak != "" && len(findings) == 0 {
				t.Fatalf("policy %s: %s, but the audit found nothing", doc, leak)
			}
		}
	})
}

// otherDeviceLeak returns a request of self on a resource of the device v that the evaluator allows, if there is one.
// v's resources are its well-known topics and client id, and each policy entry with a variable as it reads for v,
// with its wildcards filled in, when the policy gives it to v.
func otherDeviceLeak(t *testing.T, d *Document, self Principal, v string) string {
	other := DevicePrincipal(v)
	allowed := func(p Principal, act actionInfo, resource string) bool {
		if act.typ == "client" {
			p.ClientID = strings.TrimPrefix(resource, acct+"client/")
		}
		dec, err := d.evaluate(Request{Principal: p, Action: act.name, Resource: resource}, true)
		if err != nil {
			t.Fatal(err)
		}
		return dec.Allowed
	}
	for _, act := range probeActions {
		list := deviceTopics
		switch act.typ {
		case "client", "thing":
			list = []string{"{}"}
		case "topicfilter":
			list = append(append([]string(nil), deviceTopics...), deviceFilters...)
		}
		for _, l := range list {
			r := acct + act.typ + "/" + strings.ReplaceAll(l, "{}", v)
			if allowed(self, act, r) {
				return fmt.Sprintf("thing %s may %s on %s of thing %s", CheckThing, act.name, r, v)
			}
		}
		for _, s := range d.Statement {
			if s.Effect != "Allow" {
				continue
			}
			for _, e := range s.Resource {
				if !strings.Contains(e, "${") || !strings.HasPrefix(e, acct+act.typ+"/") {
					continue
				}
				pat, ok := compilePattern(e, &other, true, true)
				if !ok {
					continue
				}
				for _, fill := range []string{"", "x", v, "1", "/"} {
					var b strings.Builder
					for _, tk := range pat {
						if tk.kind == 'l' {
							b.WriteRune(tk.r)
						} else {
							b.WriteString(fill)
						}
					}
					r := b.String()
					if allowed(other, act, r) && allowed(self, act, r) {
						return fmt.Sprintf("thing %s may %s on %s, which the policy gives thing %s", CheckThing, act.name, r, v)
					}
				}
			}
		}
	}
	return ""
}
