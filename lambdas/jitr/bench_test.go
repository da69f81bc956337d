package main

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkJITR measures one registration event end to end against the IoT fake, through the real SDK over
// loopback HTTP: DescribeCertificate, DescribeThing, CreateThing, AttachThingPrincipal, AttachPolicy and
// UpdateCertificate for a new device each time (DescribeCACertificate once per process). Certificates are made and auto-registered before
// the timer starts. Reports events/s and the p50 and p99 latency of one event. Run on one core with
//
//	GOMAXPROCS=1 go test -run '^$' -bench BenchmarkJITR -cpu 1 -benchtime 2000x ./lambdas/jitr/
func BenchmarkJITR(b *testing.B) {
	f := setup(b)
	events := make([]Event, b.N)
	for i := range events {
		events[i] = f.connect(f.ca.issue(b, deviceTemplate("bench-"+strconv.Itoa(i)), nil))
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := f.h.Handle(ctx, events[i]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}
