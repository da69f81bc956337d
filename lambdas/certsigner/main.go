// Command certsigner is the custom-resource handler (CDK Provider framework onEvent) of the cross-account
// certificate-based stack: it signs a partner's CSR into an AWS IoT certificate that names the account's data
// endpoint as issuer and the agreed topic as subject, and detaches and deactivates that certificate before the stack
// deletes it.
//
// Environment: ISSUED_PARAMETER_PATH (optional, default /iotcert/certsigner), the SSM path below which each issued
// certificate is remembered so that an update rollback gets the certificate issued for the old properties.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/lambdamain"
)

func main() {
	lambdamain.Start(newHandler, func(h *Handler) any { return h.Handle })
}

// newHandler builds the handler with SDK clients from the default configuration (endpoints can be overridden with
// the standard AWS_ENDPOINT_URL_<SERVICE> variables).
func newHandler(ctx context.Context) (*Handler, error) {
	cfg, err := awsconfig.Load(ctx, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &Handler{
		IoT:           iot.NewFromConfig(cfg),
		SSM:           ssm.NewFromConfig(cfg),
		ParameterPath: os.Getenv("ISSUED_PARAMETER_PATH"), // optional; default DefaultParameterPath
		Now:           time.Now,
	}, nil
}
