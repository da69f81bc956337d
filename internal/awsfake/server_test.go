package awsfake_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestInjectedThrottleIsRetried(t *testing.T) {
	srv, cfg := envConfig(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		service string
		op      string
		fault   awsfake.Fault
		call    func() error
	}{
		{
			name: "iot 429", service: "iot", op: "DescribeEndpoint",
			fault: awsfake.Fault{Status: 429, Code: "ThrottlingException", Times: 2},
			call: func() error {
				_, err := iot.NewFromConfig(cfg).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
				return err
			},
		},
		{
			name: "secrets manager 400", service: "secretsmanager", op: "CreateSecret",
			fault: awsfake.Fault{Status: 400, Code: "ThrottlingException", Times: 2},
			call: func() error {
				_, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v")})
				return err
			},
		},
		{
			name: "ssm 503", service: "ssm", op: "PutParameter",
			fault: awsfake.Fault{Status: 503, Code: "ServiceUnavailable", Times: 1},
			call: func() error {
				_, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/x"), Value: aws.String("v")})
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Inject(tt.service, tt.op, tt.fault)
			if err := tt.call(); err != nil {
				t.Fatalf("%s after %d faults: error = %v, want success", tt.op, tt.fault.Times, err)
			}
			if got, want := srv.Calls(tt.service, tt.op), tt.fault.Times+1; got != want {
				t.Errorf("Calls(%s, %s) = %d, want %d", tt.service, tt.op, got, want)
			}
		})
	}
	if _, ok := srv.Secrets.Secret("s"); !ok {
		t.Error("secret s was not created after the throttled attempts")
	}
}

func TestInjectedServerFault(t *testing.T) {
	srv, cfg := envConfig(t)
	c := iot.NewFromConfig(cfg, func(o *iot.Options) { o.RetryMaxAttempts = 2 })
	srv.Inject("iot", "DescribeThing", awsfake.Fault{Status: 500, Code: "InternalFailureException", Message: "boom"})
	_, err := c.DescribeThing(context.Background(), &iot.DescribeThingInput{ThingName: aws.String("t")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalFailureException" || apiErr.ErrorMessage() != "boom" {
		t.Fatalf("DescribeThing() error = %v, want InternalFailureException boom", err)
	}
	var resp *smithyhttp.ResponseError
	if !errors.As(err, &resp) || resp.HTTPStatusCode() != 500 {
		t.Errorf("DescribeThing() status = %v, want 500", err)
	}
	if got := srv.Calls("iot", "DescribeThing"); got != 2 {
		t.Errorf("Calls(iot, DescribeThing) = %d, want 2 (Times 0 faults every attempt)", got)
	}
	srv.ClearFaults()
	var nf interface{ ErrorCode() string }
	if _, err := c.DescribeThing(context.Background(), &iot.DescribeThingInput{ThingName: aws.String("t")}); !errors.As(err, &nf) || nf.ErrorCode() != "ResourceNotFoundException" {
		t.Errorf("DescribeThing() after ClearFaults error = %v, want ResourceNotFoundException", err)
	}
}

func TestInjectedLatency(t *testing.T) {
	srv, cfg := envConfig(t)
	c := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
	srv.SSM.Put("/slow", "v")

	srv.Inject("ssm", "GetParameter", awsfake.Fault{Latency: 50 * time.Millisecond, Times: 1})
	start := time.Now()
	out, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/slow")})
	if err != nil || aws.ToString(out.Parameter.Value) != "v" {
		t.Fatalf("GetParameter(latency only) = %v, %v, want v", out, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("GetParameter took %v, want at least 50ms", d)
	}

	srv.Inject("ssm", "GetParameter", awsfake.Fault{Latency: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/slow")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetParameter(10s latency, 100ms deadline) error = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("GetParameter took %v: the cancelled request was not abandoned", d)
	}
}

func TestRawRequests(t *testing.T) {
	srv := awsfake.New(t)
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"unsigned iot", "GET", "/endpoint", nil, "", 403, "AWS4-HMAC-SHA256"},
		{"unsigned json", "POST", "/", map[string]string{"X-Amz-Target": "AmazonSSM.GetParameter"}, "{}", 403, "MissingAuthenticationTokenException"},
		{"unknown iot route", "GET", "/job-executions", map[string]string{"Authorization": "AWS4-HMAC-SHA256 x"}, "", 404, "GET /job-executions"},
		{"unknown json op", "POST", "/", map[string]string{"Authorization": "AWS4-HMAC-SHA256 x", "X-Amz-Target": "AmazonSSM.LabelParameterVersion"}, "{}", 400, "LabelParameterVersion"},
		{"unknown target", "POST", "/", map[string]string{"Authorization": "AWS4-HMAC-SHA256 x", "X-Amz-Target": "DynamoDB_20120810.GetItem"}, "{}", 400, "DynamoDB_20120810.GetItem"},
		{"unknown query action", "POST", "/", map[string]string{"Authorization": "AWS4-HMAC-SHA256 x", "Content-Type": "application/x-www-form-urlencoded"}, "Action=CreateTopic&Name=x", 400, "CreateTopic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL()+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantBody) {
				t.Errorf("%s %s = %d %s, want %d containing %q", tt.method, tt.path, resp.StatusCode, b, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestConfigWithoutEnv(t *testing.T) {
	srv := awsfake.New(t)
	cfg := srv.Config(context.Background())
	out, err := iot.NewFromConfig(cfg).DescribeEndpoint(context.Background(), &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
	if err != nil || aws.ToString(out.EndpointAddress) != srv.IoT.Endpoint() {
		t.Errorf("DescribeEndpoint() via Config = %v, %v, want %s", out, err, srv.IoT.Endpoint())
	}
}
