// Package awsconfig loads the AWS SDK configuration every function and tool of the app uses: the default chain
// (so AWS_ENDPOINT_URL_<SERVICE> reaches local servers in tests) with a retryer wide enough for AWS IoT's
// control-plane quotas.
package awsconfig

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// MaxAttempts of every SDK call. AWS IoT throttles its control plane at 10 to 15 requests per second per account and
// API; a stack deploying many things, or a burst of registrations, meets that limit, and the standard three attempts
// are too few to ride it out.
const MaxAttempts = 8

// Load returns the default configuration with the standard retryer widened to MaxAttempts, waiting at most
// maxBackoff between attempts (callers inside API Gateway's 29 s budget pass a shorter one).
func Load(ctx context.Context, maxBackoff time.Duration) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = MaxAttempts
			o.MaxBackoff = maxBackoff
		})
	}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}
