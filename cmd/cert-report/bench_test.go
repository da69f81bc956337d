package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// BenchmarkCertReport runs the built command over 10,000 and 100,000 certificates in the fake, limiters opened wide:
// ns/op is the wall time of one whole report (CSV to a discarded stdout), calls/op the requests the fake answered,
// maxRSS-MB the command's peak resident memory (VmHWM, sampled), cmd-cpu-s/op the command's CPU time (user and system; the fake's is
// not in it).
//
//	go test -run '^$' -bench CertReport -benchtime 1x ./cmd/cert-report
func BenchmarkCertReport(b *testing.B) {
	bin, err := buildCommand()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("certs=%d", n), func(b *testing.B) {
			srv := awsfake.New(b)
			srv.SetEnv(b)
			load(b, srv, estate(n))
			var (
				maxRSS int64
				cpu    time.Duration
			)
			b.ResetTimer()
			for b.Loop() {
				cmd := exec.Command(bin, append([]string{"-format", "csv", "-progress", "0"}, fast...)...)
				cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				hwm := watchHWM(cmd.Process.Pid)
				if err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
				maxRSS = max(maxRSS, hwm())
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.StopTimer()
			calls := 0
			for _, op := range operations {
				calls += srv.Calls(awsfake.ServiceIoT, op)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(maxRSS)/1024, "maxRSS-MB")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cmd-cpu-s/op")
		})
	}
}

// watchHWM samples the peak resident memory (VmHWM, kilobytes) of a running process every 20 ms until the returned
// function is called, which gives the last sample. The rusage of a child is no use here: its maxrss keeps the
// parent's resident size from before exec.
func watchHWM(pid int) func() int64 {
	var (
		mu   sync.Mutex
		last int64
	)
	done := make(chan struct{})
	go func() {
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
						if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil {
							mu.Lock()
							last = max(last, kb)
							mu.Unlock()
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// TestRateLimited: with every API limited to 100 requests a second, 150 certificates whose DescribeCertificate is
// throttled 5 times take at least 1.54 s: 155 attempts, evenly spaced, because the limiters sit in the SDK's stack
// after the retryer and space the retries too. Meanwhile progress lines reach stderr.
func TestRateLimited(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	load(t, srv, estate(150))
	srv.Inject(awsfake.ServiceIoT, "DescribeCertificate", awsfake.Fault{Status: 400, Code: "ThrottlingException", Times: 5})
	args := []string{"-progress", "300ms", "-max-backoff", "1ms", "-now", reportNow.Format(time.RFC3339)}
	for _, f := range []string{"-list-tps", "-describe-tps", "-things-tps", "-policies-tps", "-thing-tps"} {
		args = append(args, f, "100")
	}
	start := time.Now()
	var stderr strings.Builder
	if code := run(t.Context(), args, io.Discard, &stderr); code != 0 {
		t.Fatalf("run = %d, stderr:\n%s", code, stderr.String())
	}
	if !regexp.MustCompile(`cert-report: \d+ listed, \d+ described, 0 deleted meanwhile, `).MatchString(stderr.String()) {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
	// 155 DescribeCertificate attempts (5 throttled and retried) 10 ms apart.
	if d := time.Since(start); d < 1540*time.Millisecond {
		t.Errorf("150 certificates at 100 requests a second took %s, want at least 1.54s", d)
	}
	if got := srv.Calls(awsfake.ServiceIoT, "DescribeCertificate"); got != 155 {
		t.Errorf("DescribeCertificate calls = %d, want 155", got)
	}
}
