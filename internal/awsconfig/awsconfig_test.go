package awsconfig

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// A throttled AWS IoT call is retried until it succeeds, further than the SDK's default three attempts.
func TestLoadRetriesThrottling(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	srv.Inject("iot", "DescribeEndpoint", awsfake.Fault{Status: 429, Code: "ThrottlingException", Times: 4})
	cfg, err := Load(context.Background(), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Retryer().MaxAttempts(); got != MaxAttempts {
		t.Errorf("MaxAttempts() = %d, want %d", got, MaxAttempts)
	}
	out, err := iot.NewFromConfig(cfg).DescribeEndpoint(context.Background(), &iot.DescribeEndpointInput{EndpointType: strPtr("iot:Data-ATS")})
	if err != nil {
		t.Fatalf("DescribeEndpoint() error = %v, want success after retries", err)
	}
	if *out.EndpointAddress != srv.IoT.Endpoint() {
		t.Errorf("DescribeEndpoint() = %s, want %s", *out.EndpointAddress, srv.IoT.Endpoint())
	}
	if n := srv.Calls("iot", "DescribeEndpoint"); n != 5 {
		t.Errorf("calls = %d, want 5 (4 throttled, 1 answered)", n)
	}
}

func strPtr(s string) *string { return &s }
