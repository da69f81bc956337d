// Command vendregister is the certificate vending API's function behind GET / and POST /register.
//
// Environment: APP_CONFIG_PATH (the SSM path holding appConfig), REGISTRATIONS_TABLE (registration guards and
// single-use token consumption), CSR_ALLOW_SANS ("true" accepts subject alternative names in a CSR),
// THING_NAME_PREFIX (the environment's thing-name prefix; other names are refused).
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/lambdamain"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the handler from the environment and loads the configuration once.
func newHandler(ctx context.Context) (*Handler, error) {
	table := os.Getenv("REGISTRATIONS_TABLE")
	if table == "" {
		return nil, errors.New("REGISTRATIONS_TABLE must be set")
	}
	cfg, conf, err := vendaws.LoadFunctionConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &Handler{
		IoT:       iot.NewFromConfig(cfg),
		Table:     dynamodb.NewFromConfig(cfg),
		Config:    conf,
		TableName: table,
		// Optional: subject alternative names in a CSR are refused unless the environment allows them.
		AllowCSRSANs:    os.Getenv("CSR_ALLOW_SANS") == "true",
		ThingNamePrefix: os.Getenv("THING_NAME_PREFIX"),
	}, nil
}
