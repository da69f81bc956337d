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
	for _, want := range []string{"synthcheck: synthesizes every stack", "-app string\n        app command (default: the one in cdk.json)\n",
		`-out string` + "\n" + `        directory for the cloud assemblies, one per case (default: "cdk.out/check")`, "-case string", "-expect-fail", "-c value",
		"example:\n  go run ./cmd/synthcheck", "-j int", "every distinct template is checked once", "Uninstall section"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("run(-h) = %q, want it to contain %q", stdout.String(), want)
		}
	}
	for _, args := range [][]string{{"-nosuch"}, {"extra"}} {
		stdout.Reset()
		stderr.Reset()
		code := run(args, &stdout, &stderr)
		if lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); code != 2 || len(lines) != 2 || lines[1] != "run 'synthcheck -h' for help" {
			t.Errorf("run(%q) = %d, stderr %q; want 2, one line and the -h hint", args, code, stderr.String())
		}
	}
}
