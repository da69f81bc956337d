package pki

import (
	"reflect"
	"strings"
	"testing"
)

// A partner may be given a Basic Ingest topic only for a rule the operator allowed: the rule acts with its own role
// on whatever the partner sends.
func TestCheckBasicIngestRule(t *testing.T) {
	tests := []struct {
		name, topic string
		allowed     []string
		wantErr     string // "" = accepted
	}{
		{"not basic ingest", "producer1/data", nil, ""},
		{"reserved but not basic ingest is left to CheckTopicGrant", "$aws/things/x/shadow/update", nil, ""},
		{"allowed rule", "$aws/rules/ingest_a/producer1", []string{"ingest_b", "ingest_a"}, ""},
		{"allowed rule, deeper topic", "$aws/rules/ingest_a/p/q/r", []string{"ingest_a"}, ""},
		{"no rule allowed", "$aws/rules/ingest_a/producer1", nil, `topic "$aws/rules/ingest_a/producer1" delivers by Basic Ingest to the rule "ingest_a", and no rule is allowed to partners`},
		{"another rule", "$aws/rules/admin_actions/x", []string{"ingest_a"}, `to the rule "admin_actions", which is not one of the rules allowed to partners (ingest_a)`},
		{"a prefix of an allowed rule", "$aws/rules/ingest/x", []string{"ingest_a"}, `the rule "ingest"`},
		{"an allowed rule as a prefix", "$aws/rules/ingest_a_admin/x", []string{"ingest_a"}, `the rule "ingest_a_admin"`},
		{"case matters", "$aws/rules/Ingest_A/x", []string{"ingest_a"}, `the rule "Ingest_A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBasicIngestRule(tt.topic, tt.allowed)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckBasicIngestRule(%q, %q) = %v, want nil", tt.topic, tt.allowed, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckBasicIngestRule(%q, %q) = %v, want an error containing %q", tt.topic, tt.allowed, err, tt.wantErr)
			}
		})
	}
}

func TestBasicIngestRule(t *testing.T) {
	for topic, want := range map[string]string{"$aws/rules/r1/x": "r1", "$aws/rules/a_b/x/y": "a_b", "a/b": "", "$aws/rules/r1/": "", "$aws/rules/a-b/x": ""} {
		got, ok := BasicIngestRule(topic)
		if got != want || ok != (want != "") {
			t.Errorf("BasicIngestRule(%q) = %q, %v, want %q", topic, got, ok, want)
		}
	}
}

func TestParseRuleNames(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"  ", nil, ""},
		{"ingest_a", []string{"ingest_a"}, ""},
		{" ingest_a , Ingest_B ", []string{"ingest_a", "Ingest_B"}, ""},
		{"a-b", nil, `"a-b" is not an AWS IoT rule name`},
		{"a,,b", nil, `"" is not an AWS IoT rule name`},
		{"a/b", nil, `"a/b" is not an AWS IoT rule name`},
		{"*", nil, `"*" is not an AWS IoT rule name`},
		{"a,a", nil, `rule "a" is listed twice`},
		{strings.Repeat("r", 129), nil, "is not an AWS IoT rule name"},
	}
	for _, tt := range tests {
		got, err := ParseRuleNames(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRuleNames(%q) = %q, %v, want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRuleNames(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}
