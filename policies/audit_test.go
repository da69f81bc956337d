package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func oneStatement(action, resource string) []byte {
	return []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"` + resource + `"}]}`)
}

// The bypasses of two outside reviews, through Check: each one is refused and named by its rule. The last seven
// passed the pattern rules the evaluator replaced.
func TestCheckRefusesBypasses(t *testing.T) {
	tests := []struct {
		name, action, resource, rule string
	}{
		{"every type", "iot:Publish", acct + "*/*", RuleResourceStar},
		{"every topic", "iot:Publish", acct + "topic/*", RuleResourceStar},
		{"every topic filter", "iot:Subscribe", acct + "topicfilter/*", RuleResourceStar},
		{"every client", "iot:Connect", acct + "client/*", RuleConnectScope},
		{"thing name prefix", "iot:Connect", acct + "client/${iot:Connection.Thing.ThingName}*", RuleVariableWildcard},
		{"wildcard in the type: topic*", "iot:Publish", acct + "topic*", RuleResourceStar},
		{"wildcard in the type: topicfilter*", "iot:Subscribe", acct + "topicfilter*", RuleResourceStar},
		{"wildcard in the type: t*", "iot:Receive", acct + "t*", RuleResourceStar},
		{"wildcard before the thing name: client", "iot:Connect", acct + "client/*${iot:Connection.Thing.ThingName}", RuleVariableWildcard},
		{"wildcard before the thing name: topic level", "iot:Publish", acct + "topic/dt/*${iot:Connection.Thing.ThingName}/*", RuleVariableWildcard},
		{"every device's shadow", "iot:Publish", acct + "topic/$aws/things/*", RuleResourceUnscoped},
		{"a shared subject field as identity", "iot:Connect", acct + "client/${iot:Certificate.Subject.Organization}", RuleSharedIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(oneStatement(tt.action, tt.resource), CheckOptions{})
			var pe *Error
			if !errors.As(err, &pe) || !pe.HasRule(tt.rule) {
				t.Fatalf("Check(%s on %s) = %v, want a %s finding", tt.action, tt.resource, err, tt.rule)
			}
		})
	}
}

// More shapes, each caught by construction: wildcards around variables, around literals next to them, in the middle
// of a level, other variables, NotResource, NotAction and conditions the audit cannot rule out.
func TestAuditShapes(t *testing.T) {
	const tn = "${iot:Connection.Thing.ThingName}"
	tests := []struct {
		name string
		doc  string
		rule string // "" = no finding
	}{
		{"own client id", string(oneStatement("iot:Connect", acct+"client/"+tn)), ""},
		{"own topics", string(oneStatement("iot:Publish", acct+"topic/dt/"+tn+"/*")), ""},
		{"own shadow", string(oneStatement("iot:Subscribe", acct+"topicfilter/$aws/things/"+tn+"/shadow/*")), ""},
		{"wildcard before the thing name under a prefix", string(oneStatement("iot:Publish", acct+"topic/tlm/*/"+tn+"/d2c")), ""},
		{"literal topic", string(oneStatement("iot:Publish", acct+"topic/broadcast/status")), ""},
		{"certificate common name as identity", string(oneStatement("iot:Connect", acct+"client/${iot:Certificate.Subject.CommonName}")), ""},
		{"thing name then a literal then a wildcard", string(oneStatement("iot:Publish", acct+"topic/dt/"+tn+"x*/y")), RuleVariableWildcard},
		{"wildcard around the thing name", string(oneStatement("iot:Receive", acct+"topic/*"+tn+"*")), RuleVariableWildcard},
		{"question marks after the name", string(oneStatement("iot:Connect", acct+"client/"+tn+"??")), RuleVariableWildcard},
		{"client id variable is what the client sends", string(oneStatement("iot:Connect", acct+"client/${iot:ClientId}")), RuleConnectScope},
		{"thing type is shared", string(oneStatement("iot:Publish", acct+"topic/${iot:Connection.Thing.ThingTypeName}/*")), RuleSharedIdentity},
		{"wildcard account and region, literal type", string(oneStatement("iot:Publish", "arn:aws:iot:*:*:topic/dt/*")), RuleResourceUnscoped},
		{"other device's jobs", string(oneStatement("iot:Subscribe", acct+"topicfilter/$aws/things/*/jobs/*")), RuleResourceUnscoped},
		{"other device's shadow over HTTP", string(oneStatement("iot:UpdateThingShadow", acct+"thing/*")), RuleResourceStar},
		{"not resource", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","NotResource":"` + acct + `topic/admin"}]}`, RuleResourceStar},
		{"not action", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iot:Connect","Resource":"` + acct + `topic/dt/` + tn + `/*"}]}`, RuleActionWildcard},
		{"action prefix wildcard", string(oneStatement("iot:Pub*", acct+"topic/dt/"+tn+"/x")), RuleActionWildcard},
		{"source-ip condition does not scope", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/*","Condition":{"StringEquals":{"iot:Connection.SourceIp":"10.0.0.1"}}}]}`, RuleConnectScope},
		{"deny takes back the wildcard", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/` + tn + `*"},{"Effect":"Deny","Action":"iot:Connect","NotResource":"` + acct + `client/` + tn + `"}]}`, ""},
		{"a deny the device's request may dodge does not", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/*"},{"Effect":"Deny","Action":"iot:Connect","Resource":"*","Condition":{"StringEquals":{"iot:Connection.SourceIp":"10.0.0.1"}}}]}`, RuleConnectScope},
		{"cloudformation placeholder region", string(oneStatement("iot:Connect", "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:client/*")), RuleConnectScope},
		{"an action the probes do not know, on every resource", string(oneStatement("iot:A", "*")), RuleResourceStar},
		{"unknown template value is any text", string(oneStatement("iot:Publish", acct+"topic/${TopicParam}")), RuleResourceStar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, tt.doc)
			got, err := AuditDevice(d, CheckThing)
			if err != nil {
				t.Fatal(err)
			}
			if tt.rule == "" {
				if len(got) != 0 {
					t.Fatalf("AuditDevice(%s) = %v, want no finding", tt.doc, got)
				}
				return
			}
			for _, f := range got {
				if f.Rule == tt.rule {
					return
				}
			}
			t.Fatalf("AuditDevice(%s) = %v, want a %s finding", tt.doc, got, tt.rule)
		})
	}
}

// Every policy the app ships passes; so do they with what certificate rotation adds to a device's own identity
// (its rotation topics and its own jobs), while the same grants for another thing are findings.
func TestAuditShippedPolicies(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("shipped policies: %v, %v", files, err)
	}
	const tn = "${iot:Connection.Thing.ThingName}"
	const arn = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"
	rotation := `,{"Effect":"Allow","Action":"iot:Publish","Resource":["` + arn + `topic/iotcert/` + tn + `/rotation/csr","` + arn + `topic/iotcert/` + tn + `/rotation/confirm","` + arn + `topic/$aws/things/` + tn + `/jobs/*"]},` +
		`{"Effect":"Allow","Action":"iot:Subscribe","Resource":["` + arn + `topicfilter/iotcert/` + tn + `/rotation/certificate","` + arn + `topicfilter/$aws/things/` + tn + `/jobs/*"]},` +
		`{"Effect":"Allow","Action":"iot:Receive","Resource":["` + arn + `topic/iotcert/` + tn + `/rotation/certificate","` + arn + `topic/$aws/things/` + tn + `/jobs/*"]}]}`
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(f, func(t *testing.T) {
			if _, err := Check(doc, CheckOptions{}); err != nil {
				t.Errorf("Check(%s) = %v", f, err)
			}
			withRotation := strings.TrimSuffix(strings.TrimSpace(string(doc)), "]\n}")
			withRotation = strings.TrimSuffix(strings.TrimSpace(withRotation), "]}")
			withRotation = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(withRotation), "}")) + "}" + rotation
			// Audited directly: with the rotation grants some documents pass AWS IoT's size limit, which is not the
			// question here.
			if got, err := AuditDevice(mustParse(t, withRotation), CheckThing); err != nil || len(got) != 0 {
				t.Errorf("AuditDevice(%s with the rotation grants) = %v, %v, want no finding", f, got, err)
			}
			other := strings.ReplaceAll(rotation, tn, "*")
			if got, _ := AuditDevice(mustParse(t, strings.TrimSuffix(withRotation, rotation)+other), CheckThing); len(got) == 0 {
				t.Errorf("AuditDevice(%s with every thing's rotation and jobs topics) = no finding, want findings", f)
			}
		})
	}
}

func TestAuditPartner(t *testing.T) {
	partner := func(topic, client string) *Document {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"` + acct + `topic/` + topic + `"}`
		if client != "" {
			doc += `,{"Effect":"Allow","Action":"iot:Connect","Resource":"` + acct + `client/` + client + `"}`
		}
		return mustParse(t, doc+`]}`)
	}
	tests := []struct {
		name          string
		d             *Document
		topic, client string
		want          int
	}{
		{"publish only", partner("partner/data", ""), "partner/data", "", 0},
		{"publish and one client id", partner("partner/data", "producer-1"), "partner/data", "producer-1", 0},
		{"basic ingest", partner("$aws/rules/ingest/data", ""), "$aws/rules/ingest/data", "", 0},
		{"agreed wildcard", partner("partner/*", ""), "partner/*", "", 0},
		{"more topics than agreed", partner("partner/*", ""), "partner/data", "", 1},
		{"a client id it was not given", partner("partner/data", "producer-*"), "partner/data", "producer-1", 1},
		{"subscribe too", mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Publish","iot:Subscribe"],"Resource":["`+acct+`topic/partner/data","`+acct+`topicfilter/partner/data"]}]}`), "partner/data", "", 1},
		{"an action the probes do not know", mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"`+acct+`topic/partner/data"},{"Effect":"Allow","Action":"iot:AssumeRoleWithCertificate","Resource":"*"}]}`), "partner/data", "", 1},
		{"every action", mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"`+acct+`topic/partner/data"}]}`), "partner/data", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AuditPartner(tt.d, tt.topic, tt.client)
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) > 0) != (tt.want > 0) {
				t.Fatalf("AuditPartner(%q, %q) = %v, want findings: %v", tt.topic, tt.client, got, tt.want > 0)
			}
			for _, f := range got {
				if f.Rule != RulePartnerScope || f.Resource == "" {
					t.Errorf("finding %v: want rule %s with an example", f, RulePartnerScope)
				}
			}
		})
	}
}

// A grant that holds only when the certificate is attached to no thing is a grant to every such certificate: the
// audited device itself never meets the condition, so only a principal with no thing finds it.
func TestAuditFindsGrantsToUnattachedCertificates(t *testing.T) {
	a := "arn:aws:iot:us-east-1:123456789012:"
	doc, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Action":"iot:Connect","Resource":"` + a + `client/${iot:Connection.Thing.ThingName}"},` +
		`{"Effect":"Allow","Action":"iot:Publish","Resource":"` + a + `topic/*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"false"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := AuditDevice(doc, "sensor-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 1 || f[0].Rule != RuleResourceStar || f[0].Statement != 2 {
		t.Fatalf("AuditDevice = %+v, want one %s finding on statement 2", f, RuleResourceStar)
	}
}

// AWS IoT's event topics name a job or a client, not a thing: a grant on them is a grant on every device's events
// (AWS's basic job policy example grants publishing there; the rotation's completion function listens there).
func TestAuditFindsGrantsOnEventTopics(t *testing.T) {
	a := "arn:aws:iot:us-east-1:123456789012:"
	for _, grant := range []string{
		`"Action":"iot:Publish","Resource":["` + a + `topic/$aws/events/jobExecution/*","` + a + `topic/$aws/events/job/*"]`,
		`"Action":"iot:Receive","Resource":"` + a + `topic/$aws/events/jobExecution/*"`,
		`"Action":"iot:Subscribe","Resource":"` + a + `topicfilter/$aws/events/*"`,
	} {
		doc, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[` +
			`{"Effect":"Allow","Action":"iot:Connect","Resource":"` + a + `client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},` +
			`{"Effect":"Allow",` + grant + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		f, err := AuditDevice(doc, "sensor-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(f) == 0 || f[0].Statement != 2 {
			t.Errorf("AuditDevice(%s) = %+v, want a finding on statement 2", grant, f)
		}
	}
}

// A wildcard topic grant without a policy variable is the same for every device: whatever the prefix, the topics
// under it include each device's (dev/* holds dev/<thing>), not only the layouts the audit knows by name.
func TestAuditFindsSharedWildcardNamespaces(t *testing.T) {
	a := "arn:aws:iot:us-east-1:123456789012:"
	for _, grant := range []string{
		`"Action":"iot:Publish","Resource":"` + a + `topic/dev/*"`,
		`"Action":"iot:Receive","Resource":"` + a + `topic/devices/*/telemetry"`,
		`"Action":"iot:Subscribe","Resource":"` + a + `topicfilter/sensors/*"`,
	} {
		doc, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[` +
			`{"Effect":"Allow","Action":"iot:Connect","Resource":"` + a + `client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},` +
			`{"Effect":"Allow",` + grant + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		f, err := AuditDevice(doc, "sensor-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(f) == 0 || f[0].Statement != 2 || f[0].Rule != RuleResourceUnscoped {
			t.Errorf("AuditDevice(%s) = %+v, want a %s finding on statement 2", grant, f, RuleResourceUnscoped)
		}
	}
}

// A grant gated on a thing attribute is a grant to every device an operator gives that attribute: the audited device
// is asked about with attributes unknown, so the gate counts as open.
func TestAuditFindsAttributeGatedGrants(t *testing.T) {
	a := "arn:aws:iot:us-east-1:123456789012:"
	doc, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Action":"iot:Connect","Resource":"` + a + `client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},` +
		`{"Effect":"Allow","Action":"iot:Publish","Resource":"` + a + `topic/things/*","Condition":{"StringEquals":{"iot:Connection.Thing.Attributes[role]":"gateway"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := AuditDevice(doc, "sensor-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(f) == 0 || f[0].Statement != 2 {
		t.Fatalf("AuditDevice = %+v, want a finding on statement 2", f)
	}
	// The evaluator itself still judges a device without the attribute as AWS does: the statement does not apply.
	dec, err := doc.Evaluate(Request{Principal: DevicePrincipal("sensor-1"), Action: "iot:Publish", Resource: a + "topic/things/other/x"})
	if err != nil || dec.Allowed {
		t.Fatalf("Evaluate without the attribute = %+v, %v; want denied", dec, err)
	}
}
