package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpAndUsageErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("run(-h) = %d, stderr %q; want 0 and nothing on stderr", code, stderr.String())
	}
	for _, want := range []string{"register: asks the certificate vending API", "usage:\n  register --url", "example:\n  VEND_TOKEN=<token> register",
		"-url string", "-token string\n        device token (default: $VEND_TOKEN)", "-thing string", `-version string` + "\n" + `        version attribute of the thing (default: "1")`,
		"-csr\n", "-key-type string", `(default: "EC_P256")`, "-out string", `(default: ".")`, "-ca string", "-identifier string", `(default: "DeviceToken")`,
		"-timeout duration", "(default: 30s)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("run(-h) = %q, want it to contain %q", stdout.String(), want)
		}
	}
	t.Setenv("VEND_TOKEN", "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nosuch"}, "register: flag provided but not defined: -nosuch\n"},
		{"argument", []string{"--url", "u", "--thing", "t", "--token", "x", "extra"}, `register: unexpected argument "extra"` + "\n"},
		{"no url", []string{"--thing", "t", "--token", "x"}, "register: --url and --thing are required\n"},
		{"no token", []string{"--url", "u", "--thing", "t"}, "register: --token (or VEND_TOKEN) is required\n"},
		{"bad thing", []string{"--url", "u", "--thing", "a b", "--token", "x"}, `register: --thing must match`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != 2 || len(lines) != 2 || !strings.HasPrefix(stderr.String(), tc.want) || lines[1] != "run 'register -h' for help" {
				t.Errorf("run(%q) = %d, stderr %q; want 2, %q and the -h hint", tc.args, code, stderr.String(), tc.want)
			}
		})
	}
}
