package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

// BenchmarkNewHandler measures the cold-start work of the authorizer: SDK configuration and loading and
// validating the configuration from SSM.
//
//	go test -run '^$' -bench . -cpu 1 ./lambdas/vendauth
func BenchmarkNewHandler(b *testing.B) {
	vendtest.New(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := newHandler(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandle measures one authorization with the tokens secret cached, among 100 stored tokens.
func BenchmarkHandle(b *testing.B) {
	env := vendtest.New(b)
	var token string
	for i := 0; i < 100; i++ {
		_, token = env.AddToken(b, "", time.Time{}, false)
	}
	h, err := newHandler(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	defer slog.SetDefault(old)
	ev := event(b, "DeviceToken "+token)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := h.Handle(context.Background(), ev)
		if err != nil || resp.PolicyDocument.Statement[0].Effect != "Allow" {
			b.Fatalf("Handle() = %v, %v", resp, err)
		}
	}
}

// BenchmarkColdStart measures, per iteration, a new process of the deployed binary: from process start to its
// answer to a first authorization under a local Lambda runtime API (SDK setup, configuration from SSM, tokens
// secret, first event).
func BenchmarkColdStart(b *testing.B) {
	env := vendtest.New(b)
	_, token := env.AddToken(b, "", time.Time{}, false)
	bin := vendtest.BuildFunction(b, ".")
	ev := fixture(b, "request-token.json", "{{TOKEN}}", token)
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		d, body := vendtest.ColdStart(b, bin, ev)
		if !strings.Contains(string(body), `"Allow"`) {
			b.Fatalf("cold start answer = %s", body)
		}
		total += d
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/cold-start")
}
