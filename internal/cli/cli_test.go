package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func newTool() (*Tool, *flag.FlagSet) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.String("dir", ".", "directory to write into")
	fs.String("key", "", "key file (default: the certificate path with .key)")
	fs.String("name", "", "a name")
	fs.Bool("mqtt", false, "use MQTT")
	fs.Int("port", 8443, "server `port`")
	fs.Int("retries", 0, "attempts (default: 3 for HTTPS, 1 for MQTT)")
	return &Tool{Name: "demo", Synopsis: "demo [-dir DIR] <topic>", About: "Does a demo.", Examples: []string{"demo a/b"}}, fs
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		tool, fs := newTool()
		var stdout, stderr bytes.Buffer
		code, done := tool.Parse(fs, []string{arg}, &stdout, &stderr)
		if code != 0 || !done || stderr.Len() != 0 {
			t.Fatalf("Parse(%s) = %d, %v, stderr %q; want 0, done, nothing on stderr", arg, code, done, stderr.String())
		}
		for _, want := range []string{
			"demo: Does a demo.", "usage:\n  demo [-dir DIR] <topic>", "-dir string\n        directory to write into (default: \".\")",
			"-key string\n        key file (default: the certificate path with .key)\n", "-name string\n        a name (default: none)",
			"-mqtt\n        use MQTT (default: false)", "-port port\n        server port (default: 8443)", "-retries int\n        attempts (default: 3 for HTTPS, 1 for MQTT)\n", "example:\n  demo a/b",
		} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("Parse(%s) help = %q, want it to contain %q", arg, stdout.String(), want)
			}
		}
	}
}

func TestParseUsageError(t *testing.T) {
	tool, fs := newTool()
	var stdout, stderr bytes.Buffer
	code, done := tool.Parse(fs, []string{"-nosuch"}, &stdout, &stderr)
	want := "demo: flag provided but not defined: -nosuch\nrun 'demo -h' for help\n"
	if code != 2 || !done || stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("Parse(-nosuch) = %d, %v, stderr %q, stdout %q; want 2, done, %q", code, done, stderr.String(), stdout.String(), want)
	}
	tool.Name = "demo sub"
	stderr.Reset()
	if code := tool.UsageError(&stderr, "--id is required"); code != 2 || stderr.String() != "demo sub: --id is required\nrun 'demo -h' for help\n" {
		t.Errorf("UsageError() = %d, %q", code, stderr.String())
	}
}

func TestParseGoesOn(t *testing.T) {
	tool, fs := newTool()
	var stdout, stderr bytes.Buffer
	if code, done := tool.Parse(fs, []string{"-dir", "x", "topic"}, &stdout, &stderr); done || code != 0 || fs.Arg(0) != "topic" {
		t.Errorf("Parse(good args) = %d, %v, args %v; want to go on", code, done, fs.Args())
	}
}
