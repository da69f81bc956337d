package devrot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot"
)

// BenchmarkRotation measures the signer and the completion function per event, each event a whole invocation through
// the real SDK against the IoT fake and DynamoDB Local: p50 and p99 per function. Run on one core:
//
//	go test -run '^$' -bench BenchmarkRotation -benchtime 200x -cpu 1 ./internal/devrot/
func BenchmarkRotation(b *testing.B) {
	e := newEnv(b)
	e.now = time.Now().UTC()
	type prepared struct {
		d   device
		job string
		csr []byte
	}
	items := make([]prepared, b.N)
	for i := range items {
		d := e.iotDevice(fmt.Sprintf("bench-%d", i))
		_, csr := newCSR(b, d.thing)
		items[i] = prepared{d: d, job: e.startJob(d.thing), csr: csr}
	}
	ctx := context.Background()
	ops := []string{"DescribeCertificate", "UpdateCertificate", "CreateCertificateFromCsr", "AttachPolicy", "AttachThingPrincipal", "ListPrincipalThings", "DescribeJobExecution"}
	before := map[string]int{}
	for _, op := range ops {
		before[op] = e.srv.Calls(awsfake.ServiceIoT, op)
	}
	sign := make([]time.Duration, 0, b.N)
	confirm := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for _, it := range items {
		t0 := time.Now()
		res, err := e.signer.Handle(ctx, devrot.CSREvent{Principal: it.d.certID, ThingName: it.d.thing, JobID: it.job, CSR: string(it.csr)})
		sign = append(sign, time.Since(t0))
		if err != nil || res.Status != "issued" {
			b.Fatalf("signer = %+v, %v", res, err)
		}
		b.StopTimer()
		m := e.lastMessage(it.d.thing)
		raw, _ := json.Marshal(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: it.d.thing, JobID: it.job})
		b.StartTimer()
		t0 = time.Now()
		res, err = e.done.Handle(ctx, raw)
		confirm = append(confirm, time.Since(t0))
		if err != nil || res.Status != "confirmed" {
			b.Fatalf("completion = %+v, %v", res, err)
		}
	}
	b.StopTimer()
	// AWS IoT control-plane calls per rotation (CSR and confirmation), for the fleet-time estimate against the quotas.
	for _, op := range ops {
		b.ReportMetric(float64(e.srv.Calls(awsfake.ServiceIoT, op)-before[op])/float64(b.N), op+"/rotation")
	}
	for name, ds := range map[string][]time.Duration{"signer": sign, "confirm": confirm} {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
}
