package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/crossregion"
)

const sourceTopic = "arn:aws:sns:us-west-2:123456789012:IoTCrossRegion"

// setup points the environment at the fake (the function runs in its region, us-east-1) and builds the handler as
// main does.
func setup(t *testing.T) (*awsfake.Server, *Handler, *bytes.Buffer) {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	t.Setenv("SOURCE_TOPIC_ARN", sourceTopic)
	t.Setenv("TOPIC_FILTER", "")
	t.Setenv("IOT_DATA_ENDPOINT", "")
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatalf("newHandler() error = %v", err)
	}
	h.Data.(*DataPlane).Backoff = time.Millisecond
	logs := &bytes.Buffer{}
	h.Log = slog.New(slog.NewJSONHandler(logs, nil))
	return srv, h, logs
}

// snsEvent wraps envelopes as SNS delivers them to the function.
func snsEvent(bodies ...string) events.SNSEvent {
	var ev events.SNSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SNSEventRecord{EventSource: "aws:sns", SNS: events.SNSEntity{
			MessageID: "m" + string(rune('0'+i)), TopicArn: sourceTopic, Message: b, Type: "Notification",
		}})
	}
	return ev
}

func envelope(t *testing.T, topic string, payload []byte, origin string, forwarded any) string {
	t.Helper()
	e := map[string]any{"topic": topic, "payload": base64.StdEncoding.EncodeToString(payload), "originRegion": origin}
	if forwarded != nil {
		e["forwardedFrom"] = forwarded
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRepublish(t *testing.T) {
	srv, h, _ := setup(t)
	payload := []byte(`{"provisioned":"through ACM PCA combined with JITR","n":1}` + "\x00\xff")
	res, err := h.Handle(context.Background(), snsEvent(
		envelope(t, "cmd/thing-mr04/cross/region", payload, "us-west-2", nil),
		envelope(t, "cmd/thing:2/cross/region", []byte("plain"), "us-west-2", []string{}),
	))
	if err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	if res != (Result{Republished: 2}) {
		t.Errorf("Handle() = %+v, want 2 republished", res)
	}
	got := srv.IoT.Published()
	if len(got) != 2 {
		t.Fatalf("Published() = %d messages, want 2", len(got))
	}
	m := got[0]
	if m.Topic != "cmd/thing-mr04/cross/region" || !bytes.Equal(m.Payload, payload) || m.QoS != 1 || m.Retain {
		t.Errorf("message = %+v, want the same topic and payload, QoS 1", m)
	}
	if want := [][2]string{{crossregion.OriginProperty, "us-west-2"}}; !slices.Equal(m.UserProperties, want) {
		t.Errorf("user properties = %v, want %v", m.UserProperties, want)
	}
	if got[1].Topic != "cmd/thing:2/cross/region" {
		t.Errorf("second topic = %q", got[1].Topic)
	}
}

// TestLoopGuard: a message republished once is never forwarded again, whatever rule sends it back.
func TestLoopGuard(t *testing.T) {
	srv, h, logs := setup(t)
	res, err := h.Handle(context.Background(), snsEvent(
		envelope(t, "cmd/t1/cross/region", []byte("x"), "us-west-2", []string{"us-east-1"}),
		envelope(t, "cmd/t1/cross/region", []byte("x"), "us-west-2", "us-east-1"),
		envelope(t, "cmd/t1/cross/region", []byte("x"), "us-east-1", nil), // from this very region
	))
	if err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	if res != (Result{Dropped: 3}) {
		t.Errorf("Handle() = %+v, want 3 dropped", res)
	}
	if n := srv.Calls(awsfake.ServiceIoT, "Publish"); n != 0 {
		t.Errorf("Publish calls = %d, want 0", n)
	}
	if !strings.Contains(logs.String(), "message dropped") {
		t.Errorf("drops are not logged: %s", logs.String())
	}
}

// TestRefused: what an attacker with sns:Publish on the topic, or a wrong rule, might send.
func TestRefused(t *testing.T) {
	tests := []struct {
		name string
		ev   func(t *testing.T) events.SNSEvent
		want string
	}{
		{"shadow", func(t *testing.T) events.SNSEvent {
			return snsEvent(envelope(t, "$aws/things/victim/shadow/update", []byte("{}"), "us-west-2", nil))
		}, "reserved"},
		{"other device's data", func(t *testing.T) events.SNSEvent {
			return snsEvent(envelope(t, "dt/victim/telemetry", []byte("{}"), "us-west-2", nil))
		}, "does not match"},
		{"wildcard", func(t *testing.T) events.SNSEvent {
			return snsEvent(envelope(t, "cmd/#", []byte("{}"), "us-west-2", nil))
		}, "not a publishable topic"},
		{"raw message", func(t *testing.T) events.SNSEvent { return snsEvent("hello") }, "not a cross-region envelope"},
		{"other SNS topic", func(t *testing.T) events.SNSEvent {
			ev := snsEvent(envelope(t, "cmd/t1/cross/region", []byte("{}"), "us-west-2", nil))
			ev.Records[0].SNS.TopicArn = "arn:aws:sns:us-west-2:999999999999:Evil"
			return ev
		}, "is not the cross-region topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, h, _ := setup(t)
			_, err := h.Handle(context.Background(), tt.ev(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle() error = %v, want %q", err, tt.want)
			}
			if n := srv.Calls(awsfake.ServiceIoT, "Publish"); n != 0 {
				t.Errorf("Publish calls = %d, want 0", n)
			}
		})
	}
}

func TestPublishFaults(t *testing.T) {
	srv, h, _ := setup(t)
	ev := snsEvent(envelope(t, "cmd/t1/cross/region", []byte("once"), "us-west-2", nil))
	// A throttle is retried: the message is published once.
	srv.Inject(awsfake.ServiceIoT, "Publish", awsfake.Fault{Status: 429, Code: "ThrottlingException", Times: 1})
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle() after one throttle: %v", err)
	}
	if got := len(srv.IoT.Published()); got != 1 {
		t.Errorf("published %d messages, want 1", got)
	}
	// A lasting failure fails the invocation (Lambda retries, then the on-failure destination).
	srv.Inject(awsfake.ServiceIoT, "Publish", awsfake.Fault{Status: 503, Code: "ServiceUnavailableException"})
	_, err := h.Handle(context.Background(), ev)
	var pe *PublishError
	if !errors.As(err, &pe) || pe.Code != "ServiceUnavailableException" || pe.Status != 503 {
		t.Errorf("Handle() error = %v, want the ServiceUnavailableException", err)
	}
	// A refusal is not retried.
	srv.Inject(awsfake.ServiceIoT, "Publish", awsfake.Fault{Status: 403, Code: "ForbiddenException"})
	before := srv.Calls(awsfake.ServiceIoT, "Publish")
	if _, err := h.Handle(context.Background(), ev); !errors.As(err, &pe) || pe.Status != 403 {
		t.Errorf("Handle() error = %v, want 403", err)
	}
	if n := srv.Calls(awsfake.ServiceIoT, "Publish") - before; n != 1 {
		t.Errorf("Publish calls for a 403 = %d, want 1", n)
	}
}

// TestWireFormat checks the request the data plane receives: path, query, signature scope, user properties.
func TestWireFormat(t *testing.T) {
	var got *http.Request
	var body []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(200)
	}))
	defer ts.Close()
	_, h, _ := setup(t)
	h.Data.(*DataPlane).Endpoint = ts.URL
	if _, err := h.Handle(context.Background(), snsEvent(envelope(t, "cmd/a:b/cross/region", []byte("p"), "us-west-2", nil))); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("no request")
	}
	if p := got.URL.EscapedPath(); p != "/topics/cmd%2Fa%3Ab%2Fcross%2Fregion" {
		t.Errorf("path = %q, want the topic as one escaped label", p)
	}
	if q := got.URL.RawQuery; q != "qos=1" {
		t.Errorf("query = %q, want qos=1", q)
	}
	auth := got.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/us-east-1/iotdata/aws4_request") {
		t.Errorf("Authorization = %q, want a SigV4 signature for iotdata in us-east-1", auth)
	}
	props, _ := base64.StdEncoding.DecodeString(got.Header.Get("X-Amz-Mqtt5-User-Properties"))
	if string(props) != `[{"iotcert-origin-region":"us-west-2"}]` {
		t.Errorf("user properties = %s", props)
	}
	if string(body) != "p" {
		t.Errorf("body = %q, want p", body)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(map[string]string{"AWS_REGION": "eu-central-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://data-ats.iot.eu-central-1.amazonaws.com" || c.TopicFilter != crossregion.DefaultTopicFilter {
		t.Errorf("defaults = %+v", c)
	}
	c, _ = ConfigFromEnv(env(map[string]string{"AWS_REGION": "cn-north-1", "IOT_DATA_ENDPOINT": ""}))
	if c.Endpoint != "https://data-ats.iot.cn-north-1.amazonaws.com.cn" {
		t.Errorf("China endpoint = %q", c.Endpoint)
	}
	c, _ = ConfigFromEnv(env(map[string]string{"AWS_REGION": "us-east-1", "IOT_DATA_ENDPOINT": "https://x.example",
		"AWS_ENDPOINT_URL_IOT_DATA_PLANE": "http://127.0.0.1:1"}))
	if c.Endpoint != "http://127.0.0.1:1" {
		t.Errorf("endpoint = %q, want the standard variable first", c.Endpoint)
	}
	for _, bad := range []map[string]string{
		{},
		{"AWS_REGION": "us-east-1", "TOPIC_FILTER": "#"},
		{"AWS_REGION": "us-east-1", "TOPIC_FILTER": "$aws/#"},
		{"AWS_REGION": "us-east-1", "TOPIC_FILTER": "cmd/#/x"},
		{"AWS_REGION": "us-east-1", "SOURCE_TOPIC_ARN": "IoTCrossRegion"},
		{"AWS_REGION": "us-east-1", "IOT_DATA_ENDPOINT": "ftp://x"},
	} {
		if _, err := ConfigFromEnv(env(bad)); err == nil {
			t.Errorf("ConfigFromEnv(%v) error = nil", bad)
		}
	}
}

func TestEventFixture(t *testing.T) {
	srv, h, _ := setup(t)
	b, err := os.ReadFile(filepath.Join("testdata", "sns.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SNSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle(sns.json) error = %v", err)
	}
	if got := srv.IoT.Published(); len(got) != 1 || got[0].Topic != "cmd/thing-mr04/cross/region" ||
		string(got[0].Payload) != `{"msg":"hello from us-west-2"}` {
		t.Errorf("Published() = %+v", got)
	}
}
