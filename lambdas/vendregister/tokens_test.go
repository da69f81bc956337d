package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

// TestTokenRecheckedWhenSpent: whatever the authorizer (or API Gateway's cache of its answer) allowed, the
// registration re-reads the token's state in the conditional write that spends it.
func TestTokenRecheckedWhenSpent(t *testing.T) {
	env, h := setup(t)
	revoke := func(id string) {
		t.Helper()
		_, err := env.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{
			TableName: aws.String(env.Table),
			Item: map[string]ddbtypes.AttributeValue{
				vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: vending.TokenItemKey(id)},
				"status":         &ddbtypes.AttributeValueMemberS{Value: vending.StatusRevoked},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	revoke("revoked-multi")
	revoke("revoked-once")
	past := fmt.Sprint(time.Now().Add(-time.Second).Unix())
	future := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	tests := []struct {
		name, tokenID, singleUse, expiresAt string
		wantStatus                          int
		wantError                           string
	}{
		{"revoked multi-use", "revoked-multi", "false", "", 403, vending.MsgTokenRevoked},
		{"revoked single-use", "revoked-once", "true", "", 403, vending.MsgTokenRevoked},
		{"expired multi-use", "old-multi", "false", past, 403, vending.MsgTokenExpired},
		{"expired single-use", "old-once", "true", past, 403, vending.MsgTokenExpired},
		{"valid until later", "later", "true", future, 200, ""},
		{"malformed expiry", "bad", "false", "soon", 403, "missing authorizer context"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thing := fmt.Sprintf("tok-%d", i)
			req := request(t, registerBody(thing, ""))
			req.RequestContext.Authorizer = map[string]any{"tokenId": tt.tokenID, "thingPrefix": "", "singleUse": tt.singleUse, "expiresAt": tt.expiresAt}
			resp := call(t, h, req)
			if resp.StatusCode != tt.wantStatus || (tt.wantError != "" && errorOf(t, resp) != tt.wantError) {
				t.Fatalf("Handle(%s) = %d %s, want %d %q", tt.name, resp.StatusCode, resp.Body, tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus == 200 {
				return
			}
			if _, ok := env.Srv.IoT.Thing(thing); ok {
				t.Errorf("thing %s created with a refused token", thing)
			}
			if item := env.Item(t, thing); item != nil {
				t.Errorf("guard after a refused token = %v, want released", item)
			}
		})
	}
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1 (only the valid token's)", n)
	}
}

// TestTokenUses: a single-use token registers one thing; a multi-use token counts its uses.
func TestTokenUses(t *testing.T) {
	env, h := setup(t)
	for i := range 3 {
		if resp := call(t, h, request(t, registerBody(fmt.Sprintf("multi-%d", i), ""))); resp.StatusCode != 200 {
			t.Fatalf("Handle(multi-use, %d) = %d %s", i, resp.StatusCode, resp.Body)
		}
	}
	if got := attr(env.Item(t, vending.TokenItemKey("tok1")), "uses"); got != "3" {
		t.Errorf("multi-use token uses = %q, want 3", got)
	}
	auth := map[string]any{"tokenId": "once", "thingPrefix": "", "singleUse": "true"}
	for i, want := range []int{200, 403} {
		req := request(t, registerBody(fmt.Sprintf("once-%d", i), ""))
		req.RequestContext.Authorizer = auth
		resp := call(t, h, req)
		if resp.StatusCode != want || (want == 403 && errorOf(t, resp) != vending.MsgTokenUsed) {
			t.Errorf("Handle(single-use, %d) = %d %s, want %d", i, resp.StatusCode, resp.Body, want)
		}
	}
}

// TestDeprecatedThingTypeSkipped: a deprecated thing type is not chosen, as AWS IoT refuses new things of that
// type; undeprecating it makes it eligible again.
func TestDeprecatedThingTypeSkipped(t *testing.T) {
	env := vendtest.New(t)
	env.Srv.SSM.Put(vendtest.ConfigPath+"/appConfig", strings.Replace(vendtest.SeedConfig,
		`"POLICIES": {`, `"POLICIES": {"AcvmOldType": {"name": "multa_backend_policy_dev"}, `, 1))
	env.Srv.IoT.PutThingType("AcvmOldType") // listed before CvmGenericType
	client := iot.NewFromConfig(env.Srv.Config(context.Background()))
	deprecate := func(undo bool) {
		t.Helper()
		if _, err := client.DeprecateThingType(context.Background(), &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("AcvmOldType"), UndoDeprecate: undo}); err != nil {
			t.Fatal(err)
		}
	}
	deprecate(false)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp := call(t, h, request(t, registerBody("typed-1", ""))); resp.StatusCode != 200 {
		t.Fatalf("Handle(one type deprecated) = %d %s, want 200", resp.StatusCode, resp.Body)
	}
	if th, _ := env.Srv.IoT.Thing("typed-1"); th.TypeName != vendtest.ThingType {
		t.Errorf("thing type = %q, want %s (AcvmOldType is deprecated)", th.TypeName, vendtest.ThingType)
	}
	deprecate(true)
	h.ThingTypeTTL = time.Nanosecond // do not wait for the cached choice to expire
	if resp := call(t, h, request(t, registerBody("typed-2", ""))); resp.StatusCode != 200 {
		t.Fatalf("Handle(type undeprecated) = %d %s, want 200", resp.StatusCode, resp.Body)
	}
	if th, _ := env.Srv.IoT.Thing("typed-2"); th.TypeName != "AcvmOldType" {
		t.Errorf("thing type = %q, want AcvmOldType once undeprecated (first in listing order)", th.TypeName)
	}
}
