package vendtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BuildFunction builds the function in package directory dir as it is deployed (static, lambda.norpc, stripped)
// but for the host platform, and returns the binary's path.
func BuildFunction(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-tags", "lambda.norpc", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// ColdStart starts the function binary under a local Lambda runtime API, hands it event, and returns the time
// from process start to the function's answer, and the answer. The process inherits the test's environment
// (SDK endpoints and function variables) and is killed afterwards.
func ColdStart(tb testing.TB, bin string, event []byte) (time.Duration, []byte) {
	tb.Helper()
	type result struct {
		at   time.Time
		body []byte
		path string
	}
	done := make(chan result, 1)
	served := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/runtime/invocation/next"):
			if served {
				<-r.Context().Done() // no second event: wait until the process is killed
				return
			}
			served = true
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", "cold-start-1")
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:cold")
			_, _ = w.Write(event)
		case r.Method == http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			select {
			case done <- result{at: time.Now(), body: body, path: r.URL.Path}:
			default:
			}
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=cold", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	select {
	case r := <-done:
		if !strings.HasSuffix(r.path, "/response") {
			tb.Fatalf("function reported %s: %s\n%s", r.path, r.body, stderr.String())
		}
		return r.at.Sub(start), r.body
	case <-ctx.Done():
		tb.Fatalf("no answer from the function within 30 s\n%s", stderr.String())
		return 0, nil
	}
}
