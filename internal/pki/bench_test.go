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

// BenchmarkDeviceCSRCheck measures what the vending API's CSR mode adds per request: reading the one PEM block,
// verifying the CSR and checking its subject against the thing name.
func BenchmarkDeviceCSRCheck(b *testing.B) {
	k, err := GenerateKey(KeyECP256)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewDeviceCSR(k, "sensor-0001")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		csr, _, err := ParseDeviceCSR(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := CheckDeviceSubject(csr, "sensor-0001", false); err != nil {
			b.Fatal(err)
		}
	}
}
