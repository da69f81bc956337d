package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/generations"
)

// message is one MQTT message received by a session.
type message struct {
	topic   string
	payload []byte
}

// session is one MQTT connection made with the certificate and key of one generation. The agent works one step at a
// time, so messages go to one buffered channel and each step reads what it waits for.
type session struct {
	c     mqtt.Client
	thing string
	msgs  chan message
}

// connect opens an MQTT 3.1.1 connection over mutual TLS with generation gen, the client id being the thing name
// (the device policies allow only that), and subscribes to the thing's Jobs answers and certificate topic.
func (a *Agent) connect(ctx context.Context, gen string) (*session, error) {
	certPEM, err := a.Dir.Read(gen, generations.CertFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate of generation %s: %w", gen, err)
	}
	keyPEM, err := a.Dir.Read(gen, generations.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read key of generation %s: %w", gen, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("generation %s: %w", gen, err)
	}
	host := a.Endpoint
	if i := strings.LastIndex(host, ":"); i > 0 {
		host = host[:i]
	}
	serverName := a.ServerName
	if serverName == "" {
		serverName = host
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: a.RootCAs, ServerName: serverName, MinVersion: tls.VersionTLS12}
	s := &session{thing: a.Thing, msgs: make(chan message, 64)}
	var last error
	for attempt := 1; attempt <= max(a.ConnectAttempts, 1); attempt++ {
		opts := mqtt.NewClientOptions().AddBroker("ssl://" + a.Endpoint).SetClientID(a.Thing).SetTLSConfig(conf).
			SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
			SetConnectTimeout(10 * time.Second).SetOrderMatters(false).
			SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { s.deliver(m) })
		s.c = mqtt.NewClient(opts)
		if last = wait(ctx, s.c.Connect(), 15*time.Second); last == nil {
			break
		}
		s.c.Disconnect(0)
		var unknown x509.UnknownAuthorityError
		if errors.As(last, &unknown) || ctx.Err() != nil {
			break
		}
		// A Private CA certificate is refused until Just-in-Time Registration activates it: AWS IoT closes the
		// first connections.
		a.logf("connection with generation %s refused (%v); attempt %d of %d", gen, last, attempt, a.ConnectAttempts)
		if err := sleep(ctx, a.RetryDelay*time.Duration(attempt)); err != nil {
			return nil, err
		}
	}
	if last != nil {
		return nil, fmt.Errorf("connect to %s with generation %s: %w", a.Endpoint, gen, last)
	}
	topics := map[string]byte{
		jobsTopic(a.Thing, "start-next/accepted"): 1, jobsTopic(a.Thing, "start-next/rejected"): 1,
		jobsTopic(a.Thing, "+/update/accepted"): 1, jobsTopic(a.Thing, "+/update/rejected"): 1,
		jobsTopic(a.Thing, "notify-next"): 1, certificateTopic(a.Thing): 1,
	}
	if err := wait(ctx, s.c.SubscribeMultiple(topics, func(_ mqtt.Client, m mqtt.Message) { s.deliver(m) }), 15*time.Second); err != nil {
		s.close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return s, nil
}

func (s *session) deliver(m mqtt.Message) {
	select {
	case s.msgs <- message{topic: m.Topic(), payload: m.Payload()}:
	default: // a step that waits for nothing does not block the client; what it would need is sent again
	}
}

func (s *session) close() {
	if s != nil && s.c != nil {
		s.c.Disconnect(250)
	}
}

func (s *session) publish(ctx context.Context, topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := wait(ctx, s.c.Publish(topic, 1, false, b), 15*time.Second); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// await returns the first message for which match returns true, or an error at the timeout.
func (s *session) await(ctx context.Context, timeout time.Duration, match func(message) bool) (message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m := <-s.msgs:
			if match(m) {
				return m, nil
			}
		case <-t.C:
			return message{}, errTimeout
		case <-ctx.Done():
			return message{}, ctx.Err()
		}
	}
}

var errTimeout = errors.New("timed out")

// jobsRequest publishes a Jobs API request with a fresh clientToken and returns the accepted answer's payload;
// a rejected answer is a *jobsRejected error (https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html).
func (s *session) jobsRequest(ctx context.Context, op string, body map[string]any, timeout time.Duration) ([]byte, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	body["clientToken"] = token
	if err := s.publish(ctx, jobsTopic(s.thing, op), body); err != nil {
		return nil, err
	}
	m, err := s.await(ctx, timeout, func(m message) bool {
		if m.topic != jobsTopic(s.thing, op+"/accepted") && m.topic != jobsTopic(s.thing, op+"/rejected") {
			return false
		}
		var t struct {
			ClientToken string `json:"clientToken"`
		}
		return json.Unmarshal(m.payload, &t) == nil && t.ClientToken == token
	})
	if err != nil {
		return nil, fmt.Errorf("jobs %s: %w", op, err)
	}
	if strings.HasSuffix(m.topic, "/rejected") {
		var r jobsRejected
		_ = json.Unmarshal(m.payload, &r)
		return nil, &r
	}
	return m.payload, nil
}

// jobsRejected is the payload of a .../rejected answer.
type jobsRejected struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (r *jobsRejected) Error() string { return "rejected: " + r.Code + ": " + r.Message }

func jobsTopic(thing, rest string) string { return "$aws/things/" + thing + "/jobs/" + rest }

func wait(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func jsonHas(payload []byte, key string) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(payload, &m) == nil && len(m[key]) > 0 && string(m[key]) != "null"
}
