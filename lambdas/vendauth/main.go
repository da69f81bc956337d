// Command vendauth is the API Gateway token authorizer of the certificate vending API.
//
// Environment: APP_CONFIG_PATH (the SSM path holding appConfig), TOKENS_SECRET_ARN (the hashed tokens),
// REGISTRATIONS_TABLE (each token's state: revoked, or a single-use token used), optional TOKENS_CACHE_SECONDS
// (default 60).
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the handler from the environment and loads the configuration once.
func newHandler(ctx context.Context) (*Handler, error) {
	secretID, table := os.Getenv("TOKENS_SECRET_ARN"), os.Getenv("REGISTRATIONS_TABLE")
	if secretID == "" || table == "" {
		return nil, errors.New("TOKENS_SECRET_ARN and REGISTRATIONS_TABLE must be set")
	}
	ttl, err := cacheTTLFromEnv(os.Getenv("TOKENS_CACHE_SECONDS"))
	if err != nil {
		return nil, err
	}
	cfg, conf, err := vendaws.LoadFunctionConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &Handler{
		Secrets:   secretsmanager.NewFromConfig(cfg),
		Table:     dynamodb.NewFromConfig(cfg),
		Config:    conf,
		SecretID:  secretID,
		TableName: table,
		CacheTTL:  ttl,
	}, nil
}
