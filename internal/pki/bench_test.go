package pki

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkIssueCrossAccount measures certificates issued per second (run with -cpu 1 for one core).
func BenchmarkIssueCrossAccount(b *testing.B) {
	csr := mustCSR(b, "producer1/data")
	req := IssueRequest{CSR: csr, Topic: "producer1/data", Endpoint: testEndpoint}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := IssueCrossAccount(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkIssueCrossAccountLatency records each issuance and reports the median and 99th percentile.
func BenchmarkIssueCrossAccountLatency(b *testing.B) {
	csr := mustCSR(b, "producer1/data")
	req := IssueRequest{CSR: csr, Topic: "producer1/data", Endpoint: testEndpoint}
	durations := make([]time.Duration, 0, 1024)
	for b.Loop() {
		start := time.Now()
		if _, _, err := IssueCrossAccount(req); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	pct := func(p float64) float64 { return float64(durations[int(p*float64(len(durations)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}
