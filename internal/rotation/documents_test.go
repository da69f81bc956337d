package rotation_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/rotation"
)

func documents() map[string]rotation.Document {
	return map[string]rotation.Document{
		"csr":     rotation.CSRDocument(rotation.DocumentDefaults{}),
		"install": rotation.InstallDocument(rotation.DocumentDefaults{}),
	}
}

// TestDocumentRules: schema 2.2, every parameter typed String with an allowedPattern and ENV_VAR interpolation, no
// {{ }} anywhere in the scripts, set -eu before anything reads a variable, and the scripts read exactly the declared
// parameters as $SSM_<name>.
func TestDocumentRules(t *testing.T) {
	ssmVar := regexp.MustCompile(`\$\{?SSM_([A-Za-z0-9_]+)`)
	for name, doc := range documents() {
		t.Run(name, func(t *testing.T) {
			if doc.SchemaVersion != "2.2" {
				t.Errorf("schemaVersion = %q, want 2.2", doc.SchemaVersion)
			}
			for p, def := range doc.Parameters {
				if def.Type != "String" || def.AllowedPattern == "" || def.InterpolationType != "ENV_VAR" {
					t.Errorf("parameter %s = %+v, want String with allowedPattern and ENV_VAR", p, def)
				}
				if _, err := regexp.Compile(def.AllowedPattern); err != nil {
					t.Errorf("parameter %s allowedPattern: %v", p, err)
				}
				if def.Default != "" && !regexp.MustCompile(def.AllowedPattern).MatchString(def.Default) {
					t.Errorf("parameter %s default %q breaks its own pattern", p, def.Default)
				}
			}
			script := doc.Script()
			if strings.Contains(script, "{{") || strings.Contains(script, "}}") {
				t.Error("script contains {{ or }}: SSM would interpolate text into it")
			}
			lines := strings.Split(script, "\n")
			if lines[0] != "#!/bin/bash" {
				t.Errorf("first line = %q, want #!/bin/bash", lines[0])
			}
			setEU := strings.Index(script, "\nset -eu\n")
			firstVar := strings.Index(script, "$SSM_")
			if setEU < 0 || firstVar < setEU {
				t.Errorf("set -eu at %d, first $SSM_ at %d: want set -eu first", setEU, firstVar)
			}
			used := map[string]bool{}
			for _, m := range ssmVar.FindAllStringSubmatch(script, -1) {
				used[m[1]] = true
				if _, ok := doc.Parameters[m[1]]; !ok {
					t.Errorf("script reads $SSM_%s, which is not a parameter", m[1])
				}
			}
			for p := range doc.Parameters {
				if !used[p] {
					t.Errorf("parameter %s is never read by the script", p)
				}
			}
			for _, s := range doc.MainSteps {
				if s.Action != "aws:runShellScript" || s.Inputs.TimeoutSeconds <= 0 {
					t.Errorf("step %+v, want aws:runShellScript with a timeout", s)
				}
			}
			if c := doc.Content(); c["schemaVersion"] != "2.2" {
				t.Errorf("Content() schemaVersion = %v", c["schemaVersion"])
			}
		})
	}
}

// payloads are values an attacker who can write the table (or an event) might try.
var payloads = []string{
	"$(touch PWNED)", "`touch PWNED`", "i-12345678;touch PWNED", "i-12345678\ntouch PWNED", "i-12345678 PWNED",
	"/etc/pki;touch PWNED", "/etc/pki/$(touch PWNED)", "/etc/pki/`touch PWNED`", "/etc/pki\ntouch PWNED",
	"/etc/pki dir", "/etc/../root", "../etc", "/etc/pki/..", "relative/path", "/", "",
}

func TestPatternsRefuseInjection(t *testing.T) {
	for _, p := range payloads {
		if rotation.ValidHostID(p) {
			t.Errorf("ValidHostID(%q) = true, want false", p)
		}
		if err := rotation.CheckPath("keyPath", p); err == nil {
			t.Errorf("CheckPath(%q) = nil, want an error", p)
		}
	}
	for _, ok := range []string{"i-01234567", "i-0123456789abcdef0", "mi-0123456789abcdef0"} {
		if !rotation.ValidHostID(ok) {
			t.Errorf("ValidHostID(%q) = false, want true", ok)
		}
	}
	for _, bad := range []string{"i-0123456", "i-0123456789abcdef", "mi-01234567", "I-01234567", "i-01234567\n"} {
		if rotation.ValidHostID(bad) {
			t.Errorf("ValidHostID(%q) = true, want false", bad)
		}
	}
	for _, ok := range []string{"/etc/pki/iamra", "/root", "/var/lib/a.b_c-d", "/tmpfiles", "/var/tmpx"} {
		if err := rotation.CheckPath("keyPath", ok); err != nil {
			t.Errorf("CheckPath(%q) = %v, want nil", ok, err)
		}
	}
}

// TestCheckPathRefusesSharedDirectories: the sample's /tmp, and every directory all local users may write, is refused
// for every directory (as the inventory, the context and the functions' environment give them), with the way out.
func TestCheckPathRefusesSharedDirectories(t *testing.T) {
	for _, bad := range []string{"/tmp", "/tmp/certs", "/var/tmp", "/var/tmp/a/b", "/dev/shm", "/dev/shm/k"} {
		err := rotation.CheckPath("CertPath", bad)
		if err == nil || !strings.Contains(err.Error(), "every local user may write") || !strings.Contains(err.Error(), rotation.DefaultDir) {
			t.Errorf("CheckPath(%q) = %v, want it refused as shared, naming %s", bad, err, rotation.DefaultDir)
		}
	}
}

// TestInjectionNeverRuns: every payload is refused by the documents' patterns (as SSM checks them), and even a
// script started with the payload in its environment (as if nothing had checked it) refuses it and runs none of it.
func TestInjectionNeverRuns(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	for _, p := range payloads {
		for _, param := range []string{rotation.ParamHostID, rotation.ParamKeyDir} {
			params := map[string]string{
				rotation.ParamHostID: "i-0123456789abcdef0", rotation.ParamKeyDir: keyDir, rotation.ParamKeyAlgorithm: "EC_prime256v1",
			}
			params[param] = p
			doc := rotation.CSRDocument(rotation.DocumentDefaults{})
			if _, _, err := rotation.Render(doc, params); err == nil {
				t.Errorf("Render(%s=%q) = nil error, want the allowedPattern to refuse it", param, p)
			}
			// Bypass the patterns: hand the script the raw values.
			doc.Parameters[param] = rotation.Parameter{Type: "String", AllowedPattern: `(?s).*`, InterpolationType: "ENV_VAR"}
			res, err := rotation.RunOnHost(context.Background(), doc, params, dir, []string{"PATH=/usr/bin:/bin", "HOME=" + dir})
			if err != nil {
				t.Fatalf("RunOnHost: %v", err)
			}
			if res.ExitCode != 2 {
				t.Errorf("script with %s=%q: exit %d (stderr %q), want 2 (refused)", param, p, res.ExitCode, res.Stderr)
			}
		}
	}
	var found []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(fi.Name(), "PWNED") {
			found = append(found, p)
		}
		return nil
	})
	if wd, _ := os.Getwd(); fileExists(filepath.Join(wd, "PWNED")) {
		found = append(found, filepath.Join(wd, "PWNED"))
	}
	if len(found) > 0 {
		t.Fatalf("injected commands ran: %v", found)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestRenderRefusals(t *testing.T) {
	doc := rotation.CSRDocument(rotation.DocumentDefaults{})
	if _, _, err := rotation.Render(doc, map[string]string{"Extra": "x", rotation.ParamHostID: "i-01234567"}); err == nil {
		t.Error("Render with an undeclared parameter = nil error")
	}
	if _, _, err := rotation.Render(doc, map[string]string{}); err == nil || !strings.Contains(err.Error(), "HostId") {
		t.Errorf("Render without HostId = %v, want it required", err)
	}
	_, env, err := rotation.Render(doc, map[string]string{rotation.ParamHostID: "i-01234567"})
	if err != nil {
		t.Fatal(err)
	}
	want := "SSM_KeyDir=" + rotation.DefaultDir
	if !strings.Contains(strings.Join(env, "\n"), want) {
		t.Errorf("Render env = %v, want the default %s", env, want)
	}
	if err := (rotation.DocumentDefaults{KeyDir: "/tmp/x;y"}).Validate(); err == nil {
		t.Error("DocumentDefaults{KeyDir: \"/tmp/x;y\"}.Validate() = nil")
	}
}
