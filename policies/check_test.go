package policies

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "thing", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckFiles(t *testing.T) {
	tests := []struct {
		file      string
		broad     bool
		wantRules []string // empty: accepted
		wantText  string
	}{
		{file: "policy-good.json"},
		{file: "policy-iot-star.json", wantRules: []string{RuleActionWildcard, RuleConnectScope, RuleResourceStar}, wantText: `action "iot:*" is a wildcard`},
		{file: "policy-iot-star.json", broad: true},
		{file: "policy-not-json.json", wantRules: []string{RuleJSON}, wantText: "offset 169: invalid character '}'"},
		{file: "policy-not-json.json", broad: true, wantRules: []string{RuleJSON}},
		{file: "policy-unscoped-connect.json", wantRules: []string{RuleConnectScope}, wantText: `iot:Connect on every client: thing dev-b may use "zz-unlisted-probe", which no device owns (arn:aws:iot:us-east-2:123456789012:client/*)`},
		{file: "policy-unscoped-connect.json", broad: true},
	}
	for _, tt := range tests {
		name := tt.file
		if tt.broad {
			name += "/broad"
		}
		t.Run(name, func(t *testing.T) {
			doc := readTestdata(t, tt.file)
			d, err := Check(doc, CheckOptions{AllowBroad: tt.broad})
			if len(tt.wantRules) == 0 {
				if err != nil || d == nil {
					t.Fatalf("Check(%s) = %v, %v, want a document", tt.file, d, err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Check(%s) error = %v, want *Error", tt.file, err)
			}
			for _, r := range tt.wantRules {
				if !ce.HasRule(r) {
					t.Errorf("Check(%s) = %v, want a %s finding", tt.file, err, r)
				}
			}
			if len(ce.Findings) != len(tt.wantRules) {
				t.Errorf("Check(%s) = %d findings (%v), want %d", tt.file, len(ce.Findings), err, len(tt.wantRules))
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Check(%s) = %q, want it to contain %q", tt.file, err, tt.wantText)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Check(%s) = %q, want one line", tt.file, err)
			}
		})
	}
}

func TestCheckStructure(t *testing.T) {
	const conn = `"Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"`
	tests := []struct {
		name string
		doc  string
		want string // substring of the error; "" = accepted
	}{
		{"single statement object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow",` + conn + `}}`, ""},
		{"old version", `{"Version":"2008-10-17","Statement":{"Effect":"Allow",` + conn + `}}`, ""},
		{"with id and sid and condition", `{"Id":"x","Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow",` + conn + `,"Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}`, ""},
		{"empty input", ``, "not valid JSON"},
		{"truncated", `{"Version":"2012-10-17",`, "not valid JSON"},
		{"trailing data", `{"Version":"2012-10-17","Statement":{"Effect":"Allow",` + conn + `}} x`, "not valid JSON at offset"},
		{"duplicate effect", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Effect":"Allow",` + conn + `}}`, `duplicate key "Effect"`},
		{"not utf8", "{\"Version\":\"\xff\"}", "not UTF-8"},
		{"list", `[]`, "top level is a list"},
		{"no version", `{"Statement":{"Effect":"Allow",` + conn + `}}`, "no Version"},
		{"bad version", `{"Version":"2020-01-01","Statement":{"Effect":"Allow",` + conn + `}}`, `Version "2020-01-01"`},
		{"numeric version", `{"Version":1,"Statement":{"Effect":"Allow",` + conn + `}}`, "Version is a number"},
		{"no statement", `{"Version":"2012-10-17"}`, "no Statement"},
		{"statement string", `{"Version":"2012-10-17","Statement":"Allow"}`, "Statement is a string, want an object or a list"},
		{"statement empty", `{"Version":"2012-10-17","Statement":[]}`, "Statement is empty"},
		{"statement item not object", `{"Version":"2012-10-17","Statement":[1]}`, "statement 1: statement is a number"},
		{"unknown top key", `{"Version":"2012-10-17","Statment":[]}`, `unknown key "Statment"`},
		{"principal", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*",` + conn + `}}`, `unknown statement key "Principal"`},
		{"lower-case effect key", `{"Version":"2012-10-17","Statement":{"effect":"Allow",` + conn + `}}`, `unknown statement key "effect"`},
		{"no effect", `{"Version":"2012-10-17","Statement":{` + conn + `}}`, "no Effect"},
		{"bad effect", `{"Version":"2012-10-17","Statement":{"Effect":"allow",` + conn + `}}`, `Effect "allow"`},
		{"no action", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`, "no Action"},
		{"empty action list", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`, "Action is an empty list"},
		{"numeric action", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}`, "Action holds a number"},
		{"no resource", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish"}}`, "no Resource"},
		{"condition list", `{"Version":"2012-10-17","Statement":{"Effect":"Allow",` + conn + `,"Condition":[]}}`, "Condition is a list"},
		{"s3 action", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k"}}`, `action "s3:GetObject" is not an AWS IoT action`},
		{"second statement named", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` + conn + `},{"Effect":"Allow","Action":"iot:Pub*","Resource":"arn:aws:iot:us-east-1:123456789012:topic/a"}]}`, `statement 2: action "iot:Pub*" is a wildcard`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check([]byte(tt.doc), CheckOptions{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check(%s) = %v, want no error", tt.doc, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check(%s) = %v, want an error containing %q", tt.doc, err, tt.want)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	resource := func(n int) string {
		return `"arn:aws:iot:us-east-1:123456789012:topic/` + strings.Repeat("a", n) + `"`
	}
	build := func(n int, indent bool) []byte {
		doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":` + resource(n) + `}}`
		if indent {
			var v any
			_ = json.Unmarshal([]byte(doc), &v)
			b, _ := json.MarshalIndent(v, "", "        ")
			return b
		}
		return []byte(doc)
	}
	base := len(build(0, false))
	fill := MaxDocumentChars - base
	tests := []struct {
		name    string
		doc     []byte
		wantErr bool
	}{
		{"exactly the limit", build(fill, false), false},
		{"exactly the limit, indented", build(fill, true), false},
		{"one over", build(fill+1, false), true},
		{"one over, indented", build(fill+1, true), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(tt.doc, CheckOptions{AllowBroad: true})
			if (err != nil) != tt.wantErr {
				t.Errorf("Check(%d bytes) = %v, want error %v", len(tt.doc), err, tt.wantErr)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "2049 characters") {
				t.Errorf("Check(%d bytes) = %v, want the size named", len(tt.doc), err)
			}
		})
	}
}

func TestDefaultThingPolicy(t *testing.T) {
	d, err := Check(DefaultThingPolicy(), CheckOptions{})
	if err != nil {
		t.Fatalf("Check(DefaultThingPolicy()) = %v", err)
	}
	var connect *Statement
	for i, s := range d.Statement {
		for _, a := range s.Action {
			if a == "iot:Connect" {
				connect = &d.Statement[i]
			}
		}
		for _, r := range s.Resource {
			if !strings.Contains(r, "${iot:Connection.Thing.ThingName}") {
				t.Errorf("resource %q is not scoped to the thing name", r)
			}
		}
	}
	if connect == nil {
		t.Fatal("default policy has no iot:Connect statement")
	}
	cond, _ := json.Marshal(connect.Condition)
	if got, want := string(cond), `{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}`; got != want {
		t.Errorf("connect Condition = %s, want %s", got, want)
	}
	// Every action the thing needs for its own topics and shadow, nothing more.
	var actions []string
	for _, s := range d.Statement {
		actions = append(actions, s.Action...)
	}
	if got, want := strings.Join(actions, ","), "iot:Connect,iot:Publish,iot:Receive,iot:Subscribe"; got != want {
		t.Errorf("actions = %s, want %s", got, want)
	}
	// The copy is the caller's.
	DefaultThingPolicy()[0] = 'x'
	if DefaultThingPolicy()[0] != '{' {
		t.Error("DefaultThingPolicy returned the embedded slice")
	}
}

func TestRender(t *testing.T) {
	out, err := Render(DefaultThingPolicy(), "aws", "us-east-2", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		`"arn:aws:iot:us-east-2:123456789012:client/${iot:Connection.Thing.ThingName}"`,
		`"arn:aws:iot:us-east-2:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"`,
		`"arn:aws:iot:us-east-2:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Render() = %s, want it to contain %s", s, want)
		}
	}
	if strings.Contains(s, "${AWS::") {
		t.Errorf("Render() = %s, want no placeholder left", s)
	}
	if _, err := Check(out, CheckOptions{}); err != nil {
		t.Errorf("Check(Render()) = %v", err)
	}

	// Values are string content: a quote cannot break out of the string.
	out, err = Render(DefaultThingPolicy(), "aws", `us-east-1","Effect":"Allow`, "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(out, CheckOptions{}); err != nil {
		t.Errorf("Check(Render(quote)) = %v", err)
	}

	// CDK token strings pass through untouched, to be resolved by CDK.
	m, err := ThingPolicy("${Token[AWS.Partition.1]}", "${Token[AWS.Region.2]}", "${Token[AWS.AccountId.3]}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	if !strings.Contains(string(b), `arn:${Token[AWS.Partition.1]}:iot:${Token[AWS.Region.2]}:${Token[AWS.AccountId.3]}:client/`) {
		t.Errorf("ThingPolicy(tokens) = %s", b)
	}

	for _, tt := range []struct{ p, r, a string }{{"", "r", "a"}, {"p", "", "a"}, {"p", "r", ""}} {
		if _, err := Render(DefaultThingPolicy(), tt.p, tt.r, tt.a); err == nil {
			t.Errorf("Render(%q, %q, %q) = nil error, want error", tt.p, tt.r, tt.a)
		}
	}
	if _, err := Render([]byte("{"), "aws", "r", "a"); err == nil {
		t.Error("Render(invalid JSON) = nil error, want error")
	}
}

func TestCheckTemplate(t *testing.T) {
	tmpl := `{"Resources":{
	  "ThingPolicy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyDocument":{"Version":"2012-10-17","Statement":[
	    {"Effect":"Allow","Action":"iot:Connect","Resource":{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iot:",{"Ref":"AWS::Region"},":",{"Ref":"AWS::AccountId"},":client/${iot:Connection.Thing.ThingName}"]]}},
	    {"Effect":"Allow","Action":"iot:Publish","Resource":{"Fn::Sub":"arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/things/${!iot:Connection.Thing.ThingName}/*"}}]}}},
	  "SeedPolicy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:*"],"Resource":["*"]}]}}},
	  "StringPolicy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":{\"Fn::GetAtt\":[\"X\",\"Arn\"]}}}"}},
	  "ConnectPolicy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":{"Fn::Join":["",["arn:aws:iot:",{"Ref":"AWS::Region"},":1:client/*"]]}}]}}},
	  "Topic":{"Type":"AWS::SNS::Topic"}
	}}`
	n, err := CheckTemplate([]byte(tmpl), CheckOptions{})
	if n != 4 {
		t.Errorf("CheckTemplate() checked %d policies, want 4", n)
	}
	if err == nil {
		t.Fatal("CheckTemplate() = nil error, want errors")
	}
	msg := err.Error()
	for _, want := range []string{"SeedPolicy: iot policy:", "StringPolicy: iot policy:", "ConnectPolicy: iot policy: statement 1: iot:Connect on every client"} {
		if !strings.Contains(msg, want) {
			t.Errorf("CheckTemplate() = %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "ThingPolicy") {
		t.Errorf("CheckTemplate() = %q, want ThingPolicy accepted", msg)
	}
	if _, err := CheckTemplate([]byte("nope"), CheckOptions{}); err == nil {
		t.Error("CheckTemplate(invalid) = nil error, want error")
	}
}

// FuzzCheck: Check never panics, its error is one line, and a document it accepts without AllowBroad never allows a
// wildcard action, NotAction or every resource; AllowBroad accepts a superset. (What an accepted document allows other
// devices is FuzzAuditDifferential's question.)
func FuzzCheck(f *testing.F) {
	for _, name := range []string{"policy-good.json", "policy-iot-star.json", "policy-not-json.json", "policy-unscoped-connect.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "thing", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(DefaultThingPolicy())
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"IOT:*","Resource":"arn:aws:iot:r:a:topic/x"}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Effect":"Allow","Action":"iot:Connect","Resource":"*"}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Check(doc, CheckOptions{})
		if err != nil {
			if d != nil {
				t.Fatalf("Check() = %v, %v: document with an error", d, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Check() error %q spans lines", err)
			}
			return
		}
		for _, s := range d.Statement {
			if s.Effect != "Allow" {
				continue
			}
			if len(s.NotAction) > 0 {
				t.Fatalf("accepted Allow with NotAction: %s", doc)
			}
			for _, a := range s.Action {
				if strings.EqualFold(a, "iot:*") || strings.ContainsAny(a, "*?") {
					t.Fatalf("accepted Allow of %q: %s", a, doc)
				}
			}
			for _, r := range s.Resource {
				if r == "*" {
					t.Fatalf("accepted Allow on \"*\": %s", doc)
				}
			}
		}
		// Broad mode accepts a superset.
		if _, err := Check(doc, CheckOptions{AllowBroad: true}); err != nil {
			t.Fatalf("Check(broad) = %v, but the strict check accepted it", err)
		}
	})
}
