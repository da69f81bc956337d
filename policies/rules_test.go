package policies

import (
	"errors"
	"strings"
	"testing"
)

// Each rule has compliant and non-compliant cases, cdk-nag style.

func stmt(effect string, actions, resources []string) Statement {
	return Statement{Effect: effect, Action: actions, Resource: resources}
}

func TestRuleActionService(t *testing.T) {
	tests := []struct {
		name string
		s    Statement
		want int // findings
	}{
		{"publish", stmt("Allow", []string{"iot:Publish"}, []string{"*"}), 0},
		{"mixed case prefix", stmt("Allow", []string{"IoT:Publish"}, []string{"*"}), 0},
		{"jobs data plane", stmt("Allow", []string{"iotjobsdata:DescribeJobExecution"}, []string{"*"}), 0},
		{"bare star left to wildcard rule", stmt("Allow", []string{"*"}, []string{"*"}), 0},
		{"iot wildcard is still iot", stmt("Allow", []string{"iot:*"}, []string{"*"}), 0},
		{"s3 action", stmt("Allow", []string{"s3:GetObject"}, []string{"*"}), 1},
		{"no prefix", stmt("Allow", []string{"Publish"}, []string{"*"}), 1},
		{"empty name", stmt("Allow", []string{"iot:"}, []string{"*"}), 1},
		{"space inside", stmt("Allow", []string{"iot: Publish"}, []string{"*"}), 1},
		{"deny is checked too", stmt("Deny", []string{"sts:AssumeRole", "iot:Publish"}, []string{"*"}), 1},
		{"not action", Statement{Effect: "Deny", NotAction: []string{"ec2:*"}, Resource: []string{"*"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleActionService(tt.s); len(got) != tt.want {
				t.Errorf("ruleActionService(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuleActionWildcard(t *testing.T) {
	tests := []struct {
		name string
		s    Statement
		want int
	}{
		{"named actions", stmt("Allow", []string{"iot:Publish", "iot:Receive"}, []string{"*"}), 0},
		{"deny wildcard is fine", stmt("Deny", []string{"iot:*"}, []string{"*"}), 0},
		{"iot star", stmt("Allow", []string{"iot:*"}, []string{"*"}), 1},
		{"prefix wildcard", stmt("Allow", []string{"iot:Pub*"}, []string{"*"}), 1},
		{"question mark", stmt("Allow", []string{"iot:Publis?"}, []string{"*"}), 1},
		{"bare star", stmt("Allow", []string{"*"}, []string{"*"}), 1},
		{"two wildcards", stmt("Allow", []string{"iot:*", "iot:Sub*"}, []string{"*"}), 2},
		{"allow not action", Statement{Effect: "Allow", NotAction: []string{"iot:Connect"}, Resource: []string{"*"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleActionWildcard(tt.s); len(got) != tt.want {
				t.Errorf("ruleActionWildcard(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuleConnectScope(t *testing.T) {
	const arn = "arn:aws:iot:us-east-1:123456789012:"
	tests := []struct {
		name string
		s    Statement
		want int
	}{
		{"thing name variable", stmt("Allow", []string{"iot:Connect"}, []string{arn + "client/${iot:Connection.Thing.ThingName}"}), 0},
		{"certificate cn variable", stmt("Allow", []string{"iot:Connect"}, []string{arn + "client/${iot:Certificate.Subject.CommonName}"}), 0},
		{"literal client id", stmt("Allow", []string{"iot:Connect"}, []string{arn + "client/poolcontroller1"}), 0},
		{"variable with wildcard region", stmt("Allow", []string{"iot:Connect"}, []string{"arn:aws:iot:*:123456789012:client/${iot:Connection.Thing.ThingName}"}), 0},
		{"publish on star is not connect", stmt("Allow", []string{"iot:Publish"}, []string{"*"}), 0},
		{"deny connect on star", stmt("Deny", []string{"iot:Connect"}, []string{"*"}), 0},
		{"connect on star", stmt("Allow", []string{"iot:Connect"}, []string{"*"}), 1},
		{"client star", stmt("Allow", []string{"iot:Connect"}, []string{arn + "client/*"}), 1},
		{"client prefix star", stmt("Allow", []string{"iot:Connect"}, []string{arn + "client/pool-*"}), 1},
		{"client id variable", stmt("Allow", []string{"iot:Connect"}, []string{arn + "client/${iot:ClientId}"}), 1},
		{"iot star grants connect", stmt("Allow", []string{"iot:*"}, []string{arn + "client/*"}), 1},
		{"mixed case action", stmt("Allow", []string{"IOT:CONNECT"}, []string{"*"}), 1},
		{"not resource", Statement{Effect: "Allow", Action: []string{"iot:Connect"}, NotResource: []string{arn + "client/admin"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleConnectScope(tt.s); len(got) != tt.want {
				t.Errorf("ruleConnectScope(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuleResourceStar(t *testing.T) {
	tests := []struct {
		name string
		s    Statement
		want int
	}{
		{"topic arn", stmt("Allow", []string{"iot:Publish"}, []string{"arn:aws:iot:us-east-1:123456789012:topic/a"}), 0},
		{"topic wildcard is scoped", stmt("Allow", []string{"iot:Publish"}, []string{"arn:aws:iot:us-east-1:123456789012:topic/things/*"}), 0},
		{"deny star", stmt("Deny", []string{"iot:Publish"}, []string{"*"}), 0},
		{"star", stmt("Allow", []string{"iot:Publish"}, []string{"*"}), 1},
		{"account star", stmt("Allow", []string{"iot:Publish"}, []string{"arn:aws:iot:us-east-1:123456789012:*"}), 1},
		{"two stars", stmt("Allow", []string{"iot:Publish"}, []string{"*", "arn:aws:iot:*:*:*"}), 2},
		{"not resource", Statement{Effect: "Allow", Action: []string{"iot:Publish"}, NotResource: []string{"arn:aws:iot:us-east-1:1:topic/x"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleResourceStar(tt.s); len(got) != tt.want {
				t.Errorf("ruleResourceStar(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuleSize(t *testing.T) {
	tests := []struct {
		name  string
		chars int
		want  int
	}{
		{"small", 100, 0},
		{"at limit", MaxDocumentChars, 0},
		{"over limit", MaxDocumentChars + 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ruleSize(&Document{Chars: tt.chars})
			if len(got) != tt.want {
				t.Errorf("ruleSize(%d chars) = %q, want %d findings", tt.chars, got, tt.want)
			}
			if tt.want > 0 && !strings.Contains(got[0], "2048") {
				t.Errorf("ruleSize(%d chars) = %q, want the limit named", tt.chars, got[0])
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"iot:connect", "iot:connect", true},
		{"iot:*", "iot:connect", true},
		{"*", "iot:connect", true},
		{"iot:con*", "iot:connect", true},
		{"iot:c?nnect", "iot:connect", true},
		{"*:*t", "iot:connect", true},
		{"iot:pub*", "iot:connect", false},
		{"iot:connect?", "iot:connect", false},
		{"", "iot:connect", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.p, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestRuleResourceTypeWildcard(t *testing.T) {
	const acct = "arn:aws:iot:us-east-1:123456789012:"
	tests := []struct {
		name string
		s    Statement
		want int
	}{
		{"topic arn", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/a/b"}), 0},
		{"wildcard region and account, literal type", stmt("Allow", []string{"iot:Publish"}, []string{"arn:aws:iot:*:*:topic/a"}), 0},
		{"deny on every type", stmt("Deny", []string{"iot:Publish"}, []string{acct + "*/*"}), 0},
		{"bare star left to the resource rule", stmt("Allow", []string{"iot:Publish"}, []string{"*"}), 0},
		{"star type", stmt("Allow", []string{"iot:Publish"}, []string{acct + "*/*"}), 1},
		{"star type, literal name", stmt("Allow", []string{"iot:Publish"}, []string{acct + "*/secret"}), 1},
		{"partial type", stmt("Allow", []string{"iot:Subscribe"}, []string{acct + "topic*/a"}), 1},
		{"question mark type", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topi?/a"}), 1},
		{"two resources", stmt("Allow", []string{"iot:Publish"}, []string{acct + "*/a", acct + "t*/b"}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleResourceTypeWildcard(tt.s); len(got) != tt.want {
				t.Errorf("ruleResourceTypeWildcard(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuleResourceUnscoped(t *testing.T) {
	const acct = "arn:aws:iot:us-east-1:123456789012:"
	tests := []struct {
		name string
		s    Statement
		want int
	}{
		{"one topic", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/a/b"}), 0},
		{"prefix wildcard", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/things/*"}), 0},
		{"scoped by the thing name", stmt("Allow", []string{"iot:Subscribe"}, []string{acct + "topicfilter/things/${iot:Connection.Thing.ThingName}/*"}), 0},
		{"own client id", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/${iot:Connection.Thing.ThingName}"}), 0},
		{"deny every topic", stmt("Deny", []string{"iot:Publish"}, []string{acct + "topic/*"}), 0},
		{"every topic", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/*"}), 1},
		{"every topic filter", stmt("Allow", []string{"iot:Subscribe"}, []string{acct + "topicfilter/*"}), 1},
		{"every client, connect left to the connect rule", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/*"}), 0},
		{"every client", stmt("Allow", []string{"iot:DeleteConnection"}, []string{acct + "client/*"}), 1},
		{"every thing", stmt("Allow", []string{"iot:UpdateThingShadow"}, []string{acct + "thing/*"}), 1},
		{"levels of wildcards only", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/*/*"}), 1},
		{"question marks", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/?*"}), 1},
		{"wildcard region still unscoped", stmt("Allow", []string{"iot:Receive"}, []string{"arn:aws:iot:*:123456789012:topic/*"}), 1},
		{"two unscoped", stmt("Allow", []string{"iot:Publish", "iot:Receive"}, []string{acct + "topic/*", acct + "topicfilter/*"}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleResourceUnscoped(tt.s); len(got) != tt.want {
				t.Errorf("ruleResourceUnscoped(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuleVariableWildcard(t *testing.T) {
	const acct = "arn:aws:iot:us-east-1:123456789012:"
	tests := []struct {
		name string
		s    Statement
		want int
	}{
		{"own client id", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/${iot:Connection.Thing.ThingName}"}), 0},
		{"own topics under a slash", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/things/${iot:Connection.Thing.ThingName}/*"}), 0},
		{"wildcard before the variable", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/tlm/*/${iot:Connection.Thing.ThingName}/d2c"}), 0},
		{"deny", stmt("Deny", []string{"iot:Connect"}, []string{acct + "client/${iot:Connection.Thing.ThingName}*"}), 0},
		{"client id prefix", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/${iot:Connection.Thing.ThingName}*"}), 1},
		{"after a dash", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/${iot:Connection.Thing.ThingName}-*"}), 1},
		{"topic level prefix", stmt("Allow", []string{"iot:Publish"}, []string{acct + "topic/things/${iot:Connection.Thing.ThingName}_?/x"}), 1},
		{"certificate cn prefix", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/${iot:Certificate.Subject.CommonName}*"}), 1},
		{"lower-case variable", stmt("Allow", []string{"iot:Connect"}, []string{acct + "client/${IOT:CONNECTION.THING.THINGNAME}*"}), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleVariableWildcard(tt.s); len(got) != tt.want {
				t.Errorf("ruleVariableWildcard(%v) = %q, want %d findings", tt.s, got, tt.want)
			}
		})
	}
}

// The bypasses of an outside review, through Check: each one is refused, and named by its rule.
func TestCheckRefusesBypasses(t *testing.T) {
	const acct = "arn:aws:iot:us-east-1:123456789012:"
	doc := func(action, resource string) []byte {
		return []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"` + resource + `"}]}`)
	}
	tests := []struct {
		name, action, resource, rule string
	}{
		{"every type", "iot:Publish", acct + "*/*", RuleResourceType},
		{"every topic", "iot:Publish", acct + "topic/*", RuleResourceUnscoped},
		{"every topic filter", "iot:Subscribe", acct + "topicfilter/*", RuleResourceUnscoped},
		{"every client", "iot:Connect", acct + "client/*", RuleConnectScope},
		{"thing name prefix", "iot:Connect", acct + "client/${iot:Connection.Thing.ThingName}*", RuleVariableWildcard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(doc(tt.action, tt.resource), CheckOptions{})
			var pe *Error
			if !errors.As(err, &pe) || !pe.HasRule(tt.rule) {
				t.Fatalf("Check(%s on %s) = %v, want a %s finding", tt.action, tt.resource, err, tt.rule)
			}
		})
	}
}
