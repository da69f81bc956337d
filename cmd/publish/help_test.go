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
	for _, want := range []string{"publish: publishes one message", "usage:\n  publish --cert CERT.pem", "example:\n  publish --cert",
		"-cert string", "-key string", "-message string", `(default: "{\"message\": \"Hello, world!\"}")`, "-mqtt\n", "(default: false)",
		"-port int\n        server port (default: 8443 for HTTPS, 8883 for MQTT)\n", "-timeout duration", "(default: 30s)", "-client-id string", "-endpoint string", "-topic string", "-ca string",
		// What the tool is for today, and the defaults the code uses.
		"a device certificate (device-cert sign", "the certificate's subject CN when it is a valid client id", "thing-mr04.cert.pem takes thing-mr04.key"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("run(-h) = %q, want it to contain %q", stdout.String(), want)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nosuch"}, "publish: flag provided but not defined: -nosuch\n"},
		{"bad duration", []string{"--timeout", "soon"}, `publish: invalid value "soon" for flag -timeout: parse error` + "\n"},
		{"argument", []string{"--cert", "a.pem", "extra"}, `publish: unexpected arguments ["extra"]` + "\n"},
		// The seed's message, kept verbatim, as a usage error.
		{"no cert", nil, "publish: The path to the certificate is a required argument\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if want := tc.want + "run 'publish -h' for help\n"; code != 2 || stderr.String() != want {
				t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), want)
			}
		})
	}
}
