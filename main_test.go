package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// buildApp builds the app binary once per test binary.
func buildApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The app refuses missing or contradictory context with one line that names the keys, before defining anything.
func TestAppContextErrors(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		testsvc.Require(t, "node", "run scripts/setup.sh (installs Node 24 into node_modules/.bin)")
	}
	bin := buildApp(t)
	for _, tc := range []struct {
		name    string
		context map[string]string
		env     []string
		want    string
	}{
		{"both CSR_FILE and DESIRED_TOPIC", map[string]string{"CSR_FILE": "a.csr", "DESIRED_TOPIC": "t"}, nil, selection.MsgNotBoth},
		{"empty CSR_FILE", map[string]string{"CSR_FILE": ""}, nil, selection.MsgCSROrTopic},
		{"thing and DESTROY", map[string]string{"thing_name": "d1"}, []string{"DESTROY=1"}, "context DESTROY (the cross-account stack) and thing_name (per-thing stacks) select different apps"},
		{"bad thing name", map[string]string{"thing_name": "no spaces"}, nil, `context thing_name: thing name "no spaces" is not valid`},
		{"missing CSR file", map[string]string{"CSR_FILE": "missing.csr"}, nil, `CSR_FILE "missing.csr": no such file or directory`},
		{"weak CSR", map[string]string{"CSR_FILE": "testdata/crossaccount/weak-rsa1024.csr"}, nil, "rsa key of 1024 bits is too weak"},
		{"wildcard topic", map[string]string{"DESIRED_TOPIC": "*"}, nil, `DESIRED_TOPIC: topic "*" contains the IAM wildcard "*"`},
		{"reserved topic", map[string]string{"DESIRED_TOPIC": "$aws/things/victim/shadow/update"}, nil, `is a reserved topic`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, _ := json.Marshal(tc.context)
			cmd := exec.Command(bin)
			cmd.Env = append(append(os.Environ(), "CDK_CONTEXT_JSON="+string(ctx), "CDK_OUTDIR="+t.TempDir(), "CDK_VALIDATION=false"), tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("app exit = %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if !strings.Contains(msg, tc.want) {
				t.Errorf("app stderr = %q, want it to contain %q", msg, tc.want)
			}
			// One line, no stack trace: jsii's harmless exit race may add its own line, nothing else.
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, "error: ") && !strings.Contains(line, "waitid: no child processes") {
					t.Errorf("app stderr line %q: want only the error line", line)
				}
			}
		})
	}
}

// Two builds of the Lambda binaries, in two checkouts at different paths and commits that do not touch a handler,
// give byte-identical binaries and so the same asset hashes: a commit elsewhere redeploys no function.
func TestLambdaAssetsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles every handler twice")
	}
	if _, err := exec.LookPath("git"); err != nil {
		testsvc.Require(t, "git", "apt-get install git")
	}
	if err := exec.Command("git", "rev-parse", "--verify", "HEAD").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("not a git checkout with a commit: %v", err)
		}
		t.Skip("not a git checkout with a commit")
	}
	root, _ := os.Getwd()
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	build := func(dir string) map[string]string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "build")
		cmd := exec.Command(filepath.Join(dir, "scripts", "build-lambdas.sh"), out)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build-lambdas.sh in %s: %v\n%s", dir, err, b)
		}
		sums := map[string]string{}
		entries, _ := os.ReadDir(filepath.Join(out, "assets"))
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(out, "assets", e.Name(), "bootstrap"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			sums[e.Name()] = hex.EncodeToString(sum[:])
		}
		return sums
	}
	a := filepath.Join(t.TempDir(), "checkout-a")
	git(root, "clone", "-q", "--no-hardlinks", root, a)
	first := build(a)
	if len(first) == 0 {
		t.Fatal("no Lambda binaries were built")
	}
	if err := os.WriteFile(filepath.Join(a, "NOTES.md"), []byte("a change outside every handler\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(a, "add", "NOTES.md")
	git(a, "commit", "-qm", "a commit that touches no handler")
	second := build(a)
	b := filepath.Join(t.TempDir(), "elsewhere", "checkout-b")
	git(root, "clone", "-q", "--no-hardlinks", root, b)
	third := build(b)
	for name, sum := range first {
		if second[name] != sum || third[name] != sum {
			t.Errorf("%s bootstrap sha256 = %s, then %s after a commit, %s in another checkout; want all equal", name, sum, second[name], third[name])
		}
	}
}
