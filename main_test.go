package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/internal/testsvc"
)

var (
	appOnce sync.Once
	appDir  string
	appBin  string
	appErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if appDir != "" {
		os.RemoveAll(appDir)
	}
	os.Exit(code)
}

// buildApp builds the app binary once per test binary: linking the CDK app takes seconds.
func buildApp(t *testing.T) string {
	t.Helper()
	appOnce.Do(func() {
		if appDir, appErr = os.MkdirTemp("", "iotcert-app"); appErr != nil {
			return
		}
		appBin = filepath.Join(appDir, "app")
		if out, err := exec.Command("go", "build", "-o", appBin, ".").CombinedOutput(); err != nil {
			appErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	return appBin
}

// The app refuses missing or contradictory context with one line that names the keys, before defining anything.
func TestAppContextErrors(t *testing.T) {
	// Judged in pure Go before jsii starts: no Node needed.
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
			// One line ending in a newline, no stack trace, and not jsii's exit race either.
			if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || !strings.HasPrefix(got, "error: ") {
				t.Errorf("app stderr = %q, want only the error line", got)
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
	// One checkout with a commit that touches no handler, one at another path without it: two builds compare both.
	a := filepath.Join(t.TempDir(), "checkout-a")
	git(root, "clone", "-q", "--no-hardlinks", root, a)
	if err := os.WriteFile(filepath.Join(a, "NOTES.md"), []byte("a change outside every handler\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(a, "add", "NOTES.md")
	git(a, "commit", "-qm", "a commit that touches no handler")
	first := build(a)
	if len(first) == 0 {
		t.Fatal("no Lambda binaries were built")
	}
	b := filepath.Join(t.TempDir(), "elsewhere", "checkout-b")
	git(root, "clone", "-q", "--no-hardlinks", root, b)
	second := build(b)
	for name, sum := range first {
		if second[name] != sum {
			t.Errorf("%s bootstrap sha256 = %s after a commit, %s in another checkout at another path; want them equal", name, sum, second[name])
		}
	}
}

// runApp runs the app binary in dir with context (CDK_CONTEXT_JSON, as the CLI passes it) and extra environment, and
// returns its exit code, stdout and stderr.
func runApp(t *testing.T, bin, dir string, context map[string]interface{}, env ...string) (int, string, string) {
	t.Helper()
	ctx, _ := json.Marshal(context)
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CDK_CONTEXT_JSON="+string(ctx), "CDK_OUTDIR="+t.TempDir(), "CDK_VALIDATION=false", "HOME="+t.TempDir()), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run app: %v", err)
	}
	return code, stdout.String(), stderr.String()
}

// A typed context key that the app does not know, or that does not apply to what is selected, is an error naming it;
// the same keys kept in cdk.json as standing configuration are not.
func TestAppContextKeys(t *testing.T) {
	bin := buildApp(t)
	root, _ := os.Getwd()
	csr := filepath.Join(root, "testdata", "crossaccount", "missing.csr") // fails after the key checks
	standing := t.TempDir()
	if err := os.WriteFile(filepath.Join(standing, "cdk.json"), []byte(`{"app": "build/app", "context": {
		"thing_name": "default-device", "policy_file": "policy.json", "environments": {"dev": null}, "validity_days": 30}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mistyped := t.TempDir()
	if err := os.WriteFile(filepath.Join(mistyped, "cdk.json"), []byte(`{"app": "build/app", "context": {"thing-name": "d1"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		dir     string
		context map[string]interface{}
		env     []string
		want    string
	}{
		{"hyphen typo", root, map[string]interface{}{"thing-name": "x"}, nil, `"thing-name" is not a context key of this app (did you mean "thing_name"?)`},
		{"case typo", root, map[string]interface{}{"CSR_file": "x"}, nil, `"CSR_file" is not a context key of this app (did you mean "CSR_FILE"?)`},
		{"a typo is named before the selection is judged", root, map[string]interface{}{"thing_name": "no spaces", "policyfile": "p.json"}, nil,
			`"policyfile" is not a context key of this app (did you mean "policy_file"?)`},
		{"validity_days with thing_name", root, map[string]interface{}{"thing_name": "d1", "validity_days": "30"}, nil,
			"context validity_days applies to the cross-account stack (CSR_FILE, DESIRED_TOPIC, DESTROY), not to the per-thing stack"},
		{"policy_file with CSR_FILE", root, map[string]interface{}{"CSR_FILE": csr, "policy_file": "p.json"}, nil,
			"context policy_file applies to per-thing and fleet stacks"},
		{"typed keys of another capability with DESTROY", root, map[string]interface{}{"environments": "dev"}, []string{"DESTROY=1"},
			"context environments applies to the platform stacks"},
		// cdk.json's thing_name, policy_file, environments and validity_days are standing configuration: CSR_FILE
		// selects the cross-account stack and the run goes on to read the CSR.
		{"standing configuration is no error", standing, map[string]interface{}{"CSR_FILE": csr, "thing_name": "default-device",
			"policy_file": "policy.json", "environments": map[string]interface{}{"dev": nil}, "validity_days": 30}, nil, `CSR_FILE "` + csr + `": no such file or directory`},
		{"DESTROY=false is still destroy", root, map[string]interface{}{"thing_name": "d1"}, []string{"DESTROY=false"},
			"context DESTROY (the cross-account stack) and thing_name (per-thing stacks) select different apps"},
		// Configuration in cdk.json is checked like the command line (the whole list is in internal/selection).
		{"a mistyped key in cdk.json", mistyped, map[string]interface{}{"thing-name": "d1"}, nil,
			`cdk.json context: "thing-name" is not a context key of this app (did you mean "thing_name"?)`},
		{"a region that does not exist", root, map[string]interface{}{"thing_name": "d1", "region": "eu-west-9"}, nil,
			`context region: "eu-west-9" is not an AWS Region (did you mean "eu-west-1"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runApp(t, bin, tc.dir, tc.context, tc.env...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("app exit %d, stderr %q; want exit 1 and %q", code, stderr, tc.want)
			}
			if !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("app stderr = %q, want one line ending in a newline", stderr)
			}
		})
	}
}

// A good synth prints nothing: not jsii's exit race, not Node's source positions. Run several times, since the race
// shows only sometimes. The one line a good synth may print is the cost of a stack with a Private CA (none here: a
// thing stack); the synth check requires that line for every such stack.
func TestAppQuietOnSuccess(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		testsvc.Require(t, "node", "run scripts/setup.sh (installs Node 24 into node_modules/.bin)")
	}
	bin := buildApp(t)
	root, _ := os.Getwd()
	// One run: the message jsii-runtime-go sometimes prints at exit is dropped by the filter TestCopyFiltered checks,
	// so repeating the run to meet that race adds time, not coverage.
	code, stdout, stderr := runApp(t, bin, root, map[string]interface{}{"thing_name": "quiet-device", "nag": "false"})
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("app exit %d, stdout %q, stderr %q; want exit 0 and no output", code, stdout, stderr)
	}
}

// Set-up on a machine that is already set up prints nothing (each step speaks only when it has work to do), and the
// benchmark script needs no tool that set-up does not install (zip and bc are not in a Debian base system).
func TestSetupSilentWhenWarm(t *testing.T) {
	if _, err := os.Stat(filepath.Join("node_modules", ".lock-sha256")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node_modules is not set up: %v", err)
		}
		t.Skip("run scripts/setup.sh first: this test checks a set-up machine")
	}
	var out bytes.Buffer
	cmd := exec.Command("scripts/setup.sh", "synth")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/setup.sh synth: %v\n%s", err, out.String())
	}
	// A second run is warm whatever the first found.
	out.Reset()
	cmd = exec.Command("scripts/setup.sh", "synth")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() != 0 {
		t.Errorf("warm scripts/setup.sh synth = %v, output %q; want success and no output", err, out.String())
	}
	bench, err := os.ReadFile(filepath.Join("scripts", "bench.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(bench), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(" \t|;&$()\"'", r) }) {
			if f == "zip" || f == "bc" {
				t.Errorf("scripts/bench.sh runs %s, which set-up does not install: %q", f, line)
			}
		}
	}
}

// A fleet stack near CloudFormation's resource limit carries the CDK's note that it is approaching the limit, without
// a source position inside jsii's runtime (which the CLI would print above it).
func TestAppNoRuntimePositions(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		testsvc.Require(t, "node", "run scripts/setup.sh (installs Node 24 into node_modules/.bin)")
	}
	bin := buildApp(t)
	root, _ := os.Getwd()
	names := make([]string, 97)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%03d", i)
	}
	out := t.TempDir()
	ctx, _ := json.Marshal(map[string]string{"thing_names": strings.Join(names, ","), "fleet_stacks": "1", "nag": "false"})
	cmd := exec.Command(bin)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CDK_CONTEXT_JSON="+string(ctx), "CDK_OUTDIR="+out, "CDK_VALIDATION=false")
	if b, err := cmd.CombinedOutput(); err != nil || len(b) != 0 {
		t.Fatalf("app = %v, output %q; want success and no output", err, b)
	}
	// The assembly's metadata (manifest.json and <stack>.metadata.json) is what the CLI prints annotations from.
	files, _ := filepath.Glob(filepath.Join(out, "*.json"))
	found := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "approaching allowed maximum") {
			found = true
		}
		if strings.Contains(string(data), "program.js") {
			t.Errorf("%s names jsii's program.js (a stack trace into the runtime)", filepath.Base(f))
		}
	}
	if !found {
		t.Error("the fleet stack of 97 things carries no note that it approaches the resource limit: the test no longer checks anything")
	}
}
