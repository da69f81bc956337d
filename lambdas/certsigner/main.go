// Command certsigner is the custom-resource handler (CDK Provider framework onEvent) of the cross-account
// certificate-based stack: it signs a partner's CSR into an AWS IoT certificate that names the account's data
// endpoint as issuer and the agreed topic as subject, and deactivates that certificate before the stack deletes it.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

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
	return &Handler{IoT: iot.NewFromConfig(cfg), Now: time.Now}, nil
}
