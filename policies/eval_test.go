package policies

import (
	"strings"
	"testing"
)

const acct = "arn:aws:iot:us-east-1:123456789012:"

func mustParse(t testing.TB, doc string) *Document {
	t.Helper()
	if err := checkSyntax([]byte(doc)); err != nil {
		t.Fatalf("policy %s: %v", doc, err)
	}
	d, f := parseDocument([]byte(doc))
	if f != nil {
		t.Fatalf("policy %s: %v", doc, f)
	}
	return d
}

// Table tests built from the examples of AWS's IoT policy pages; each case names the page it follows.
func TestEvaluateDocumentedExamples(t *testing.T) {
	thing1 := Principal{ThingName: "thing1", ClientID: "thing1", IsAttached: true, CertificateID: "abc123",
		Subject: map[string]string{"CommonName": "thing1", "Organization": "Example Corp", "Country": "US"},
		Issuer:  map[string]string{"CommonName": "Example CA"}}
	other := Principal{ThingName: "thing2", ClientID: "thing2", IsAttached: true}
	notAttached := thing1
	notAttached.IsAttached = false
	tests := []struct {
		name     string
		page     string
		policy   string
		p        Principal
		action   string
		resource string
		want     bool
		stmt     int
	}{
		// pub-sub-policy.html: a client may connect only with its thing name as client id, and only while its
		// certificate is attached to that thing.
		{"connect as own thing name", "thing-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}`,
			thing1, "iot:Connect", acct + "client/thing1", true, 1},
		{"connect as another thing's name", "thing-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}`,
			thing1, "iot:Connect", acct + "client/thing2", false, 0},
		{"certificate not attached", "thing-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}`,
			notAttached, "iot:Connect", acct + "client/thing1", false, 0},
		// iot-policy-variables.html: the client id variable is replaced by the connection's client id.
		{"client id variable", "iot-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/${iot:ClientId}/status"}]}`,
			thing1, "iot:Publish", acct + "topic/thing1/status", true, 1},
		// iot-policy-variables.html: "+" and "#" are literal in a policy; "*" is a wildcard.
		{"plus is literal, not a level wildcard", "iot-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/some/+/topic"}]}`,
			thing1, "iot:Publish", acct + "topic/some/level/topic", false, 0},
		{"plus matches itself", "pub-sub-policy.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Subscribe","Resource":"` + acct + `topicfilter/some/+/topic"}]}`,
			thing1, "iot:Subscribe", acct + "topicfilter/some/+/topic", true, 1},
		{"hash is literal", "pub-sub-policy.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Subscribe","Resource":"` + acct + `topicfilter/some/#"}]}`,
			thing1, "iot:Subscribe", acct + "topicfilter/some/level", false, 0},
		{"star covers the filter some/#", "pub-sub-policy.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Subscribe","Resource":"` + acct + `topicfilter/some/*"}]}`,
			thing1, "iot:Subscribe", acct + "topicfilter/some/#", true, 1},
		{"star spans levels", "pub-sub-policy.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Receive","Resource":"` + acct + `topic/some/*"}]}`,
			thing1, "iot:Receive", acct + "topic/some/a/b/c", true, 1},
		{"question mark is one character", "iot-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/room?/temp"}]}`,
			thing1, "iot:Publish", acct + "topic/room12/temp", false, 0},
		// iot-policy-variables.html: $(*) is a literal asterisk.
		{"escaped star is literal", "iot-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/a$(*)"}]}`,
			thing1, "iot:Publish", acct + "topic/abc", false, 0},
		{"escaped star matches a star", "iot-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/a$(*)"}]}`,
			thing1, "iot:Publish", acct + "topic/a*", true, 1},
		// iot-policies.html: an explicit Deny overrides an Allow; what nothing allows is denied.
		{"explicit deny wins", "iot-policies.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/*"},{"Effect":"Deny","Action":"iot:Publish","Resource":"` + acct + `topic/admin/*"}]}`,
			thing1, "iot:Publish", acct + "topic/admin/reset", false, 2},
		{"allow beside an unrelated deny", "iot-policies.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/*"},{"Effect":"Deny","Action":"iot:Publish","Resource":"` + acct + `topic/admin/*"}]}`,
			thing1, "iot:Publish", acct + "topic/data", true, 1},
		{"default deny", "iot-policies.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/data"}]}`,
			thing1, "iot:Subscribe", acct + "topicfilter/data", false, 0},
		// iot-policy-actions.html: actions are matched with wildcards, case-insensitively.
		{"action wildcard", "iot-policy-actions.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"` + acct + `topic/data"}]}`,
			thing1, "iot:RetainPublish", acct + "topic/data", true, 1},
		{"action case", "iot-policy-actions.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"IOT:PUBLISH","Resource":"` + acct + `topic/data"}]}`,
			thing1, "iot:Publish", acct + "topic/data", true, 1},
		{"resource case matters", "iot-policy-actions.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/Data"}]}`,
			thing1, "iot:Publish", acct + "topic/data", false, 0},
		{"not action", "iot-policies.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iot:Connect","Resource":"` + acct + `topic/data"}]}`,
			thing1, "iot:Publish", acct + "topic/data", true, 1},
		{"not resource", "iot-policies.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","NotResource":"` + acct + `topic/admin"}]}`,
			thing1, "iot:Publish", acct + "topic/anything", true, 1},
		{"not resource excludes", "iot-policies.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","NotResource":"` + acct + `topic/admin"}]}`,
			thing1, "iot:Publish", acct + "topic/admin", false, 0},
		// cert-policy-variables.html: certificate subject fields and id.
		{"certificate common name", "cert-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/${iot:Certificate.Subject.CommonName}/x"}]}`,
			thing1, "iot:Publish", acct + "topic/thing1/x", true, 1},
		{"certificate id", "cert-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/cert/${iot:CertificateId}"}]}`,
			thing1, "iot:Publish", acct + "topic/cert/abc123", true, 1},
		// use-policy-variables.html: a field the certificate does not have leaves its statement unevaluated.
		{"missing subject field", "use-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/${iot:Certificate.Subject.Title}/*"}]}`,
			thing1, "iot:Publish", acct + "topic//x", false, 0},
		{"missing variable in a deny", "use-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/*"},{"Effect":"Deny","Action":"iot:Publish","Resource":"` + acct + `topic/${iot:Certificate.Subject.Title}*"}]}`,
			thing1, "iot:Publish", acct + "topic/x", true, 1},
		{"no thing", "thing-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/${iot:Connection.Thing.ThingName}"}]}`,
			Principal{ClientID: "x"}, "iot:Connect", acct + "client/", false, 0},
		{"thing attribute", "thing-policy-variables.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/${iot:Connection.Thing.Attributes[wing]}/x"}]}`,
			Principal{ThingName: "t", Attributes: map[string]string{"wing": "north"}}, "iot:Publish", acct + "topic/north/x", true, 1},
		// Condition operators (IAM condition operator reference).
		{"string equals on the thing name", "reference_policies_elements_condition_operators.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"StringEquals":{"iot:Connection.Thing.ThingName":["thing1","thing3"]}}}]}`,
			thing1, "iot:Publish", acct + "topic/x", true, 1},
		{"string equals, other thing", "reference_policies_elements_condition_operators.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"StringEquals":{"iot:Connection.Thing.ThingName":["thing1","thing3"]}}}]}`,
			other, "iot:Publish", acct + "topic/x", false, 0},
		{"string like with a variable", "reference_policies_elements_condition_operators.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"StringLike":{"iot:ClientId":"${iot:Connection.Thing.ThingName}*"}}}]}`,
			thing1, "iot:Publish", acct + "topic/x", true, 1},
		{"string not equals on a missing key", "reference_policies_elements_condition_operators.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"StringNotEquals":{"iot:Connection.Thing.ThingTypeName":"sensor"}}}]}`,
			thing1, "iot:Publish", acct + "topic/x", false, 1},
		{"if exists on a missing key", "reference_policies_elements_condition_operators.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"StringEqualsIfExists":{"iot:Connection.Thing.ThingTypeName":"sensor"}}}]}`,
			thing1, "iot:Publish", acct + "topic/x", true, 1},
		{"null", "reference_policies_elements_condition_operators.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"Null":{"iot:Connection.Thing.ThingTypeName":"true"}}}]}`,
			thing1, "iot:Publish", acct + "topic/x", true, 1},
		{"for any value", "reference_policies_condition-single-vs-multi-valued-context-keys.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["b","c"]}}}]}`,
			Principal{Context: map[string][]string{"aws:TagKeys": {"a", "b"}}}, "iot:Publish", acct + "topic/x", true, 1},
		{"for all values", "reference_policies_condition-single-vs-multi-valued-context-keys.html",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/x","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["b","c"]}}}]}`,
			Principal{Context: map[string][]string{"aws:TagKeys": {"a", "b"}}}, "iot:Publish", acct + "topic/x", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, tt.policy)
			got, err := d.Evaluate(Request{Principal: tt.p, Action: tt.action, Resource: tt.resource})
			if err != nil {
				t.Fatalf("Evaluate(%s %s) = %v (%s)", tt.action, tt.resource, err, tt.page)
			}
			if got.Allowed != tt.want || got.Statement != tt.stmt {
				t.Errorf("Evaluate(%s %s) = %v, want allowed %v by statement %d (%s)", tt.action, tt.resource, got, tt.want, tt.stmt, tt.page)
			}
		})
	}
}

func TestEvaluateUnknownOperator(t *testing.T) {
	d := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"`+acct+`topic/x","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}]}`)
	_, err := d.Evaluate(Request{Action: "iot:Publish", Resource: acct + "topic/x"})
	if err == nil || !strings.Contains(err.Error(), "DateGreaterThan") {
		t.Fatalf("Evaluate() = %v, want an error naming the operator", err)
	}
}

// In audit mode a condition on a key the principal does not describe might hold: an Allow counts, a Deny does not.
func TestEvaluateAuditUnknownKeys(t *testing.T) {
	d := mustParse(t, `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":"iot:Publish","Resource":"`+acct+`topic/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
	  {"Effect":"Allow","Action":"iot:Publish","Resource":"`+acct+`topic/*","Condition":{"StringEquals":{"iot:Connection.SourceIp":"10.0.0.1"}}},
	  {"Effect":"Deny","Action":"iot:Publish","Resource":"`+acct+`topic/*","Condition":{"StringEquals":{"iot:DomainName":"x"}}}]}`)
	req := Request{Action: "iot:Publish", Resource: acct + "topic/a"}
	if got, err := d.evaluate(req, false); err == nil {
		t.Fatalf("evaluate(exact) = %v, want an error for IpAddress", got)
	}
	d.Statement = d.Statement[1:]
	got, err := d.evaluate(req, false)
	if err != nil || got.Allowed {
		t.Errorf("evaluate(exact) = %v, %v, want a default deny (the key is absent)", got, err)
	}
	got, err = d.evaluate(req, true)
	if err != nil || !got.Allowed || got.Statement != 1 {
		t.Errorf("evaluate(audit) = %v, %v, want allowed by statement 1", got, err)
	}
}

func TestIntersect(t *testing.T) {
	p := func(s string) pattern { pat, _ := compilePattern(s, &Principal{}, false, false); return pat }
	tests := []struct {
		a, b string
		want string
		ok   bool
	}{
		{"dt/*b/*", "dt/ab/x", "dt/ab/x", true},
		{"dt/*b/*", "dt/ac/x", "", false},
		{"client/*", "client/?", "client/x", true},
		{"a*c", "ab*", "abc", true},
		{"t*", "topic/x", "topic/x", true},
		{"topicfilter/*", "topic/*", "", false},
		{"a?c", "a*", "axc", true},
		{"a$(*)", "a*", "a*", true},
		{"a$(*)", "ab", "", false},
	}
	for _, tt := range tests {
		got, ok := intersect(p(tt.a), p(tt.b), 'x')
		if ok != tt.ok || got != tt.want {
			t.Errorf("intersect(%q, %q) = %q, %v, want %q, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
		if ok && (!p(tt.a).match(got) || !p(tt.b).match(got)) {
			t.Errorf("intersect(%q, %q) = %q, which one of them does not match", tt.a, tt.b, got)
		}
	}
}
