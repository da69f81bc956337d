package rotation_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// benchFleet is the number of hosts in the selection benchmark's table.
const benchFleet = 100000

var benchTable struct {
	once  sync.Once
	name  string
	base  time.Time
	err   error
	loadT time.Duration
}

// loadFleet writes benchFleet hosts whose renewAt values spread evenly over one 7-day certificate lifetime from
// base, as a fleet in its steady state does, each with the extra attributes a rotated host carries.
func loadFleet(b *testing.B, ddb *dynamodb.Client) (string, time.Time) {
	b.Helper()
	benchTable.once.Do(func() {
		began := time.Now()
		benchTable.name = createTable(b, ddb)
		benchTable.base = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		step := 7 * 24 * time.Hour / benchFleet
		work := make(chan []types.WriteRequest)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 8 {
			wg.Go(func() {
				for batch := range work {
					req := map[string][]types.WriteRequest{benchTable.name: batch}
					for len(req) > 0 {
						out, err := ddb.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: req})
						if err != nil {
							mu.Lock()
							benchTable.err = err
							mu.Unlock()
							return
						}
						req = out.UnprocessedItems
					}
				}
			})
		}
		var batch []types.WriteRequest
		for i := range benchFleet {
			id := fmt.Sprintf("i-%017x", i)
			renew := benchTable.base.Add(time.Duration(i) * step)
			batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				rotation.AttrHostID:       &types.AttributeValueMemberS{Value: id},
				rotation.AttrRenewAt:      &types.AttributeValueMemberS{Value: renew.Format(rotation.RenewAtLayout)},
				rotation.AttrRenewShard:   &types.AttributeValueMemberN{Value: fmt.Sprint(rotation.RenewShard(id, rotation.DefaultRenewShards))},
				rotation.AttrSerial:       &types.AttributeValueMemberS{Value: "3A508C29CC0C9FA2F487C6244DF43B756ABE5F67"},
				rotation.AttrExpiry:       &types.AttributeValueMemberS{Value: renew.Add(56 * time.Hour).Format(rotation.ExpiryLayout)},
				rotation.AttrStatus:       &types.AttributeValueMemberS{Value: rotation.StatusRotated},
				rotation.AttrLastRotation: &types.AttributeValueMemberS{Value: renew.Add(-112 * time.Hour).Format(rotation.RenewAtLayout)},
			}}})
			if len(batch) == 25 {
				work <- batch
				batch = nil
			}
		}
		if len(batch) > 0 {
			work <- batch
		}
		close(work)
		wg.Wait()
		benchTable.loadT = time.Since(began)
	})
	if benchTable.err != nil {
		b.Fatalf("load fleet: %v", benchTable.err)
	}
	return benchTable.name, benchTable.base
}

// peakHeap samples the heap in use while f runs and returns the highest value above the level before it.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// BenchmarkSelectDue measures due-host selection (Query per renewAt shard, all pages, manifest written) over a
// table of 100,000 hosts in DynamoDB Local. "run" is a scheduled run 12 hours into the lifetime (1/14 of the fleet
// due); "backlog" has every host due (a first run, or a fleet left unrotated for a week).
func BenchmarkSelectDue(b *testing.B) {
	srv := awsfake.New(b)
	srv.SetEnv(b)
	testsvc.DynamoDB(b)
	cfg := fastConfig(b)
	ddb := dynamodb.NewFromConfig(cfg)
	table, base := loadFleet(b, ddb)
	b.Logf("loaded %d hosts in %v", benchFleet, benchTable.loadT.Round(time.Millisecond))
	srv.S3.CreateBucket(manifestBucket)
	for _, c := range []struct {
		name string
		at   time.Time
		want int
	}{
		{"run", base.Add(12 * time.Hour), benchFleet / 14},
		{"backlog", base.Add(8 * 24 * time.Hour), benchFleet},
	} {
		b.Run(c.name, func(b *testing.B) {
			sel := &rotation.Selector{Table: ddb, Objects: s3.NewFromConfig(cfg), Config: rotation.Config{
				TableName: table, RenewShards: rotation.DefaultRenewShards, MaxHosts: benchFleet, ManifestBucket: manifestBucket,
			}, Now: func() time.Time { return c.at }}
			var out rotation.SelectOutput
			var peak uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				var err error
				p := peakHeap(func() { out, err = sel.Select(context.Background(), rotation.SelectInput{}) })
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, p)
			}
			b.StopTimer()
			if out.Count < c.want-3 || out.Count > c.want+3 || out.ItemsRead != out.Count {
				b.Fatalf("Select() = count %d, items read %d; want about %d and no more read than due", out.Count, out.ItemsRead, c.want)
			}
			b.ReportMetric(float64(out.Count), "hosts")
			b.ReportMetric(float64(out.ItemsRead), "items-read")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// callCounter counts the SDK operations a client makes, by "service.operation".
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.calls[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// BenchmarkRotateHost rotates one host per iteration through every function-side step (SendCSR, CommandResult,
// CheckCSR, Issue, GetCertificate, SendInstall, CommandResult, Record) with the host running both documents for
// real (openssl, aws_signing_helper against the fake CreateSession), and reports the AWS API calls the functions
// made per rotation. Polls that found a command still running are reported apart: in the deployed workflow they
// are the state machine's waits (here one per command: the test hosts answer InProgress to their first poll).
func BenchmarkRotateHost(b *testing.B) {
	f := newFleet(b)
	counter := &callCounter{calls: map[string]int{}}
	f.cfg.APIOptions = append(f.cfg.APIOptions, counter.middleware)
	f.steps.Table = f.dynamoDB(f.cfg)
	f.steps.Commands = ssm.NewFromConfig(f.cfg)
	f.steps.PCA = acmpca.NewFromConfig(f.cfg)
	var waits int
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		id := fmt.Sprintf("i-%017d", 500000+i)
		b.StopTimer()
		f.addHost(b, id, nil, false)
		b.StartTimer()
		st := rotation.State{HostID: id, Run: "arn:aws:states:us-east-1:123456789012:execution:CertRotation-Workflow:bench"} // with the host's lease
		var err error
		for _, step := range []func(context.Context, rotation.State) (rotation.State, error){
			f.steps.SendCSR, f.steps.CommandResult, f.steps.CheckCSR, f.steps.Issue, f.steps.GetCertificate,
			f.steps.SendInstall, f.steps.CommandResult,
		} {
			for {
				var out rotation.State
				out, err = step(context.Background(), st)
				if n := errName(err); n == rotation.ErrCommandInProgress || n == rotation.ErrCertificateInProgress {
					waits++ // the host answers by poll count (one InProgress per command): no pause is needed
					continue
				}
				st = out
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if _, err := f.steps.Record(context.Background(), st); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	total := 0
	for op, c := range counter.calls {
		total += c
		b.Logf("%-40s %.2f per rotation", op, float64(c)/n)
	}
	b.ReportMetric(float64(total-waits)/n, "api-calls")
	b.ReportMetric(float64(waits)/n, "wait-polls")
	b.ReportMetric(float64(len(f.srv.RolesAnywhere.Sessions()))/n, "create-sessions")
}
