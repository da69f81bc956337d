package main

import (
	"bytes"
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/pki"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-dir", dir, "producer1/data"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run(producer1/data) = %d, stderr %q", code, stderr.String())
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, KeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", fi.Mode().Perm())
	}
	if !strings.HasPrefix(string(keyPEM), "-----BEGIN EC PRIVATE KEY-----") {
		t.Errorf("key file starts %q, want an EC PRIVATE KEY block", strings.SplitN(string(keyPEM), "\n", 2)[0])
	}
	key, err := pki.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, _ := os.ReadFile(filepath.Join(dir, CSRFile))
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatalf("ParseCSR(written csr) = %v", err)
	}
	if csr.Subject.CommonName != "producer1%2Fdata" {
		t.Errorf("csr CN = %q, want producer1%%2Fdata", csr.Subject.CommonName)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Errorf("csr public key is not the written key's")
	}
	if !strings.Contains(stdout.String(), "producer1/data") {
		t.Errorf("stdout = %q, want it to name the topic", stdout.String())
	}
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"mqtt wildcard", []string{"a/+/b"}, `topic "a/+/b" contains MQTT wildcard "+": the policy uses IAM wildcards, write "*" instead`},
		{"hash", []string{"a/#"}, `MQTT wildcard "#"`},
		{"cn too long", []string{"producer1/" + strings.Repeat("x", 53)}, "X.509 allows at most 64"},
		{"slashes", []string{"a/b/c/d/e/f/g/h/i"}, "at most 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"-dir", dir}, tt.args...), &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("run(%q) = %d, stderr %q, want 1 and %q", tt.args, code, stderr.String(), tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("run(%q) wrote %d files, want none", tt.args, len(entries))
			}
		})
	}
}

func TestRunRefusesOverwrite(t *testing.T) {
	for _, existing := range []string{KeyFile, CSRFile} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			old := []byte("keep me\n")
			if err := os.WriteFile(filepath.Join(dir, existing), old, 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"-dir", dir, "producer1/data"}, &stdout, &stderr); code != 1 {
				t.Fatalf("run with existing %s = %d, want 1", existing, code)
			}
			if !strings.Contains(stderr.String(), "already exists") {
				t.Errorf("stderr = %q, want an already-exists message", stderr.String())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d files, want only the existing one", len(entries))
			}
			if got, _ := os.ReadFile(filepath.Join(dir, existing)); !bytes.Equal(got, old) {
				t.Errorf("%s was changed to %q", existing, got)
			}
		})
	}
}

// The CSR passes `openssl req -verify`, and the key is readable by openssl.
func TestOpenSSLVerifies(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl not found (required under CI): %v", err)
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-dir", dir, "producer1/data"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d: %s", code, stderr.String())
	}
	out, err := exec.Command(openssl, "req", "-in", filepath.Join(dir, CSRFile), "-verify", "-noout", "-subject").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req -verify: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "CN") || !strings.Contains(string(out), "producer1%2Fdata") {
		t.Errorf("openssl req -subject = %q, want CN producer1%%2Fdata", out)
	}
	out, err = exec.Command(openssl, "ec", "-in", filepath.Join(dir, KeyFile), "-noout", "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "prime256v1") {
		t.Errorf("openssl ec -text = %v, %q, want a prime256v1 key", err, out)
	}
}

func TestRunLongestCN(t *testing.T) {
	topic := "producer1/" + strings.Repeat("x", 52) // 64 characters once "/" is written "%2F"
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-dir", t.TempDir(), topic}, &stdout, &stderr); code != 0 {
		t.Fatalf("run(64-character CN) = %d, stderr %q, want 0", code, stderr.String())
	}
}
