// Package awsfake serves in-process fakes of the AWS wire protocols, so that tests drive the real aws-sdk-go-v2
// clients through the standard AWS_ENDPOINT_URL_<SERVICE> variables.
//
// One HTTP server on 127.0.0.1 answers every service; a request is dispatched by protocol:
//   - AWS IoT (REST-JSON): method and path;
//   - Secrets Manager, SSM, ACM PCA, EventBridge (awsJson 1.1) and Step Functions (awsJson 1.0): the X-Amz-Target header;
//   - SNS (AWS query): the form-encoded Action parameter.
//
// Signatures are not verified, but every request must carry a SigV4 Authorization header.
//
// A handler test builds its handler exactly as main.go does, after pointing the environment at the fake:
//
//	srv := awsfake.New(t) // closed when the test ends
//	srv.SetEnv(t)         // AWS_ENDPOINT_URL_<SERVICE>, region, fake credentials
//	srv.IoT.PutThingType("sensor")
//	srv.Inject("iot", "CreateThing", awsfake.Fault{Status: 429, Code: "ThrottlingException", Times: 1})
//	h, err := newHandler(ctx)
//	...
//	if got := srv.Calls("iot", "CreateThing"); got != 2 { ... }
//
// Where AWS is eventually consistent the fake is too, by a number of calls rather than by time: a principal
// detached from a thing stays visible to DeleteThing, DeleteCertificate and the principal lists for
// DefaultDetachDelay calls (IoT.SetDetachDelay), and ACM PCA's GetCertificate answers RequestInProgressException
// DefaultPendingGets times after IssueCertificate (PCA.SetPendingGets). Every error the fake answers, or is told to
// inject, must be one the SDK types for that operation (or one of AWS's common errors): New fails the test otherwise.
//
// The SDK's default retryer backs off for up to seconds after a throttling error; tests that inject throttles run
// faster with a client whose retryer backs off briefly.
package awsfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

const (
	// AccountID is the account every fake resource belongs to.
	AccountID = "123456789012"
	// Region is the region every fake resource lives in.
	Region = "us-east-1"
)

// Fake credentials, set by SetEnv and Config. They are never checked.
const (
	fakeAccessKeyID     = "AKIAFAKEFAKEFAKEFAKE"
	fakeSecretAccessKey = "fake/secret/access/key/not/a/real/one/000"
)

// Service names accepted by Inject and Calls.
const (
	ServiceIoT            = "iot"
	ServiceSecretsManager = "secretsmanager"
	ServiceSSM            = "ssm"
	ServicePCA            = "acm-pca"
	ServiceSFN            = "sfn"
	ServiceEvents         = "events"
	ServiceSNS            = "sns"
)

// Fault makes an operation fail or slow down.
type Fault struct {
	// Status is the HTTP status of the error answer. Zero with an empty Code means no error: only Latency applies.
	Status int
	// Code is the AWS error code, e.g. "ThrottlingException".
	Code string
	// Message is the error message. Default: a message naming the injected fault.
	Message string
	// Times is how many calls the fault answers before the operation serves normally again. Zero: every call.
	Times int
	// Latency delays the answer (error or normal), honouring the request's cancellation.
	Latency time.Duration
}

type faultState struct {
	Fault
	used int
}

// Server is the fake. Its state accessors are safe for concurrent use.
type Server struct {
	IoT     *IoT
	Secrets *SecretsManager
	SSM     *SSM
	PCA     *PCA
	SFN     *StepFunctions
	Events  *EventBridge
	SNS     *SNS
	// Commands (SSM Run Command), RolesAnywhere and S3 serve certificate rotation (rotation.go).
	Commands      *SSMCommands
	RolesAnywhere *RolesAnywhere
	S3            *S3

	srv       *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	faults map[string]*faultState
	calls  map[string]int
	// untyped records answers (and injected faults) with an error code the SDK does not type for the operation.
	untyped []string
}

// New starts a server and closes it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := Start()
	t.Cleanup(s.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, u := range s.untyped {
			t.Errorf("awsfake: %s", u)
		}
	})
	return s
}

// Start starts a server; the caller closes it. For benchmarks and TestMain.
func Start() *Server {
	s := &Server{
		IoT:     newIoT(),
		Secrets: newSecretsManager(),
		SSM:     newSSM(),
		PCA:     newPCA(),
		SFN:     newStepFunctions(),
		Events:  newEventBridge(),
		SNS:     newSNS(),

		Commands:      newSSMCommands(),
		RolesAnywhere: newRolesAnywhere(),
		S3:            newS3(),

		faults:  map[string]*faultState{},
		calls:   map[string]int{},
		closing: make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Close stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing) // ends injected latencies still waiting
		s.srv.Close()
	})
}

// URL is the base URL of every service, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.srv.URL }

// SetEnv points the standard AWS SDK environment at the server for the duration of the test: endpoints, region,
// fake static credentials, no instance metadata and empty shared config files.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, svc := range []string{"IOT", "SECRETS_MANAGER", "SSM", "ACM_PCA", "SFN", "EVENTBRIDGE", "SNS", "ROLESANYWHERE", "S3", "IOT_DATA_PLANE"} {
		t.Setenv("AWS_ENDPOINT_URL_"+svc, s.URL())
	}
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_DEFAULT_REGION", Region)
	t.Setenv("AWS_ACCESS_KEY_ID", fakeAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", fakeSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	empty := filepath.Join(t.TempDir(), "aws-empty-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatalf("awsfake: write empty config: %v", err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
}

// Config returns an aws.Config pointing at the server with fake static credentials, for code that does not read the
// environment. The SDK's default retryer is kept.
func (s *Server) Config(ctx context.Context) aws.Config {
	_ = ctx
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(fakeAccessKeyID, fakeSecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL()),
	}
}

// Inject makes later calls of service's op answer with f (see Fault). It replaces any fault already set on that op.
// A server made by New fails the test when f.Code is neither one the SDK types for op nor one of AWS's common errors
// (ThrottlingException, AccessDeniedException, InternalFailure, ...): the code under test could not tell it apart.
func (s *Server) Inject(service, op string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Code != "" && !allowedErrorCode(service, op, f.Code) {
		s.untyped = append(s.untyped, fmt.Sprintf("Inject(%s, %s): the SDK does not type error code %s for this "+
			"operation, so callers only see a generic API error", service, op, f.Code))
	}
	s.faults[service+"/"+op] = &faultState{Fault: f}
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*faultState{}
}

// Calls is how many requests reached service's op, faulted ones included.
func (s *Server) Calls(service, op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[service+"/"+op]
}

// apiError is an AWS error answer in any protocol.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Extra holds additional members of the JSON error body (e.g. resourceId).
	Extra map[string]any
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// protocol writes answers in one wire format.
type protocol interface {
	writeError(w http.ResponseWriter, e *apiError)
}

type (
	restJSON struct{}
	awsJSON  struct{ contentType string }
	awsQuery struct{}
)

func (restJSON) writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"message": e.Message}
	for k, v := range e.Extra {
		body[k] = v
	}
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	writeJSON(w, "application/json", e.Status, body)
}

func (p awsJSON) writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"__type": e.Code, "message": e.Message}
	for k, v := range e.Extra {
		body[k] = v
	}
	writeJSON(w, p.contentType, e.Status, body)
}

func (awsQuery) writeError(w http.ResponseWriter, e *apiError) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	type errorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type errorResponse struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Xmlns     string    `xml:"xmlns,attr"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}
	writeXML(w, e.Status, errorResponse{
		Xmlns:     snsXMLNS,
		Error:     errorBody{Type: typ, Code: e.Code, Message: e.Message},
		RequestID: newUUID(),
	})
}

func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "awsfake: encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", newUUID())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "awsfake: encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// jsonTargets maps an X-Amz-Target prefix to its service.
var jsonTargets = map[string]string{
	"secretsmanager":   ServiceSecretsManager,
	"AmazonSSM":        ServiceSSM,
	"ACMPrivateCA":     ServicePCA,
	"AWSStepFunctions": ServiceSFN,
	"AWSEvents":        ServiceEvents,
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		proto   protocol
		service string
		op      string
	)
	target := r.Header.Get("X-Amz-Target")
	switch {
	case target != "":
		ct := r.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "application/x-amz-json-") {
			ct = "application/x-amz-json-1.1"
		}
		proto = awsJSON{contentType: ct}
		prefix, name, _ := strings.Cut(target, ".")
		service, op = jsonTargets[prefix], name
		if service == "" {
			proto.writeError(w, errorf(400, "UnknownOperationException", "awsfake: unknown X-Amz-Target %q", target))
			return
		}
	case r.Method == http.MethodPost && r.URL.Path == "/" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		proto, service = awsQuery{}, ServiceSNS
		if err := r.ParseForm(); err != nil {
			proto.writeError(w, errorf(400, "MalformedQueryString", "awsfake: parse form: %v", err))
			return
		}
		op = r.PostForm.Get("Action")
	case scopeService(r) == ServiceRolesAnywhere:
		proto, service, op = restJSON{}, ServiceRolesAnywhere, r.Method+" "+r.URL.Path
	case scopeService(r) == ServiceS3:
		proto, service, op = s3XML{}, ServiceS3, s3Operation(r)
	default:
		proto, service = restJSON{}, ServiceIoT
		op = iotOperation(r)
	}

	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") && !(service == ServiceRolesAnywhere && isX509Signed(r)) {
		proto.writeError(w, errorf(http.StatusForbidden, "MissingAuthenticationTokenException",
			"awsfake: %s %s: request is not signed with AWS4-HMAC-SHA256", service, opName(op, r)))
		return
	}

	// Read the body now: the server notices a client that gave up only once the body is consumed.
	var body []byte
	if service != ServiceSNS {
		b, e := readBody(r)
		if e != nil {
			proto.writeError(w, e)
			return
		}
		body = b
	}

	s.mu.Lock()
	s.calls[service+"/"+op]++
	var fault *Fault
	if f := s.faults[service+"/"+op]; f != nil && (f.Times == 0 || f.used < f.Times) {
		f.used++
		copied := f.Fault
		fault = &copied
	}
	s.mu.Unlock()

	if fault != nil {
		if fault.Latency > 0 {
			timer := time.NewTimer(fault.Latency)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				return
			case <-s.closing:
				timer.Stop()
				return
			}
		}
		if fault.Status != 0 || fault.Code != "" {
			e := &apiError{Status: fault.Status, Code: fault.Code, Message: fault.Message}
			if e.Status == 0 {
				e.Status = 400
			}
			if e.Code == "" {
				e.Code = "InternalFailure"
			}
			if e.Message == "" {
				e.Message = fmt.Sprintf("awsfake: injected %s on %s %s", e.Code, service, op)
			}
			proto.writeError(w, e)
			return
		}
	}

	var err *apiError
	switch service {
	case ServiceIoT:
		err = s.IoT.serve(w, r, op, body)
	case ServiceSNS:
		err = s.SNS.serve(w, r, op)
	case ServiceRolesAnywhere:
		err = s.RolesAnywhere.serve(w, r, body)
	case ServiceS3:
		err = s.S3.serve(w, r, body)
	default:
		err = s.serveJSON(w, proto.(awsJSON), service, op, body)
	}
	if err != nil {
		if !allowedErrorCode(service, op, err.Code) {
			s.mu.Lock()
			s.untyped = append(s.untyped, fmt.Sprintf("%s %s answered %s (%s), a code the SDK does not type for "+
				"this operation", service, op, err.Code, err.Message))
			s.mu.Unlock()
		}
		proto.writeError(w, err)
	}
}

func opName(op string, r *http.Request) string {
	if op == "" {
		return r.Method + " " + r.URL.Path
	}
	return op
}

// jsonHandler serves one awsJson operation: it decodes the request into its own type and returns the answer.
type jsonHandler func(body []byte) (any, *apiError)

func (s *Server) serveJSON(w http.ResponseWriter, p awsJSON, service, op string, body []byte) *apiError {
	var h jsonHandler
	switch service {
	case ServiceSecretsManager:
		h = s.Secrets.handler(op)
	case ServiceSSM:
		if h = s.SSM.handler(op); h == nil {
			h = s.Commands.handler(op)
		}
	case ServicePCA:
		h = s.PCA.handler(op)
	case ServiceSFN:
		h = s.SFN.handler(op)
	case ServiceEvents:
		h = s.Events.handler(op)
	}
	if h == nil {
		return errorf(400, "UnknownOperationException", "awsfake: %s operation %s is not implemented", service, op)
	}
	out, err := h(body)
	if err != nil {
		return err
	}
	writeJSON(w, p.contentType, http.StatusOK, out)
	return nil
}

func readBody(r *http.Request) ([]byte, *apiError) {
	const limit = 4 << 20
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errorf(400, "SerializationException", "awsfake: read request body: %v", err)
	}
	if len(b) > limit {
		return nil, errorf(413, "RequestEntityTooLargeException", "awsfake: request body over %d bytes", limit)
	}
	return b, nil
}

// decodeJSON decodes an awsJson request body; validation errors use code.
func decodeJSON(body []byte, v any, code string) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(400, code, "awsfake: malformed request body: %v", err)
	}
	return nil
}

// epoch renders a time as the epoch-seconds number the JSON protocols use.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// randomString returns n characters from alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
