package policies

import (
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
