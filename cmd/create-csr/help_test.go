package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestHelpAndUsageErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("run(-h) = %d, stderr %q; want 0 and nothing on stderr", code, stderr.String())
	}
	for _, want := range []string{"create-csr: makes a producer's private key", "usage:\n  create-csr [-dir DIR] <topic>",
		"-dir string", `(default: ".")`, "example:\n  create-csr producer1/data"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("run(-h) = %q, want it to contain %q", stdout.String(), want)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nosuch"}, "create-csr: flag provided but not defined: -nosuch\n"},
		// The seed's message, kept verbatim, as a usage error.
		{"no topic", nil, "create-csr: You must specify the desired topic as the first and only parameter to this script\n"},
		{"empty topic", []string{""}, "create-csr: You must specify the desired topic as the first and only parameter to this script\n"},
		{"two topics", []string{"a", "b"}, "create-csr: You must specify the desired topic as the first and only parameter to this script\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"-dir", dir}, tc.args...), &stdout, &stderr)
			if want := tc.want + "run 'create-csr -h' for help\n"; code != 2 || stderr.String() != want {
				t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("run(%q) wrote %d files, want none", tc.args, len(entries))
			}
		})
	}
}
