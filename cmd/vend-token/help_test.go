package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpAndUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("run(%q) = %d, stderr %q; want 0 and nothing on stderr", args, code, stderr.String())
		}
		for _, want := range []string{"vend-token: manages the device tokens", "usage:\n  vend-token add", "vend-token revoke --secret-id ARN [--table NAME] --id id", "--table",
			"flags of add:", "flags of revoke:", "flags of list:", "-secret-id string\n        ARN or name of the tokens secret (required)\n",
			"-expires duration\n        lifetime of the token; 0 for no expiry (default: 720h0m0s)", "-single-use\n        the token registers one thing only (default: false)",
			"-prefix string", "-id string\n        token id (default: random)", "example:\n  vend-token add --secret-id"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("run(%q) = %q, want it to contain %q", args, stdout.String(), want)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"add", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "vend-token add: manages") || !strings.Contains(stdout.String(), "-single-use") {
		t.Errorf("run(add -h) = %d, %q; want 0 and the help with add's flags", code, stdout.String())
	}
	// Usage errors need no AWS: they are refused before the secret is read.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "vend-token: give a command (usage: vend-token add|revoke|list --secret-id ARN ...)\n"},
		{"unknown command", []string{"rotate"}, `vend-token: unknown command "rotate": use add, revoke or list` + "\n"},
		{"unknown flag", []string{"list", "--nosuch"}, "vend-token list: flag provided but not defined: -nosuch\n"},
		{"no secret", []string{"list"}, "vend-token list: --secret-id is required\n"},
		{"revoke without id", []string{"revoke", "--secret-id", "x"}, "vend-token revoke: --id is required\n"},
		{"negative expiry", []string{"add", "--secret-id", "x", "--expires", "-1h"}, "vend-token add: --expires must not be negative, got -1h0m0s\n"},
		{"argument", []string{"list", "--secret-id", "x", "extra"}, `vend-token list: unexpected argument "extra"` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if want := tc.want + "run 'vend-token -h' for help\n"; code != 2 || stderr.String() != want {
				t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), want)
			}
		})
	}
}
