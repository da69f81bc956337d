package rotation_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
)

// readmeExample is the line before the README's ~/.aws/config example for hosts.
const readmeExample = "<!-- credential_process example (TestREADMECredentialProcess runs it) -->"

// TestREADMECredentialProcess runs the README's ~/.aws/config example on a rotated host: the AWS SDK reads the
// profile, starts its credential_process (the real aws_signing_helper) with the live pair through the current
// links, and gets credentials from IAM Roles Anywhere (the fake) for that certificate. The example's host id,
// directories and output placeholders are replaced by the test host's; nothing else is changed.
func TestREADMECredentialProcess(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), readmeExample+"\n```ini\n")
	if !ok {
		t.Fatalf("README lacks the marked ```ini block after %q", readmeExample)
	}
	example, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("the README's example block is not closed")
	}
	e := newEnv(t)
	serial, _, _ := e.rotate(host, "EC_prime256v1")
	cfgText := strings.NewReplacer(
		"/root/aws_signing_helper", filepath.Join(e.defaults.SigningHelperDir, "aws_signing_helper"),
		"/etc/pki/iamra", e.defaults.KeyDir,
		"i-0123456789abcdef0", host,
		"<IAMRATrustAnchorARN output>", e.anchor,
		"<IAMRAProfileARN output>", e.profile,
		"<IAMRAHostRoleARN output>", e.role,
	).Replace(example)
	if strings.Contains(cfgText, "<") {
		t.Fatalf("the example keeps a placeholder this test does not fill:\n%s", cfgText)
	}
	path := filepath.Join(e.root, "aws-config")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the profile may supply credentials: no keys from the environment.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedConfigFiles([]string{path}),
		config.WithSharedCredentialsFiles([]string{filepath.Join(e.root, "no-credentials")}), config.WithSharedConfigProfile("rotation-host"))
	if err != nil {
		t.Fatalf("load the example's profile: %v", err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("credential_process of the example: %v", err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || creds.Source != "ProcessProvider" {
		t.Errorf("credentials = %s from %s, want temporary credentials from the process", creds.AccessKeyID, creds.Source)
	}
	sessions := e.srv.RolesAnywhere.Sessions()
	last := sessions[len(sessions)-1]
	if last.Serial != serial || last.RoleARN != e.role || last.Subject != host {
		t.Errorf("Roles Anywhere session = %+v, want the live certificate %s of %s for %s", last, serial, host, e.role)
	}
}
