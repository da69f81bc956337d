// Package lambdamain is the one main() of every Lambda function of the app: JSON logs through the Lambda context
// logger, SDK clients and configuration built once before the first event, and an init failure that is logged (never
// a panic) and ends the process so Lambda reports it.
package lambdamain

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Start builds the handler with newHandler and serves handle(h), a handler function lambda.Start accepts.
func Start[H any](newHandler func(context.Context) (H, error), handle func(H) any) {
	slog.SetDefault(lambdacontext.NewLogger())
	h, err := newHandler(context.Background())
	if err != nil {
		slog.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(handle(h))
}
