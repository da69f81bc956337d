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
		{"nothing set", map[string]string{}, "CRL_BUCKET, IAMRATrustAnchorARN, SNS_TOPIC_ARN, PCAarn, CRL_TABLE"},
		{"complete", map[string]string{"CRL_BUCKET": "b", "IAMRATrustAnchorARN": "a", "SNS_TOPIC_ARN": "t", "PCAarn": "p", "CRL_TABLE": "c"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"CRL_BUCKET", "IAMRATrustAnchorARN", "SNS_TOPIC_ARN", "PCAarn", "CRL_TABLE", "CRL_NAME"} {
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
