package vendaws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/vending"
)

var zeroTime time.Time

const seed = `{"AWS_ROOT_CA": {"PREFERRED": "https://www.amazontrust.com/repository/AmazonRootCA1.pem"},
 "POLICIES": {"CvmGenericType": {"name": "multa_backend_policy_dev"}}}`

func TestLoadConfig(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, err := LoadAWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := ssm.NewFromConfig(cfg)
	// Parameters sorting before and after appConfig, over more than one page, and one level deeper.
	for i := range 25 {
		srv.SSM.Put(fmt.Sprintf("/multa-cvm/dev/config-parameters/a%02d", i), "x")
		srv.SSM.Put(fmt.Sprintf("/multa-cvm/dev/config-parameters/z%02d", i), "x")
	}
	srv.SSM.Put("/multa-cvm/dev/config-parameters/deeper/appConfig", "not json")
	tests := []struct {
		name    string
		value   string
		path    string
		wantErr string
	}{
		{"found", seed, "/multa-cvm/dev/config-parameters", ""},
		{"trailing slash", seed, "/multa-cvm/dev/config-parameters/", ""},
		{"invalid", `{"POLICIES": {}}`, "/multa-cvm/dev/config-parameters", "AWS_ROOT_CA is required"},
		{"missing", seed, "/multa-cvm/prod/config-parameters", "parameter /multa-cvm/prod/config-parameters/appConfig not found"},
		{"empty path", seed, "", "APP_CONFIG_PATH is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SSM.Put(vending.ConfigParameter("", "dev"), tt.value)
			c, err := LoadConfig(ctx, api, tt.path)
			if tt.wantErr == "" {
				if err != nil || c.Policies["CvmGenericType"] != "multa_backend_policy_dev" {
					t.Fatalf("LoadConfig(%q) = %v, %v, want the seed config", tt.path, c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadConfig(%q) error = %v, want one containing %q", tt.path, err, tt.wantErr)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, err := LoadAWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := secretsmanager.NewFromConfig(cfg)
	if _, err := LoadTokens(ctx, api, "missing"); err == nil || errors.Is(err, vending.ErrEmptyTokenSecret) {
		t.Errorf("LoadTokens(missing secret) error = %v, want a not-found error", err)
	}
	arn := srv.Secrets.Put("tokens", "")
	set, err := LoadTokens(ctx, api, arn)
	if !errors.Is(err, vending.ErrEmptyTokenSecret) || len(set.Tokens) != 0 {
		t.Fatalf("LoadTokens(empty) = %v, %v, want an empty set and ErrEmptyTokenSecret", set, err)
	}
	if err := UpdateTokens(ctx, api, arn, func(set *vending.TokenSet) error {
		_, err := set.Add("id1", "tok", "", zeroTime, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTokens(ctx, api, arn)
	if err != nil || len(got.Tokens) != 1 || got.Tokens[0].ID != "id1" {
		t.Errorf("LoadTokens(after save) = %v, %v, want one token id1", got, err)
	}
}

// TestUpdateTokensConcurrentWriters: writers that add and revoke at the same time through the same secret never
// undo each other's change (a read-modify-write without a version check would bring a revoked token back).
func TestUpdateTokensConcurrentWriters(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, err := LoadAWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := secretsmanager.NewFromConfig(cfg)
	arn := srv.Secrets.Put("tokens", `{"tokens":[]}`)
	const n = 6
	for i := range n {
		if err := UpdateTokens(ctx, api, arn, func(set *vending.TokenSet) error {
			_, err := set.Add(fmt.Sprintf("old-%d", i), fmt.Sprintf("token-old-%d", i), "", zeroTime, false)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Each writer is slowed between its read and its write, so that the writes interleave.
	srv.Inject(awsfake.ServiceSecretsManager, "PutSecretValue", awsfake.Fault{Latency: 20 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[i] = UpdateTokens(ctx, api, arn, func(set *vending.TokenSet) error {
				_, err := set.Add(fmt.Sprintf("new-%d", i), fmt.Sprintf("token-new-%d", i), "", zeroTime, false)
				return err
			})
		}()
		go func() {
			defer wg.Done()
			errs[n+i] = UpdateTokens(ctx, api, arn, func(set *vending.TokenSet) error {
				set.Remove(fmt.Sprintf("old-%d", i))
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	got, err := LoadTokens(ctx, api, arn)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got.Tokens {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	want := []string{}
	for i := range n {
		want = append(want, fmt.Sprintf("new-%d", i))
	}
	if !slices.Equal(ids, want) {
		t.Errorf("tokens after %d concurrent adds and %d revokes = %v, want %v", n, n, ids, want)
	}
	// Each write that lands makes two stage calls (move AWSCURRENT, drop AWSPENDING); each refused move one more.
	if moves := srv.Calls(awsfake.ServiceSecretsManager, "UpdateSecretVersionStage"); moves <= 2*2*n {
		t.Errorf("UpdateSecretVersionStage calls = %d: the writers never conflicted, so the test proved nothing", moves)
	}
}
