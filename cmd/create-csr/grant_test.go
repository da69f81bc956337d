package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Topics the consumer's stack can never grant are refused here too, with nothing written; a wildcard topic is made
// but the producer is told what the consumer must do to accept it.
func TestTopicGrant(t *testing.T) {
	for _, tc := range []struct{ name, topic, want string }{
		{"another device's shadow", "$aws/things/victim/shadow/update", `topic "$aws/things/victim/shadow/update" is a reserved topic`},
		{"policy variable", "things/${iot:ClientId}", `contains "${"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			if code := run([]string{"-dir", dir, tc.topic}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("run(%q) = %d, stderr %q, want 1 and %q", tc.topic, code, stderr.String(), tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files written for a refused topic: %v", entries)
			}
		})
	}
	t.Run("wildcard", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"-dir", t.TempDir(), "producer1/*"}, &stdout, &stderr); code != 0 {
			t.Fatalf("run(producer1/*) = %d, stderr %q, want 0", code, stderr.String())
		}
		if want := "the consumer must deploy with -c allow_topic_wildcard=true"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr = %q, want it to contain %q", stderr.String(), want)
		}
	})
	t.Run("basic ingest", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"-dir", t.TempDir(), "$aws/rules/ingest/p1"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("run($aws/rules/ingest/p1) = %d, stderr %q, want 0 and nothing", code, stderr.String())
		}
	})
}
