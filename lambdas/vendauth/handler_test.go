package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotcert/iotcert/internal/testsvc"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

// captureLogs sends slog output to a buffer for the rest of the test.
func captureLogs(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

func fixture(t testing.TB, name string, repl ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(repl...).Replace(string(b)))
}

func event(t testing.TB, header string) events.APIGatewayCustomAuthorizerRequest {
	t.Helper()
	var req events.APIGatewayCustomAuthorizerRequest
	if err := json.Unmarshal(fixture(t, "request-token.json"), &req); err != nil {
		t.Fatal(err)
	}
	req.AuthorizationToken = header
	return req
}

// sameJSON reports whether a and b are equal JSON documents.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func TestHandle(t *testing.T) {
	env := vendtest.New(t)
	now := time.Now()
	validID, valid := env.AddToken(t, "sensor-", now.Add(time.Hour), false)
	expiredID, expired := env.AddToken(t, "", now.Add(-time.Minute), false)
	usedID, used := env.AddToken(t, "", time.Time{}, true)
	freshID, fresh := env.AddToken(t, "", time.Time{}, true)
	revokedID, revoked := env.AddToken(t, "", time.Time{}, false)
	putTokenState(t, env, usedID, vending.StatusUsed)
	putTokenState(t, env, revokedID, vending.StatusRevoked)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatalf("newHandler() error = %v", err)
	}
	logs := captureLogs(t)

	tests := []struct {
		name      string
		header    string
		wantErr   string // "Unauthorized" for a 401
		wantFile  string
		wantID    string
		wantAllow bool
	}{
		{"valid token", "DeviceToken " + valid, "", "response-allow.json", validID, true},
		{"unused single-use token", "DeviceToken " + fresh, "", "", freshID, true},
		{"wrong token", "DeviceToken " + valid + "x", "", "response-deny.json", "unknown", false},
		{"expired token", "DeviceToken " + expired, "", "response-deny.json", expiredID, false},
		// Registration refuses it unless the request repeats the registration whose answer was lost.
		{"used single-use token", "DeviceToken " + used, "", "", usedID, true},
		{"revoked token", "DeviceToken " + revoked, "", "response-deny.json", revokedID, false},
		{"wrong identifier", "Bearer " + valid, "Unauthorized", "", "", false},
		{"no identifier", valid, "Unauthorized", "", "", false},
		{"extra part", "DeviceToken " + valid + " x", "Unauthorized", "", "", false},
		{"empty header", "", "Unauthorized", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Handle(context.Background(), event(t, tt.header))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Handle() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Handle() error = %v, want nil", err)
			}
			if resp.PrincipalID != tt.wantID {
				t.Errorf("Handle() principalId = %q, want %q", resp.PrincipalID, tt.wantID)
			}
			if got := resp.PolicyDocument.Statement[0].Effect == "Allow"; got != tt.wantAllow {
				t.Errorf("Handle() allow = %v, want %v", got, tt.wantAllow)
			}
			if tt.wantFile != "" {
				got, _ := json.Marshal(resp)
				exp := fmt.Sprint(now.Add(time.Hour).Truncate(time.Second).Unix())
				want := fixture(t, tt.wantFile, "{{ID}}", tt.wantID, "{{EXPIRES}}", exp)
				if !sameJSON(t, got, want) {
					t.Errorf("Handle() = %s, want %s", got, want)
				}
			}
		})
	}
	for _, secret := range []string{valid, expired, used, fresh, revoked} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain a token:\n%s", logs)
		}
	}
	if !strings.Contains(logs.String(), validID) {
		t.Errorf("logs do not name token id %s:\n%s", validID, logs)
	}
}

func putTokenState(t *testing.T, env *vendtest.Env, id, status string) {
	t.Helper()
	_, err := env.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(env.Table),
		Item: map[string]ddbtypes.AttributeValue{
			vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: vending.TokenItemKey(id)},
			"status":         &ddbtypes.AttributeValueMemberS{Value: status},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRevokedInTableDeniedAtOnce: vend-token revoke records the revocation in the registrations table, which the
// authorizer reads on every call, so the cached tokens secret does not keep a revoked token alive.
func TestRevokedInTableDeniedAtOnce(t *testing.T) {
	env := vendtest.New(t)
	id, token := env.AddToken(t, "", time.Time{}, false)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), event(t, "DeviceToken "+token))
	if err != nil || resp.PolicyDocument.Statement[0].Effect != "Allow" {
		t.Fatalf("Handle(new token) = %v, %v; want allowed", resp, err)
	}
	putTokenState(t, env, id, vending.StatusRevoked)
	resp, err = h.Handle(context.Background(), event(t, "DeviceToken "+token))
	if err != nil || resp.PolicyDocument.Statement[0].Effect != "Deny" {
		t.Errorf("Handle(token revoked in the table, secret still cached) = %v, %v; want denied", resp, err)
	}
}

// TestRevocation checks that a token removed from the secret stops working once the cached secret expires.
func TestRevocation(t *testing.T) {
	env := vendtest.New(t)
	id, token := env.AddToken(t, "", time.Time{}, false)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	h.Now = func() time.Time { return clock }
	allowed := func() bool {
		resp, err := h.Handle(context.Background(), event(t, "DeviceToken "+token))
		if err != nil {
			t.Fatalf("Handle() error = %v", err)
		}
		return resp.PolicyDocument.Statement[0].Effect == "Allow"
	}
	if !allowed() {
		t.Fatalf("Handle(new token) denied, want allowed")
	}
	env.Srv.Secrets.Put(vendtest.SecretName, `{"tokens":[]}`)
	if !allowed() {
		t.Errorf("Handle(revoked token) within the cache time denied, want allowed (cached)")
	}
	clock = clock.Add(h.CacheTTL + time.Second)
	if allowed() {
		t.Errorf("Handle(token %s revoked %v ago) allowed, want denied", id, h.CacheTTL)
	}
}

func TestBadMethodARN(t *testing.T) {
	h := &Handler{Config: &vending.Config{TokenIdentifier: "DeviceToken", TokenPayloadLength: 2}}
	for _, arn := range []string{"", "arn:aws:lambda:us-east-1:1:function/x", "arn:aws:execute-api:us-east-1:1:api"} {
		_, err := h.Handle(context.Background(), events.APIGatewayCustomAuthorizerRequest{AuthorizationToken: "DeviceToken x", MethodArn: arn})
		if err == nil || err.Error() != "Unauthorized" {
			t.Errorf("Handle(methodArn %q) error = %v, want Unauthorized", arn, err)
		}
	}
}

func TestNewHandlerConfig(t *testing.T) {
	env := vendtest.New(t)
	tests := []struct {
		name    string
		setup   func()
		wantErr string
	}{
		{"plaintext tokens", func() {
			env.Srv.SSM.Put(vendtest.ConfigPath+"/appConfig", strings.Replace(vendtest.SeedConfig, `"DEVICE_AUTHORIZER_VALID_TOKENS": []`, `"DEVICE_AUTHORIZER_VALID_TOKENS": ["abc"]`, 1))
		}, "vend-token add"},
		{"no parameter", func() { t.Setenv("APP_CONFIG_PATH", "/multa-cvm/other/config-parameters") }, "appConfig not found"},
		{"bad cache ttl", func() { t.Setenv("TOKENS_CACHE_SECONDS", "0") }, "TOKENS_CACHE_SECONDS"},
		{"no secret", func() { t.Setenv("TOKENS_SECRET_ARN", "") }, "TOKENS_SECRET_ARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			_, err := newHandler(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("newHandler() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
