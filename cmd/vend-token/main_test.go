package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/testsvc"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAddListRevoke(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	arn := srv.Secrets.Put("tokens", "") // a secret as the stack leaves it before the first token

	code, out, errOut := runCmd(t, "add", "--secret-id", arn, "--prefix", "sensor-", "--expires", "24h", "--single-use")
	if code != 0 {
		t.Fatalf("add = %d, stderr %q", code, errOut)
	}
	m := regexp.MustCompile(`^id: ([0-9a-f]{8})\ntoken: ([A-Za-z0-9_-]{43})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("add stdout = %q, want id and token lines", out)
	}
	id, token := m[1], m[2]
	sec, _ := srv.Secrets.Secret(arn)
	if strings.Contains(sec.String, token) {
		t.Fatalf("secret holds the plaintext token: %s", sec.String)
	}
	set, err := vending.ParseTokens([]byte(sec.String))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := set.Lookup(token, time.Now())
	if err != nil || rec.ID != id || rec.ThingPrefix != "sensor-" || !rec.SingleUse {
		t.Fatalf("Lookup(new token) = %+v, %v, want id %s, prefix sensor-, single use", rec, err, id)
	}
	if d := time.Until(rec.ExpiresAt()); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("expiry in %v, want 24h", d)
	}

	if code, _, errOut := runCmd(t, "add", "--secret-id", arn, "--id", "fixed", "--expires", "0"); code != 0 {
		t.Fatalf("add --id fixed = %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "add", "--secret-id", arn, "--id", "fixed"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("add duplicate id = %d %q, want 1 with already exists", code, errOut)
	}

	code, out, _ = runCmd(t, "list", "--secret-id", arn)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "sensor-") || !strings.Contains(out, "fixed") || !strings.Contains(out, "never") {
		t.Errorf("list = %d %q, want both tokens", code, out)
	}
	if strings.Contains(out, token) || strings.Contains(out, rec.SHA256) {
		t.Errorf("list = %q, shows a token or a hash", out)
	}

	if code, out, errOut := runCmd(t, "revoke", "--secret-id", arn, "--id", id); code != 0 || out != "revoked "+id+"\n" {
		t.Fatalf("revoke = %d %q %q", code, out, errOut)
	}
	sec, _ = srv.Secrets.Secret(arn)
	set, _ = vending.ParseTokens([]byte(sec.String))
	if _, err := set.Lookup(token, time.Now()); err == nil {
		t.Errorf("Lookup(revoked token) succeeded")
	}
	if code, _, errOut := runCmd(t, "revoke", "--secret-id", arn, "--id", id); code != 1 || !strings.Contains(errOut, "no token") {
		t.Errorf("revoke twice = %d %q, want 1 no token", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no command", nil, 2, "a command is required"},
		{"unknown command", []string{"rotate"}, 2, "unknown command"},
		{"no secret", []string{"list"}, 2, "--secret-id is required"},
		{"revoke without id", []string{"revoke", "--secret-id", "x"}, 2, "--id is required"},
		{"bad flag", []string{"add", "--secret-id", "x", "--bogus"}, 2, "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := awsfake.New(t)
			srv.SetEnv(t)
			srv.Secrets.Put("x", `{"tokens":[]}`)
			code, _, errOut := runCmd(t, tt.args...)
			if code != tt.want || !strings.Contains(errOut, tt.msg) {
				t.Errorf("run(%q) = %d %q, want %d with %q", tt.args, code, errOut, tt.want, tt.msg)
			}
		})
	}
}

func TestNotATokenSecret(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	arn := srv.Secrets.Put("other", "not json")
	if code, _, errOut := runCmd(t, "add", "--secret-id", arn); code != 1 || !strings.Contains(errOut, "not a JSON object") {
		t.Errorf("add to a non-token secret = %d %q, want 1 with not a JSON object", code, errOut)
	}
	if sec, _ := srv.Secrets.Secret(arn); sec.String != "not json" {
		t.Errorf("secret changed to %q", sec.String)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"add", "-h"}, {"revoke", "--help"}} {
		code, out, _ := runCmd(t, args...)
		if code != 0 {
			t.Errorf("run(%q) = %d, want 0", args, code)
		}
		for _, want := range []string{"--secret-id", "--table", "--expires d", "(default: 720h)", "examples:"} {
			if !strings.Contains(out, want) {
				t.Errorf("run(%q) output lacks %q:\n%s", args, want, out)
			}
		}
	}
	if code, _, errOut := runCmd(t, "add", "--bogus"); code != 2 || !strings.Contains(errOut, "run 'vend-token -h' for help") {
		t.Errorf("run(add --bogus) = %d %q, want 2 and the help hint", code, errOut)
	}
}

// TestRevokeWithTable: the revocation is recorded in the registrations table, where the authorizer and the
// registration function see it at once; add refuses the id of a revoked token.
func TestRevokeWithTable(t *testing.T) {
	env := vendtest.New(t)
	code, out, errOut := runCmd(t, "add", "--secret-id", env.SecretARN, "--id", "dev1", "--expires", "1h")
	if code != 0 {
		t.Fatalf("add = %d %q", code, errOut)
	}
	_ = out
	if code, out, errOut := runCmd(t, "revoke", "--secret-id", env.SecretARN, "--table", env.Table, "--id", "dev1"); code != 0 || out != "revoked dev1\n" {
		t.Fatalf("revoke --table = %d %q %q", code, out, errOut)
	}
	item := env.Item(t, vending.TokenItemKey("dev1"))
	status, _ := item["status"].(*ddbtypes.AttributeValueMemberS)
	ttl, _ := item[vending.TTLAttribute].(*ddbtypes.AttributeValueMemberN)
	if status == nil || status.Value != vending.StatusRevoked || ttl == nil {
		t.Errorf("token item after revoke = %v, want REVOKED with a TTL", item)
	}
	// REGISTRATIONS_TABLE (set by vendtest) is the default of --table.
	if code, _, errOut := runCmd(t, "add", "--secret-id", env.SecretARN, "--id", "dev1"); code != 1 || !strings.Contains(errOut, "was revoked") {
		t.Errorf("add with a revoked id = %d %q, want 1 with was revoked", code, errOut)
	}
}

// TestConcurrentAddAndRevoke: two operators at once; neither change is lost.
func TestConcurrentAddAndRevoke(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	arn := srv.Secrets.Put("tokens", `{"tokens":[]}`)
	if code, _, errOut := runCmd(t, "add", "--secret-id", arn, "--id", "old"); code != 0 {
		t.Fatalf("add = %d %q", code, errOut)
	}
	srv.Inject(awsfake.ServiceSecretsManager, "PutSecretValue", awsfake.Fault{Latency: 30 * time.Millisecond})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	wg.Add(2)
	go func() { defer wg.Done(); codes[0], _, _ = runCmd(t, "add", "--secret-id", arn, "--id", "new") }()
	go func() { defer wg.Done(); codes[1], _, _ = runCmd(t, "revoke", "--secret-id", arn, "--id", "old") }()
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("concurrent add, revoke = %v, want 0, 0", codes)
	}
	sec, _ := srv.Secrets.Secret(arn)
	set, err := vending.ParseTokens([]byte(sec.String))
	if err != nil || len(set.Tokens) != 1 || set.Tokens[0].ID != "new" {
		t.Errorf("tokens after a concurrent add and revoke = %s, want only new", sec.String)
	}
}
