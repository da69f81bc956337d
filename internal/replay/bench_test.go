package replay_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

// BenchmarkReplay applies thing events one after the other through ThingCrud's code: parse, claim in the Versions
// table (DynamoDB Local), DescribeThing and UpdateThing against the IoT fake, mark applied.
func BenchmarkReplay(b *testing.B) {
	env := replaytest.New(b)
	p := replaytest.NewPrimary(b)
	const things = 100
	for i := range things {
		p.CreateThing(b, fmt.Sprintf("bench-%03d", i), "", map[string]string{"n": "0"})
	}
	ctx := context.Background()
	for _, r := range records(p) {
		if _, err := replay.ThingCrud.Handle(ctx, env.Applier, r); err != nil {
			b.Fatal(err)
		}
	}
	recs := make([]replay.Record, b.N)
	for i := range b.N {
		name := fmt.Sprintf("bench-%03d", i%things)
		recs[i] = replaytest.Record(map[string]any{"eventType": replay.ThingEvent, "eventId": fmt.Sprintf("b-%d", i),
			"timestamp": int64(1_767_100_000_000 + i), "operation": "UPDATED", "thingName": name,
			"versionNumber": int64(2 + i/things), "attributes": map[string]any{"n": fmt.Sprint(i)}}, replaytest.PrimaryRegion)
	}
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		if _, err := replay.ThingCrud.Handle(ctx, env.Applier, recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "events/s")
}

// seedThings creates n things in a fake through the SDK, 8 at a time.
func seedThings(b *testing.B, c *iot.Client, n int) {
	b.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				_, err := c.CreateThing(context.Background(), &iot.CreateThingInput{ThingName: aws.String(fmt.Sprintf("dev-%05d", i)),
					AttributePayload: &types.AttributePayload{Attributes: map[string]string{"site": fmt.Sprint(i % 7)}}})
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// peakHeap samples the heap in use until stop is closed and returns the peak in MB.
func peakHeap(stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- float64(peak) / (1 << 20)
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BenchmarkReconcile10k compares registries of 10,000 things: in step (the daily run's usual case: two listings,
// nothing to repair) and a backfill into an empty region (10,000 creates, each claimed in the Versions table). No rate
// limit: the figures are the reconciler's own cost; the deployed function spaces its IoT calls at RATE_PER_SECOND.
// The peak heap includes the in-process fakes holding both registries.
func BenchmarkReconcile10k(b *testing.B) {
	for _, mode := range []string{"in step", "backfill"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				env := replaytest.New(b)
				p := replaytest.NewPrimary(b)
				seedThings(b, p.IoT, 10_000)
				replica := iot.NewFromConfig(env.Replica.Config(context.Background()))
				if mode == "in step" {
					seedThings(b, replica, 10_000)
				}
				runtime.GC()
				stop := make(chan struct{})
				peak := peakHeap(stop)
				b.StartTimer()
				rep, err := (&replay.Reconciler{Primary: p.IoT, Replica: replica, Applier: env.Applier}).Run(context.Background())
				b.StopTimer()
				close(stop)
				if err != nil || rep.Things != 10_000 || rep.Failed != 0 {
					b.Fatalf("Run = %+v, %v", rep, err)
				}
				if want := map[string]int{"in step": 0, "backfill": 10_000}[mode]; rep.Drift != want {
					b.Fatalf("drift %d, want %d", rep.Drift, want)
				}
				b.ReportMetric(<-peak, "peak-heap-MB")
				b.ReportMetric(rep.Seconds, "s/run")
			}
		})
	}
}
