package stacks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The allow_broad_policy hint comes only with a policy refused for its breadth: the flag cannot help a file that is
// not JSON, too large or not a policy, so those messages do not suggest it.
func TestPolicyFileHintOnlyForBreadth(t *testing.T) {
	dir := t.TempDir()
	large := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/` +
		strings.Repeat("a", 2100) + `"}]}`
	notPolicy := `{"hello": "world"}`
	for name, data := range map[string]string{"large.json": large, "not-policy.json": notPolicy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file string
		wantHint   bool
	}{
		{"iot:* is broad", "../testdata/thing/policy-iot-star.json", true},
		{"not JSON", "../testdata/thing/policy-not-json.json", false},
		{"too large", filepath.Join(dir, "large.json"), false},
		{"not a policy", filepath.Join(dir, "not-policy.json"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readThingOptions(ctxOf(map[string]string{"policy_file": tc.file}))
			if err == nil {
				t.Fatalf("readThingOptions(policy_file=%s) = nil error, want a refusal", tc.file)
			}
			if got := strings.Contains(err.Error(), "allow_broad_policy"); got != tc.wantHint {
				t.Errorf("readThingOptions(policy_file=%s) = %q; hint present %v, want %v", tc.file, err, got, tc.wantHint)
			}
		})
	}
}

// DESIRED_TOPIC is validated before anything is written: a topic too long for the certificate's common name leaves no
// fixed-private.pem or fixed-public.csr behind.
func TestDesiredTopicValidatedBeforeWriting(t *testing.T) {
	for _, tc := range []struct{ name, topic, want string }{
		{"65 characters", strings.Repeat("a", 65), "65 characters as a certificate common name"},
		{"slashes count as %2F", strings.Repeat("abcdefg/", 7) + "abcdefghijk", "81 characters as a certificate common name"},
		{"MQTT wildcard", "a/+/b", "MQTT wildcard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := ensureFixedCSR(dir, tc.topic)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ensureFixedCSR(%q) = %v, want an error containing %q", tc.topic, err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("ensureFixedCSR(%q) refused the topic but wrote %d files", tc.topic, len(entries))
			}
		})
	}
	// 64 characters is the bound, and fits.
	if _, err := ensureFixedCSR(t.TempDir(), strings.Repeat("a", 64)); err != nil {
		t.Errorf("ensureFixedCSR(64 characters) = %v, want nil", err)
	}
}
