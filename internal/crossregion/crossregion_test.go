package crossregion

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"cmd/+/cross/region", "cmd/thing-1/cross/region", true},
		{"cmd/+/cross/region", "cmd/thing-1/cross/region/x", false},
		{"cmd/+/cross/region", "cmd/a/b/cross/region", false},
		{"cmd/+/cross/region", "cmd//cross/region", true},
		{"cmd/+/cross/region", "dt/thing-1/cross/region", false},
		{"cmd/#", "cmd/a/b", true},
		{"cmd/#", "cmd", true},
		{"a/b", "a", false},
	}
	for _, tt := range tests {
		if got := Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func envelope(topic, payload, origin, forwarded string) string {
	s := `{"topic":"` + topic + `","payload":"` + payload + `","originRegion":"` + origin + `"`
	if forwarded != "" {
		s += `,"forwardedFrom":` + forwarded
	}
	return s + "}"
}

func TestDecode(t *testing.T) {
	bin := []byte{0, 1, 2, 0xff, '"'}
	b64 := base64.StdEncoding.EncodeToString(bin)
	m, err := Decode(envelope("cmd/t1/cross/region", b64, "us-west-2", ""), DefaultTopicFilter)
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	if m.Topic != "cmd/t1/cross/region" || string(m.Payload) != string(bin) || m.OriginRegion != "us-west-2" || m.Forwarded {
		t.Errorf("Decode() = %+v", m)
	}
	for _, fw := range []string{`["us-west-2"]`, `"us-west-2"`} {
		m, err := Decode(envelope("cmd/t1/cross/region", b64, "us-east-1", fw), DefaultTopicFilter)
		if err != nil || !m.Forwarded {
			t.Errorf("Decode(forwardedFrom %s) = %+v, %v; want Forwarded", fw, m, err)
		}
	}
	for _, fw := range []string{`[]`, `null`, `""`} {
		m, err := Decode(envelope("cmd/t1/cross/region", b64, "us-east-1", fw), DefaultTopicFilter)
		if err != nil || m.Forwarded {
			t.Errorf("Decode(forwardedFrom %s) = %+v, %v; want not Forwarded", fw, m, err)
		}
	}
	bad := []struct{ name, body, want string }{
		{"not JSON", "hello", "not a cross-region envelope"},
		{"shadow topic", envelope("$aws/things/victim/shadow/update", b64, "us-west-2", ""), "reserved"},
		{"other topic", envelope("cmd/t1/other", b64, "us-west-2", ""), "does not match"},
		{"wildcard", envelope("cmd/+/cross/region", b64, "us-west-2", ""), "not a publishable topic"},
		{"deeper", envelope("cmd/a/b/cross/region", b64, "us-west-2", ""), "does not match"},
		{"bad base64", envelope("cmd/t1/cross/region", "%%%", "us-west-2", ""), "not base64"},
		{"no region", envelope("cmd/t1/cross/region", b64, "", ""), "not a region name"},
		{"bad region", envelope("cmd/t1/cross/region", b64, "us west", ""), "not a region name"},
		{"too big", envelope("cmd/t1/cross/region", base64.StdEncoding.EncodeToString(make([]byte, MaxPayload+1)), "us-west-2", ""), "over"},
	}
	for _, tt := range bad {
		if _, err := Decode(tt.body, DefaultTopicFilter); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%s) error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	for _, f := range []string{"cmd/+/cross/region", "cmd/#", "a"} {
		if err := CheckFilter(f); err != nil {
			t.Errorf("CheckFilter(%q) = %v", f, err)
		}
	}
	for _, f := range []string{"", "cmd/#/x", "cmd/a+/x"} {
		if err := CheckFilter(f); err == nil {
			t.Errorf("CheckFilter(%q) = nil, want error", f)
		}
	}
}

func TestRuleSQL(t *testing.T) {
	got := RuleSQL(DefaultTopicFilter, "us-west-2")
	want := "SELECT topic() AS topic, encode(*, 'base64') AS payload, 'us-west-2' AS originRegion, " +
		"get_user_property('iotcert-origin-region') AS forwardedFrom FROM 'cmd/+/cross/region'"
	if got != want {
		t.Errorf("RuleSQL() = %q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(envelope("cmd/t1/cross/region", "aGk=", "us-west-2", ""))
	f.Add(`{"topic":"$aws/x"}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := Decode(body, DefaultTopicFilter)
		if err != nil {
			return
		}
		if !Match(DefaultTopicFilter, m.Topic) || strings.HasPrefix(m.Topic, "$") || len(m.Payload) > MaxPayload {
			t.Fatalf("Decode(%q) accepted %+v", body, m)
		}
	})
}
