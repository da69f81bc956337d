package main

import (
	"context"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestNewHandlerEnvironment(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	cases := []struct {
		name string
		env  map[string]string
		want string // "" = builds
	}{
		{"nothing set", map[string]string{}, "STATE_MACHINE_ARN, SNS_TOPIC_ARN"},
		{"no state machine", map[string]string{"SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t"}, "STATE_MACHINE_ARN"},
		{"complete", map[string]string{"SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t", "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"STATE_MACHINE_ARN", "SNS_TOPIC_ARN"} {
				t.Setenv(k, tc.env[k])
			}
			h, err := newHandler(context.Background())
			if tc.want == "" {
				if err != nil || h == nil {
					t.Fatalf("newHandler() = %v, want a handler", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newHandler() error = %v, want it to name %q", err, tc.want)
			}
		})
	}
}
