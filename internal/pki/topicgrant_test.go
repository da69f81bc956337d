package pki

import (
	"strings"
	"testing"
)

func TestCheckTopicGrant(t *testing.T) {
	tests := []struct {
		name, topic   string
		allowWildcard bool
		wantErr       string // "" = accepted
	}{
		{"plain", "producer1/data", false, ""},
		{"basic ingest", "$aws/rules/ingest_rule/producer1", false, ""},
		{"basic ingest, deeper", "$aws/rules/r/a/b/c", false, ""},
		{"dollar inside", "price/$5", false, ""},
		{"star", "*", false, `topic "*" contains the IAM wildcard "*"`},
		{"star at end", "producer1/*", false, `topic "producer1/*" contains the IAM wildcard "*"`},
		{"question mark", "producer?/data", false, `topic "producer?/data" contains the IAM wildcard "?"`},
		{"star allowed", "producer1/*", true, ""},
		{"bare star allowed", "*", true, ""},
		{"policy variable", "things/${iot:Connection.Thing.ThingName}", false, `topic "things/${iot:Connection.Thing.ThingName}" contains "${"`},
		{"policy variable even with the flag", "${iot:ClientId}", true, `contains "${"`},
		{"other device's shadow", "$aws/things/victim/shadow/update", false, `topic "$aws/things/victim/shadow/update" is a reserved topic`},
		{"reserved even with the flag", "$aws/things/victim/shadow/update", true, "is a reserved topic"},
		{"reserved events", "$aws/events/thing/x", false, "is a reserved topic"},
		{"dollar first", "$other/topic", false, "is a reserved topic"},
		{"basic ingest without a topic", "$aws/rules/r/", false, "is a reserved topic"},
		{"basic ingest without a rule", "$aws/rules//x", false, "is a reserved topic"},
		{"basic ingest, bad rule name", "$aws/rules/a-b/x", false, "is a reserved topic"},
		{"basic ingest wildcard rule", "$aws/rules/*/x", true, "is a reserved topic"},
		{"basic ingest wildcard topic refused", "$aws/rules/r/*", false, `contains the IAM wildcard "*"`},
		{"basic ingest wildcard topic allowed", "$aws/rules/r/*", true, ""},
		{"mqtt wildcard still refused", "a/+", true, "MQTT wildcard"},
		{"empty", "", false, "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTopicGrant(tt.topic, tt.allowWildcard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckTopicGrant(%q, %v) = %v, want nil", tt.topic, tt.allowWildcard, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckTopicGrant(%q, %v) = %v, want error containing %q", tt.topic, tt.allowWildcard, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("CheckTopicGrant(%q) error spans lines: %q", tt.topic, err)
			}
		})
	}
}

// The two CNs of the outside review, as a partner would put them in a CSR.
func TestTopicGrantFromCN(t *testing.T) {
	for _, cn := range []string{"*", "$aws%2Fthings%2Fvictim%2Fshadow%2Fupdate"} {
		if err := CheckTopicGrant(DecodeTopic(cn), false); err == nil {
			t.Errorf("CheckTopicGrant(DecodeTopic(%q)) = nil, want a refusal", cn)
		}
	}
}

// FuzzTopicGrant checks the topic rule against its definition: whatever it accepts is a valid topic that names no
// IAM wildcard (unless allowed), no policy variable and no reserved topic other than Basic Ingest; and allowing
// wildcards never refuses what the strict rule accepts.
func FuzzTopicGrant(f *testing.F) {
	for _, s := range []string{
		"producer1/data", "*", "?", "a*", "${iot:ClientId}", "$aws/things/victim/shadow/update", "$aws%2Fthings%2Fv",
		"$aws/rules/r/x", "$aws/rules/r/", "$aws/rules//x", "$aws/rules/r/*", "$", "$$", "a/${", "a$/{", "%2A", "\x00", "\xff",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, cn string, allowWildcard bool) {
		topic := DecodeTopic(cn)
		err := CheckTopicGrant(topic, allowWildcard)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("CheckTopicGrant(%q) error spans lines", topic)
			}
			return
		}
		if ValidateTopic(topic) != nil {
			t.Fatalf("CheckTopicGrant(%q) = nil, but ValidateTopic refuses it", topic)
		}
		if !allowWildcard && strings.ContainsAny(topic, "*?") {
			t.Fatalf("CheckTopicGrant(%q, false) = nil, but it holds an IAM wildcard", topic)
		}
		if strings.Contains(topic, "${") {
			t.Fatalf("CheckTopicGrant(%q) = nil, but it holds a policy variable", topic)
		}
		if strings.HasPrefix(topic, "$") {
			rest, ok := strings.CutPrefix(topic, "$aws/rules/")
			rule, tail, _ := strings.Cut(rest, "/")
			if !ok || rule == "" || strings.Trim(rule, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" || tail == "" {
				t.Fatalf("CheckTopicGrant(%q) = nil, but it is a reserved topic other than Basic Ingest", topic)
			}
		}
		if !allowWildcard {
			if err := CheckTopicGrant(topic, true); err != nil {
				t.Fatalf("CheckTopicGrant(%q, true) = %v, but the strict rule accepts it", topic, err)
			}
		}
	})
}
