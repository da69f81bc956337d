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
