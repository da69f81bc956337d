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
		{"nothing set", map[string]string{}, "TABLE_NAME, MANIFEST_BUCKET"},
		{"bad shards", map[string]string{"TABLE_NAME": "t", "MANIFEST_BUCKET": "b", "RENEW_SHARDS": "0"}, "RENEW_SHARDS"},
		{"bad max hosts", map[string]string{"TABLE_NAME": "t", "MANIFEST_BUCKET": "b", "MAX_HOSTS": "many"}, "MAX_HOSTS"},
		{"complete", map[string]string{"TABLE_NAME": "t", "MANIFEST_BUCKET": "b", "PCAarn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TABLE_NAME", "MANIFEST_BUCKET", "RENEW_SHARDS", "MAX_HOSTS", "PCAarn"} {
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
