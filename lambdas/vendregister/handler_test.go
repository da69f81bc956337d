package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/capability"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

func captureLogs(t testing.TB) *bytes.Buffer {
	t.Helper()
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf.Buffer
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func fixture(t testing.TB, name string, repl ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(repl...).Replace(string(b)))
}

// setup prepares the AWS side and builds the handler as main does.
func setup(t testing.TB) (*vendtest.Env, *Handler) {
	t.Helper()
	env := vendtest.New(t)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatalf("newHandler() error = %v", err)
	}
	return env, h
}

// request is the seed's registration event with body replaced.
func request(t testing.TB, body string) events.APIGatewayProxyRequest {
	t.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(fixture(t, "request-register.json", "{{ID}}", "tok1", "{{TOKEN}}", "x"), &req); err != nil {
		t.Fatal(err)
	}
	req.Body = body
	return req
}

func registerBody(thing, csr string) string {
	b, _ := json.Marshal(vending.RegisterRequest{ThingName: thing, Version: "1.0", CSR: csr})
	return string(b)
}

func call(t testing.TB, h *Handler, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle() error = %v, want nil", err)
	}
	if got := resp.Headers["Content-Type"]; got != "application/json" {
		t.Errorf("Handle() Content-Type = %q, want application/json", got)
	}
	if !json.Valid([]byte(resp.Body)) {
		t.Errorf("Handle() body = %q, not JSON", resp.Body)
	}
	return resp
}

func errorOf(t testing.TB, resp events.APIGatewayProxyResponse) string {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &e); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	if e["status"] != false {
		t.Errorf("error body %s has no \"status\": false", resp.Body)
	}
	s, _ := e["error"].(string)
	return s
}

// shape returns the JSON keys of a document, recursively, with values blanked.
func shape(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var blank func(any) any
	blank = func(v any) any {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				m[k] = blank(x)
			}
			return m
		}
		return ""
	}
	return blank(v)
}

// checkIssued checks a 200 response: the seed's shape, a certificate chaining to the fake AWS IoT CA, a key pair
// matching it, and the thing registered with its type, attributes, certificate and policy.
func checkIssued(t testing.TB, env *vendtest.Env, resp events.APIGatewayProxyResponse, thing string, csrKey crypto.Signer) (certPEM, keyPEM []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Handle() status = %d %s, want 200", resp.StatusCode, resp.Body)
	}
	shapeFile := "response-register-keys.shape.json"
	if csrKey != nil {
		shapeFile = "response-register-csr.shape.json"
	}
	if got, want := shape(t, []byte(resp.Body)), shape(t, fixture(t, shapeFile)); !reflect.DeepEqual(got, want) {
		t.Errorf("Handle() body shape = %v, want %v", got, want)
	}
	var r vending.RegisterResponse
	if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificate([]byte(r.CertificateData.PEM))
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(env.Srv.IoT.CAPEM())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify against the AWS IoT CA: %v", err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if b, _ := pem.Decode([]byte(r.CertificateData.KeyPair.PublicKey)); b == nil || !bytes.Equal(b.Bytes, pubDER) {
		t.Errorf("key_pair.public_key does not match the certificate")
	}
	if csrKey != nil {
		if r.CertificateData.KeyPair.PrivateKey != "" {
			t.Errorf("CSR mode response carries a private key")
		}
		keyPEM, err = pki.EncodePrivateKey(csrKey)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		keyPEM = []byte(r.CertificateData.KeyPair.PrivateKey)
	}
	if _, err := tls.X509KeyPair([]byte(r.CertificateData.PEM), keyPEM); err != nil {
		t.Errorf("private key does not match the certificate: %v", err)
	}
	if r.RootCA == "" || !strings.HasPrefix(r.RootCA, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("rootCa = %.40q, want a PEM certificate", r.RootCA)
	}
	th, ok := env.Srv.IoT.Thing(thing)
	if !ok {
		t.Fatalf("thing %s not created", thing)
	}
	if th.TypeName != vendtest.ThingType || th.Attributes["version"] != "1.0" || th.Attributes["creationDate"] == "" ||
		th.Attributes[capability.ThingAttribute] != capability.Vending {
		t.Errorf("thing = %+v, want type %s with attributes creationDate, version and %s=%s", th, vendtest.ThingType,
			capability.ThingAttribute, capability.Vending)
	}
	c, ok := env.Srv.IoT.Certificate(r.CertificateData.CertificateID)
	if !ok || c.Status != "ACTIVE" {
		t.Errorf("certificate %s = %+v, want ACTIVE", r.CertificateData.CertificateID, c)
	}
	if got := env.Srv.IoT.ThingPrincipals(thing); len(got) != 1 || got[0] != c.ARN {
		t.Errorf("ThingPrincipals(%s) = %v, want [%s]", thing, got, c.ARN)
	}
	if got := env.Srv.IoT.PrincipalPolicies(c.ARN); len(got) != 1 || got[0] != vendtest.PolicyName {
		t.Errorf("PrincipalPolicies = %v, want [%s]", got, vendtest.PolicyName)
	}
	item := env.Item(t, thing)
	if s, _ := item["status"].(*ddbtypes.AttributeValueMemberS); s == nil || s.Value != vending.StatusComplete {
		t.Errorf("registration item = %v, want status COMPLETE", item)
	}
	return []byte(r.CertificateData.PEM), keyPEM
}

// newCSR returns a device key and a CSR for it, as cmd/register makes them.
func newCSR(t testing.TB, cn string) (key crypto.Signer, csrPEM string) {
	t.Helper()
	k, err := pki.GenerateKey("EC_P256")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(k, cn)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(csr)
}

func TestPingAndMethods(t *testing.T) {
	h := &Handler{Now: func() time.Time { return time.Unix(1700000000, 0) }}
	var ping events.APIGatewayProxyRequest
	if err := json.Unmarshal(fixture(t, "request-ping.json", "{{ID}}", "tok1", "{{TOKEN}}", "x"), &ping); err != nil {
		t.Fatal(err)
	}
	resp := call(t, h, ping)
	if resp.StatusCode != 200 || resp.Body != `{"response":true,"time":1700000000}` {
		t.Errorf("Handle(GET /) = %d %s, want 200 {\"response\":true,\"time\":1700000000}", resp.StatusCode, resp.Body)
	}
	for _, m := range []string{"PUT", "DELETE", "PATCH", "OPTIONS", ""} {
		ping.HTTPMethod = m
		resp := call(t, h, ping)
		if resp.StatusCode != 405 || errorOf(t, resp) != "method not allowed" {
			t.Errorf("Handle(%s /) = %d %s, want 405 method not allowed", m, resp.StatusCode, resp.Body)
		}
	}
}

func TestRegister(t *testing.T) {
	env, h := setup(t)
	logs := captureLogs(t)

	t.Run("keys mode", func(t *testing.T) {
		checkIssued(t, env, call(t, h, request(t, registerBody("device-keys", ""))), "device-keys", nil)
	})
	t.Run("csr mode", func(t *testing.T) {
		key, csr := newCSR(t, "device-csr")
		resp := call(t, h, request(t, registerBody("device-csr", csr)))
		if strings.Contains(resp.Body, "private_key") {
			t.Errorf("CSR mode body = %s, want no private_key", resp.Body)
		}
		checkIssued(t, env, resp, "device-csr", key)
	})
	t.Run("seed event", func(t *testing.T) {
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(fixture(t, "request-register.json", "{{ID}}", "tok1", "{{TOKEN}}", "x", "{{THING}}", "seed-device"), &req); err != nil {
			t.Fatal(err)
		}
		if resp := call(t, h, req); resp.StatusCode != 200 {
			t.Errorf("Handle(seed event) = %d %s, want 200", resp.StatusCode, resp.Body)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		resp := call(t, h, request(t, registerBody("device-keys", "")))
		if resp.StatusCode != 400 || !sameJSON(t, []byte(resp.Body), fixture(t, "response-thing-exists.json")) {
			t.Errorf("Handle(duplicate) = %d %s, want 400 with the seed message", resp.StatusCode, resp.Body)
		}
		if n := len(env.Srv.IoT.Certificates()); n != 3 {
			t.Errorf("certificates after a duplicate = %d, want 3", n)
		}
	})
	for _, secret := range []string{"PRIVATE KEY", "CERTIFICATE REQUEST", "BEGIN"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestRegisterBadRequests(t *testing.T) {
	env, h := setup(t)
	_, goodCSR := newCSR(t, "x")
	weak := `-----BEGIN CERTIFICATE REQUEST-----
MIIBCzCBtgIBADAQMQ4wDAYDVQQDDAV3ZWFrMTBcMA0GCSqGSIb3DQEBAQUAA0sA
-----END CERTIFICATE REQUEST-----`
	tests := []struct {
		name       string
		body       string
		base64     bool
		auth       map[string]any
		wantStatus int
		wantErr    string
	}{
		{"missing thingName", `{"version":"1"}`, false, nil, 400, "thingName is required"},
		{"missing version", `{"thingName":"d1"}`, false, nil, 400, "version is required"},
		{"bad thing name", `{"thingName":"d 1","version":"1"}`, false, nil, 400, "thingName must match"},
		{"unknown field", `{"thingName":"d1","version":"1","accountToken":"x"}`, false, nil, 400, "unknown field"},
		{"invalid json", `{"thingName":`, false, nil, 400, "invalid JSON body"},
		{"empty body", ``, false, nil, 400, "invalid JSON body"},
		{"oversized", `{"thingName":"d1","version":"1","csr":"` + strings.Repeat("A", vending.MaxBodyBytes) + `"}`, false, nil, 413, "larger than"},
		{"bad csr", registerBody("d1", weak), false, nil, 400, "invalid csr"},
		{"csr not pem", registerBody("d1", "hello"), false, nil, 400, "invalid csr"},
		{"bad base64", "!!", true, nil, 400, "base64"},
		{"outside prefix", registerBody("d1", goodCSR), false, map[string]any{"tokenId": "t", "thingPrefix": "sensor-"}, 403, `thingName must start with "sensor-"`},
		{"no authorizer context", registerBody("d1", ""), false, map[string]any{}, 403, "missing authorizer context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, tt.body)
			req.IsBase64Encoded = tt.base64
			if tt.auth != nil {
				req.RequestContext.Authorizer = tt.auth
			}
			resp := call(t, h, req)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(errorOf(t, resp), tt.wantErr) {
				t.Errorf("Handle(%.60s) = %d %s, want %d with %q", tt.body, resp.StatusCode, resp.Body, tt.wantStatus, tt.wantErr)
			}
		})
	}
	if n := len(env.Srv.IoT.Certificates()); n != 0 {
		t.Errorf("certificates after bad requests = %d, want 0", n)
	}
	if n := env.Srv.Calls(awsfake.ServiceIoT, "DescribeThing"); n != 0 {
		t.Errorf("DescribeThing calls for bad requests = %d, want 0", n)
	}
}

func TestRegisterThingOutsideTable(t *testing.T) {
	env, h := setup(t)
	// A thing created by other means than the API.
	if resp := call(t, h, request(t, registerBody("made-elsewhere", ""))); resp.StatusCode != 200 {
		t.Fatalf("first registration = %d %s", resp.StatusCode, resp.Body)
	}
	deleteItem(t, env, "made-elsewhere")
	resp := call(t, h, request(t, registerBody("made-elsewhere", "")))
	if resp.StatusCode != 400 || errorOf(t, resp) != vending.MsgThingExists {
		t.Errorf("Handle(existing thing) = %d %s, want 400 %q", resp.StatusCode, resp.Body, vending.MsgThingExists)
	}
	if item := env.Item(t, "made-elsewhere"); item != nil {
		t.Errorf("guard item after refusing an existing thing = %v, want released", item)
	}
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
}

func deleteItem(t testing.TB, env *vendtest.Env, key string) {
	t.Helper()
	_, err := env.DynamoDB.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(env.Table),
		Key:       map[string]ddbtypes.AttributeValue{vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func putGuard(t testing.TB, env *vendtest.Env, thing string, leaseUntil time.Time) {
	t.Helper()
	_, err := env.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(env.Table),
		Item: map[string]ddbtypes.AttributeValue{
			vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: thing},
			"status":         &ddbtypes.AttributeValueMemberS{Value: vending.StatusPending},
			"requestId":      &ddbtypes.AttributeValueMemberS{Value: "crashed"},
			"leaseUntil":     &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(leaseUntil.Unix())},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegisterGuards(t *testing.T) {
	env, h := setup(t)
	putGuard(t, env, "busy", time.Now().Add(time.Minute))
	resp := call(t, h, request(t, registerBody("busy", "")))
	if resp.StatusCode != 409 || errorOf(t, resp) != vending.MsgInProgress {
		t.Errorf("Handle(guard held) = %d %s, want 409 %q", resp.StatusCode, resp.Body, vending.MsgInProgress)
	}
	putGuard(t, env, "crashed", time.Now().Add(-time.Second))
	if resp := call(t, h, request(t, registerBody("crashed", ""))); resp.StatusCode != 200 {
		t.Errorf("Handle(guard past its lease) = %d %s, want 200", resp.StatusCode, resp.Body)
	}
}

func TestRegisterSingleUseToken(t *testing.T) {
	env, h := setup(t)
	auth := map[string]any{"tokenId": "once", "thingPrefix": "", "singleUse": "true"}
	req := request(t, registerBody("first", ""))
	req.RequestContext.Authorizer = auth
	if resp := call(t, h, req); resp.StatusCode != 200 {
		t.Fatalf("Handle(single-use, first) = %d %s, want 200", resp.StatusCode, resp.Body)
	}
	if item := env.Item(t, vending.TokenItemKey("once")); item == nil {
		t.Errorf("no %s item after a single-use registration", vending.TokenItemKey("once"))
	}
	req = request(t, registerBody("second", ""))
	req.RequestContext.Authorizer = auth
	resp := call(t, h, req)
	if resp.StatusCode != 403 || errorOf(t, resp) != "token already used" {
		t.Errorf("Handle(single-use, second) = %d %s, want 403 token already used", resp.StatusCode, resp.Body)
	}
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
	if item := env.Item(t, "second"); item != nil {
		t.Errorf("guard for refused registration = %v, want released", item)
	}
}

func TestRegisterConcurrent(t *testing.T) {
	env, h := setup(t)
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := h.Handle(context.Background(), request(t, registerBody("contested", "")))
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[200] != 1 || count[200]+count[409]+count[400] != n {
		t.Errorf("status counts of %d concurrent registrations = %v, want one 200 and the rest 409 or 400", n, count)
	}
	if got := len(env.Srv.IoT.Things()); got != 1 {
		t.Errorf("things = %d, want 1", got)
	}
	if got := len(env.Srv.IoT.Certificates()); got != 1 {
		t.Errorf("certificates = %d, want 1", got)
	}
}

// dynamoFaults is a proxy in front of DynamoDB Local that fails chosen operations.
type dynamoFaults struct {
	mu    sync.Mutex
	fails map[string]int // operation → how many more calls fail
	skips map[string]int // operation → how many calls pass before those fail
}

func startDynamoFaults(t testing.TB) *dynamoFaults {
	t.Helper()
	target, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"))
	if err != nil {
		t.Fatal(err)
	}
	f := &dynamoFaults{fails: map[string]int{}, skips: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		f.mu.Lock()
		fail := f.fails[op] > 0 && f.skips[op] == 0
		if fail {
			f.fails[op]--
		} else if f.skips[op] > 0 {
			f.skips[op]--
		}
		f.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"__type":"com.amazon.coral.validate#ValidationException","message":"injected fault"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", srv.URL)
	return f
}

// fail makes the next call of op fail; "op#n" lets n-1 calls pass first.
func (f *dynamoFaults) fail(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, nth, _ := strings.Cut(op, "#")
	f.fails[op] = 1
	if n, err := strconv.Atoi(nth); err == nil && n > 1 {
		f.skips[op] = n - 1
	}
}

func TestRegisterFaults(t *testing.T) {
	env := vendtest.New(t)
	table := startDynamoFaults(t)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		op      string // IoT operation, or "dynamodb:<op>"
		csrMode bool
	}{
		{"GetPolicy", false},
		{"CreateKeysAndCertificate", false},
		{"CreateCertificateFromCsr", true},
		{"AttachPolicy", false},
		{"CreateThing", true},
		{"AttachThingPrincipal", false},
		{"UpdateCertificate", true},
		{"dynamodb:UpdateItem", false},   // spending the token
		{"dynamodb:UpdateItem#2", true},  // recording the certificate in the guard
		{"dynamodb:UpdateItem#3", false}, // marking the registration complete
		{"dynamodb:PutItem", false},
	}
	for i, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			thing := fmt.Sprintf("fault-%d", i)
			csr := ""
			if tt.csrMode {
				_, csr = newCSR(t, thing)
			}
			if op, ok := strings.CutPrefix(tt.op, "dynamodb:"); ok {
				table.fail(op)
			} else {
				env.Srv.Inject(awsfake.ServiceIoT, tt.op, awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
			}
			resp := call(t, h, request(t, registerBody(thing, csr)))
			if resp.StatusCode < 500 || errorOf(t, resp) == "" {
				t.Errorf("Handle(fault in %s) = %d %s, want a 5xx JSON error", tt.op, resp.StatusCode, resp.Body)
			}
			if got := env.Srv.IoT.Certificates(); len(got) != i {
				t.Errorf("certificates after a fault in %s = %d, want %d (none left by this request)", tt.op, len(got), i)
			}
			if _, ok := env.Srv.IoT.Thing(thing); ok {
				t.Errorf("thing %s left after a fault in %s", thing, tt.op)
			}
			if item := env.Item(t, thing); item != nil {
				t.Errorf("guard after a fault in %s = %v, want released", tt.op, item)
			}
			if resp := call(t, h, request(t, registerBody(thing, csr))); resp.StatusCode != 200 {
				t.Errorf("retry after a fault in %s = %d %s, want 200", tt.op, resp.StatusCode, resp.Body)
			}
		})
	}
}

func TestRegisterThrottled(t *testing.T) {
	env, h := setup(t)
	env.Srv.Inject(awsfake.ServiceIoT, "CreateThing", awsfake.Fault{Status: 429, Code: "ThrottlingException", Times: 1})
	env.Srv.Inject(awsfake.ServiceIoT, "AttachPolicy", awsfake.Fault{Status: 503, Code: "ServiceUnavailableException", Times: 1})
	if resp := call(t, h, request(t, registerBody("throttled", ""))); resp.StatusCode != 200 {
		t.Fatalf("Handle(throttled) = %d %s, want 200", resp.StatusCode, resp.Body)
	}
	if got := env.Srv.Calls(awsfake.ServiceIoT, "CreateThing"); got != 2 {
		t.Errorf("CreateThing calls = %d, want 2 (one throttled, one retried)", got)
	}
	if got := env.Srv.Calls(awsfake.ServiceIoT, "AttachPolicy"); got != 2 {
		t.Errorf("AttachPolicy calls = %d, want 2", got)
	}
}

func TestRegisterNoThingType(t *testing.T) {
	env := vendtest.New(t)
	env.Srv.SSM.Put(vendtest.ConfigPath+"/appConfig", strings.ReplaceAll(vendtest.SeedConfig, "CvmGenericType", "CvmMissingType"))
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp := call(t, h, request(t, registerBody("d1", "")))
	if resp.StatusCode != 500 || errorOf(t, resp) != "registration is not configured" {
		t.Errorf("Handle(no thing type) = %d %s, want 500 registration is not configured", resp.StatusCode, resp.Body)
	}
}

// TestMQTT connects to an mTLS broker with certificates issued by the handler in both modes.
func TestMQTT(t *testing.T) {
	env, h := setup(t)
	broker := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: env.Srv.IoT.CAPEM()})
	for _, mode := range []string{"keys", "csr"} {
		t.Run(mode, func(t *testing.T) {
			thing := "mqtt-" + mode
			var key crypto.Signer
			csr := ""
			if mode == "csr" {
				key, csr = newCSR(t, thing)
			}
			certPEM, keyPEM := checkIssued(t, env, call(t, h, request(t, registerBody(thing, csr))), thing, key)
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			opts := mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID(thing).
				SetTLSConfig(broker.TLSConfig(pair)).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
			c := mqtt.NewClient(opts)
			if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("MQTT connect with the issued certificate: %v\n%s", tok.Error(), broker.Log())
			}
			defer c.Disconnect(100)
			var got atomic.Value
			done := make(chan struct{})
			topic := "tlm/x/" + thing + "/d2c"
			if tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
				got.Store(string(m.Payload()))
				close(done)
			}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			if tok := c.Publish(topic, 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("published message not received")
			}
			if got.Load() != "hello" {
				t.Errorf("received %v, want hello", got.Load())
			}
		})
	}
}
