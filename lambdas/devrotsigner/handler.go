package main

import (
	"context"

	"github.com/iotcert/iotcert/internal/devrot"
)

// newHandler builds the signer once, before the first event; a bad variable stops the function at init, named.
func newHandler(ctx context.Context) (*devrot.Signer, error) { return devrot.NewSigner(ctx) }

// handle is the function lambda.Start serves: one CSR event, a refusal answered (not retried), an AWS failure
// returned (retried by the asynchronous invocation).
func handle(h *devrot.Signer) any {
	return func(ctx context.Context, ev devrot.CSREvent) (devrot.Result, error) { return h.Handle(ctx, ev) }
}
