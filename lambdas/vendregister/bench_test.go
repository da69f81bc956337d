package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

// BenchmarkRegister measures whole registrations (guard, IoT calls, completion) against the AWS fakes and
// DynamoDB Local, one after another. It reports registrations per second and the 99th percentile latency.
//
//	go test -run '^$' -bench BenchmarkRegister -cpu 1 ./lambdas/vendregister
func BenchmarkRegister(b *testing.B) {
	for _, mode := range []string{"csr", "keys"} {
		b.Run(mode, func(b *testing.B) {
			env, h := setup(b)
			_ = env
			old := slog.Default()
			slog.SetDefault(slog.New(slog.NewJSONHandler(io.Discard, nil)))
			defer slog.SetDefault(old)
			// In CSR mode each device's CSR names its own thing (the subject is checked), made before timing.
			csrFor := func(thing string) string {
				if mode != "csr" {
					return ""
				}
				_, csr := newCSR(b, thing)
				return csr
			}
			// Warm up connections and the thing type cache.
			if resp := call(b, h, request(b, registerBody("warm-"+mode, csrFor("warm-"+mode)))); resp.StatusCode != 200 {
				b.Fatalf("warm-up = %d %s", resp.StatusCode, resp.Body)
			}
			csrs := make([]string, b.N)
			for i := range csrs {
				csrs[i] = csrFor(fmt.Sprintf("bench-%s-%d", mode, i))
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				req := request(b, registerBody(fmt.Sprintf("bench-%s-%d", mode, i), csrs[i]))
				t0 := time.Now()
				resp, _ := h.Handle(context.Background(), req)
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != 200 {
					b.Fatalf("registration %d = %d %s", i, resp.StatusCode, resp.Body)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "registrations/s")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkNewHandler measures the cold-start work of the function: SDK configuration and loading and
// validating the configuration from SSM.
func BenchmarkNewHandler(b *testing.B) {
	setup(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := newHandler(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStart measures, per iteration, a new process of the deployed binary: from process start to its
// answer to a GET / event under a local Lambda runtime API (SDK setup, configuration from SSM, first event).
func BenchmarkColdStart(b *testing.B) {
	setup(b)
	bin := vendtest.BuildFunction(b, ".")
	event := fixture(b, "request-ping.json", "{{ID}}", "tok1", "{{TOKEN}}", "x")
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		d, body := vendtest.ColdStart(b, bin, event)
		if !strings.Contains(string(body), `"statusCode":200`) {
			b.Fatalf("cold start answer = %s", body)
		}
		total += d
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/cold-start")
}
