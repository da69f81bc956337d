package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

// TableAPI is the part of the DynamoDB client the authorizer uses.
type TableAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// DefaultCacheTTL is how long the tokens secret is kept in memory; a revoked token stops working within it.
const DefaultCacheTTL = 60 * time.Second

// errUnauthorized is the exact error API Gateway turns into a 401.
var errUnauthorized = errors.New("Unauthorized") //nolint:staticcheck // API Gateway matches this text.

// Handler is the API Gateway TOKEN authorizer of the certificate vending API. It checks
// "Authorization: <identifier> <token>" against the hashed tokens of the tokens secret and the token's state in
// the registrations table. A malformed header is an "Unauthorized" error (401); an unknown, expired or revoked
// token is a Deny policy (403); a valid token allows POST /register and GET / of the calling stage. A used
// single-use token is allowed through: the registration function refuses it (403 "token already used") unless
// the request repeats the registration it made, whose answer may have been lost. principalId is the token id, and
// the context carries tokenId, thingPrefix, singleUse and expiresAt (epoch seconds, "" for none), which the
// registration function re-checks in the conditional write that spends the token. The token and the header are
// never logged.
type Handler struct {
	Secrets   vendaws.SecretsAPI
	Table     TableAPI
	Config    *vending.Config
	SecretID  string
	TableName string
	// CacheTTL bounds how long the tokens secret is cached. Default: DefaultCacheTTL.
	CacheTTL time.Duration
	Now      func() time.Time

	mu       sync.Mutex
	tokens   *vending.TokenSet
	loadedAt time.Time
}

// methodARN is the parsed methodArn of an authorizer event.
type methodARN struct {
	prefix string // arn:<partition>:execute-api:<region>:<account>
	api    string
	stage  string
}

func parseMethodARN(s string) (methodARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "execute-api" || parts[3] == "" || parts[4] == "" {
		return methodARN{}, errors.New("methodArn is not an execute-api ARN")
	}
	path := strings.SplitN(parts[5], "/", 4)
	if len(path) < 3 || path[0] == "" || path[1] == "" {
		return methodARN{}, errors.New("methodArn has no api id and stage")
	}
	return methodARN{prefix: strings.Join(parts[:5], ":"), api: path[0], stage: path[1]}, nil
}

func (m methodARN) resource(verb, path string) string {
	return m.prefix + ":" + m.api + "/" + m.stage + "/" + verb + "/" + path
}

// Handle authorizes one request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	arn, err := parseMethodARN(req.MethodArn)
	if err != nil {
		slog.WarnContext(ctx, "unauthorized", "reason", err.Error())
		return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
	}
	token, err := vending.ParseAuthHeader(req.AuthorizationToken, h.Config.TokenIdentifier, h.Config.TokenPayloadLength)
	if err != nil {
		slog.WarnContext(ctx, "unauthorized", "reason", err.Error())
		metrics.Refuse(metrics.CapC, metrics.ReasonUnauthorized)
		return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
	}
	set, err := h.tokenSet(ctx)
	if err != nil {
		slog.ErrorContext(ctx, "load tokens", "err", err)
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("authorizer unavailable")
	}
	rec, err := set.Lookup(token, h.now())
	if err != nil {
		id := "unknown"
		if rec != nil {
			id = rec.ID
		}
		slog.InfoContext(ctx, "denied", "reason", err.Error(), "tokenId", id)
		metrics.Refuse(metrics.CapC, metrics.ReasonUnauthorized)
		return deny(arn, id), nil
	}
	state, err := h.state(ctx, rec.ID)
	if err != nil {
		slog.ErrorContext(ctx, "check token state", "tokenId", rec.ID, "err", err)
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("authorizer unavailable")
	}
	if state == vending.StatusRevoked {
		slog.InfoContext(ctx, "denied", "reason", "revoked token", "tokenId", rec.ID)
		metrics.Refuse(metrics.CapC, metrics.ReasonRevoked)
		return deny(arn, rec.ID), nil
	}
	expires := ""
	if t := rec.ExpiresAt(); !t.IsZero() {
		expires = strconv.FormatInt(t.Unix(), 10)
	}
	slog.InfoContext(ctx, "allowed", "tokenId", rec.ID)
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: rec.ID,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{arn.resource("POST", "register"), arn.resource("GET", "")},
			}},
		},
		Context: map[string]interface{}{
			"tokenId":     rec.ID,
			"thingPrefix": rec.ThingPrefix,
			"singleUse":   rec.SingleUse,
			"expiresAt":   expires,
		},
	}, nil
}

func deny(arn methodARN, principal string) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Deny",
				Resource: []string{arn.resource("*", "*")},
			}},
		},
	}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// tokenSet returns the cached token set, reloading it once CacheTTL has passed.
func (h *Handler) tokenSet(ctx context.Context) (*vending.TokenSet, error) {
	ttl := h.CacheTTL
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tokens != nil && h.now().Sub(h.loadedAt) < ttl {
		return h.tokens, nil
	}
	s, err := vendaws.LoadTokens(ctx, h.Secrets, h.SecretID)
	if err != nil && !errors.Is(err, vending.ErrEmptyTokenSecret) {
		return nil, err
	}
	h.tokens, h.loadedAt = s, h.now()
	return s, nil
}

// state returns the status of the token's item in the registrations table: vending.StatusRevoked,
// vending.StatusUsed, or "" when nothing is recorded against it.
func (h *Handler) state(ctx context.Context, tokenID string) (string, error) {
	out, err := h.Table.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(h.TableName),
		Key:            map[string]ddbtypes.AttributeValue{vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: vending.TokenItemKey(tokenID)}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("get item %s: %w", vending.TokenItemKey(tokenID), err)
	}
	if v, ok := out.Item["status"].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value, nil
	}
	return "", nil
}

// cacheTTLFromEnv parses TOKENS_CACHE_SECONDS; empty means the default.
func cacheTTLFromEnv(v string) (time.Duration, error) {
	if v == "" {
		return DefaultCacheTTL, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 3600 {
		return 0, fmt.Errorf("TOKENS_CACHE_SECONDS must be an integer from 1 to 3600, got %q", v)
	}
	return time.Duration(n) * time.Second, nil
}
