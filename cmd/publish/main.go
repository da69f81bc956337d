// Command publish sends one message to the consumer's AWS IoT account with the certificate issued by the
// cross-account certificate-based stack, as the seed's publish.py and publish.js did:
//
//	publish --cert CERT.pem [--key KEY] [--message TEXT] [--topic T] [--endpoint HOST] [--port N] [--ca FILE]
//	        [--mqtt [--client-id ID]] [--timeout D]
//
// The endpoint is the certificate's issuer common name and the topic its subject common name ("%2F" read as "/"),
// unless --endpoint or --topic override them. --key defaults to the certificate's name without ".cert.pem",
// ".crt.pem", ".pem" or ".crt", plus ".key" (thing-mr04.cert.pem takes thing-mr04.key).
//
// HTTPS (default): POST https://<endpoint>:8443/topics/<topic>?qos=1 with the message bytes as the body, verbatim,
// and the response body printed. --mqtt: MQTT 3.1.1 over TLS to <endpoint>:8883, one QoS 1 publish; the client id
// must be the one the consumer allowed (the stack's mqtt_client_id, or the thing name for a device). On port 443 the AWS IoT ALPN protocol names are sent.
// The server is verified against the system roots plus --ca.
//
// Every certificate in the --cert file is sent, so a device certificate followed by its CA chain (what device-cert
// writes) lets AWS IoT register it Just-in-Time. A certificate registered that way stays refused until the
// registration function activates it: AWS IoT closes the first connections. --mqtt therefore reconnects with
// exponential back-off (--retry-backoff, doubling up to 16 s) until the connection is accepted or --timeout ends,
// and then says what to check. The MQTT client id defaults to the certificate's subject CN when that is a valid
// client id (a thing name, as the JITR policy requires), else to the topic's first level.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/internal/pki"
)

// DefaultMessage is what the seed's first publish.py always sent.
const DefaultMessage = `{"message": "Hello, world!"}`

// apnHeader is the seed's AWS Partner Network attribution header.
const apnHeader, apnValue = "x-amzn-platform", "APN/1 partner,solution"

// Messages of the seed's clients.
const (
	msgNoCert     = "The path to the certificate is a required argument"
	msgNoEndpoint = "No endpoint information was found in the certificate's issuer common name field"
	msgNoTopic    = "No topic information was found in the certificate's subject common name field"
)

// maxResponse bounds the response body read; AWS IoT answers with a short JSON document.
const maxResponse = 1 << 20

var tool = cli.Tool{
	Name: "publish",
	Synopsis: `publish --cert CERT.pem [--key KEY] [--message TEXT] [--topic T] [--endpoint HOST] [--port N] [--ca FILE]
	[--mqtt [--client-id ID]] [--timeout D]`,
	About: `publishes one message to AWS IoT with a certificate and its private key: the certificate the cross-account
stack issued to a partner, or a device certificate (device-cert sign, the multi-region stacks), whose file may carry
the CA chain for Just-in-Time Registration. The endpoint is the certificate's issuer common name (the cross-account
stack puts the consumer's endpoint there) and the topic its subject common name, unless --endpoint or --topic override
them; a device certificate's issuer is its CA, so give --endpoint. HTTPS (default): POST
https://<endpoint>:8443/topics/<topic>?qos=1 with the message verbatim; --mqtt: one QoS 1 publish over MQTT on port
8883 with mutual TLS, reconnecting while AWS IoT registers a new certificate. A non-2xx answer or a TLS failure says
why and exits 1.`,
	Examples: []string{
		"publish --cert 0123abcd.pem --key cross-account.key",
		`publish --cert 0123abcd.pem --key cross-account.key --message '{"temperature": 21.5}'`,
		"publish --cert 0123abcd.pem --key cross-account.key --mqtt --client-id producer1",
		"publish --mqtt --cert thing-mr04.cert.pem --endpoint abc123-ats.iot.us-west-2.amazonaws.com --topic dt/thing-mr04/hello",
	},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	cert, key, message, topic, endpoint, ca, clientID string
	port                                              int
	mqtt                                              bool
	timeout, retryBackoff                             time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("publish", flag.ContinueOnError)
	var o options
	fset.StringVar(&o.cert, "cert", "", "PEM certificate issued by the consumer's stack (required)")
	fset.StringVar(&o.key, "key", "", "PEM private key (default: the certificate's name with .key for .pem, .cert.pem or .crt.pem: thing-mr04.cert.pem takes thing-mr04.key)")
	fset.StringVar(&o.message, "message", DefaultMessage, "message body, sent verbatim")
	fset.StringVar(&o.topic, "topic", "", "topic to publish to (default: the certificate's subject common name)")
	fset.StringVar(&o.endpoint, "endpoint", "", "AWS IoT data endpoint (default: the certificate's issuer common name)")
	fset.IntVar(&o.port, "port", 0, "server port (default: 8443 for HTTPS, 8883 for MQTT)")
	fset.StringVar(&o.ca, "ca", "", "PEM file of extra CA certificates to trust for the server (added to the system roots)")
	fset.BoolVar(&o.mqtt, "mqtt", false, "publish over MQTT instead of HTTPS")
	fset.StringVar(&o.clientID, "client-id", "", "MQTT client id (default: the certificate's subject CN when it is a valid client id, such as a thing name; else the topic's first level)")
	fset.DurationVar(&o.timeout, "timeout", 30*time.Second, "time allowed for the whole publish")
	fset.DurationVar(&o.retryBackoff, "retry-backoff", time.Second,
		"MQTT: first wait before reconnecting when the server closes the connection (doubles up to 16s)")
	if code, done := tool.Parse(fset, args, stdout, stderr); done {
		return code
	}
	if fset.NArg() != 0 {
		return tool.UsageError(stderr, "unexpected arguments %q", fset.Args())
	}
	if o.cert == "" {
		return tool.UsageError(stderr, msgNoCert)
	}
	if o.retryBackoff <= 0 {
		return tool.UsageError(stderr, "--retry-backoff must be positive, got %v", o.retryBackoff)
	}
	if err := publish(o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		return 1
	}
	return 0
}

// defaultKeyPath names the key that goes with a certificate file: its name without ".cert.pem", ".crt.pem", ".pem"
// or ".crt", plus ".key" (publish.py's default for <id>.pem, and device-cert's and the multi-region notebook's
// <thing>.cert.pem with <thing>.key), or <name>.key.pem when only that exists.
func defaultKeyPath(cert string) string {
	base := strings.TrimSuffix(cert, filepath.Ext(cert))
	for _, ext := range []string{".cert.pem", ".crt.pem", ".pem", ".crt"} {
		if strings.HasSuffix(cert, ext) && len(cert) > len(ext) {
			base = strings.TrimSuffix(cert, ext)
			break
		}
	}
	// The notebook's own CA files pair ca.crt.pem with ca.key.pem: take that name when only it exists.
	if _, err := os.Stat(base + ".key"); err != nil {
		if _, err := os.Stat(base + ".key.pem"); err == nil {
			return base + ".key.pem"
		}
	}
	return base + ".key"
}

func publish(o options, stdout, stderr io.Writer) error {
	if o.cert == "" {
		//lint:ignore ST1005 the seed's client message, kept verbatim
		return errors.New(msgNoCert)
	}
	if o.key == "" {
		o.key = defaultKeyPath(o.cert)
	}
	certPEM, err := os.ReadFile(o.cert)
	if err != nil {
		return fmt.Errorf("read certificate: %w", err)
	}
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", o.cert, err)
	}
	chain, err := certificateChain(certPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", o.cert, err)
	}
	keyPEM, err := os.ReadFile(o.key)
	if err != nil {
		return fmt.Errorf("read private key: %w", err)
	}
	key, err := pki.ParsePrivateKey(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", o.key, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return fmt.Errorf("the private key %s does not belong to the certificate %s", o.key, o.cert)
	}

	endpoint := o.endpoint
	if endpoint == "" {
		if endpoint = cert.Issuer.CommonName; endpoint == "" {
			//lint:ignore ST1005 the seed's client message, kept verbatim
			return errors.New(msgNoEndpoint)
		}
		if !hostRE.MatchString(endpoint) {
			// A CA's certificate (device-cert's): the issuer is a CA name, not the endpoint.
			return fmt.Errorf("the certificate's issuer %q is not an endpoint: give --endpoint "+
				"(aws iot describe-endpoint --endpoint-type iot:Data-ATS)", endpoint)
		}
	}
	topic := o.topic
	if topic == "" {
		if topic = pki.DecodeTopic(cert.Subject.CommonName); topic == "" {
			//lint:ignore ST1005 the seed's client message, kept verbatim
			return errors.New(msgNoTopic)
		}
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("topic %q contains an MQTT wildcard: a message is published to one concrete topic", topic)
	}

	roots, err := serverRoots(o.ca)
	if err != nil {
		return err
	}
	clientCert := &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		ServerName: endpoint,
		// Always offer the certificate: its issuer (a name only, the signing key was discarded) never matches the
		// CA names a server lists, so selecting by those names would send no certificate at all.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if o.mqtt {
		port := portOr(o.port, 8883)
		if port == 443 {
			tlsConf.NextProtos = []string{"x-amzn-mqtt-ca"} // AWS IoT: MQTT with client certificates on 443
		}
		clientID := o.clientID
		if clientID == "" && clientIDRE.MatchString(cert.Subject.CommonName) {
			clientID = cert.Subject.CommonName
		}
		if clientID == "" {
			clientID = defaultClientID(topic)
			if clientID == "" {
				return fmt.Errorf("cannot derive an MQTT client id from topic %q: give --client-id", topic)
			}
		}
		r := retry{backoff: o.retryBackoff, progress: stderr, certID: pki.CertificateID(cert.Raw)}
		return publishMQTT(ctx, tlsConf, net.JoinHostPort(endpoint, strconv.Itoa(port)), clientID, topic, []byte(o.message), r)
	}
	port := portOr(o.port, 8443)
	if port == 443 {
		tlsConf.NextProtos = []string{"x-amzn-http-ca"} // AWS IoT: HTTPS with client certificates on 443
	}
	return publishHTTPS(ctx, tlsConf, net.JoinHostPort(endpoint, strconv.Itoa(port)), topic, []byte(o.message), stdout)
}

func portOr(p, def int) int {
	if p == 0 {
		return def
	}
	return p
}

func publicKeysEqual(a, b any) bool {
	eq, ok := a.(interface{ Equal(x crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

var (
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,128}$`)
	hostRE     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

// defaultClientID is the topic's first level when it is a plain client id, else "".
func defaultClientID(topic string) string {
	first, _, _ := strings.Cut(topic, "/")
	if !clientIDRE.MatchString(first) {
		return ""
	}
	return first
}

func serverRoots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read --ca: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--ca %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// topicPath escapes each topic level for the URL path, keeping "/" as the separator.
func topicPath(topic string) string {
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		levels[i] = url.PathEscape(l)
	}
	return strings.Join(levels, "/")
}

func publishHTTPS(ctx context.Context, tlsConf *tls.Config, hostport, topic string, body []byte, stdout io.Writer) error {
	u := "https://" + hostport + "/topics/" + topicPath(topic) + "?qos=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set(apnHeader, apnValue)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConf}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %s", u, describeConnError(err))
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("POST %s: read response: %w", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: server answered %s: %s", u, resp.Status, strings.TrimSpace(string(respBody)))
	}
	if len(respBody) > 0 {
		stdout.Write(respBody)
		if respBody[len(respBody)-1] != '\n' {
			io.WriteString(stdout, "\n")
		}
	}
	return nil
}

// describeConnError adds a hint to TLS failures, the usual problem of a first publish.
func describeConnError(err error) string {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		verifyErr *tls.CertificateVerificationError
		opErr     *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &verifyErr):
		return fmt.Sprintf("TLS: the server certificate is not trusted (%v); give its CA with --ca", err)
	case errors.As(err, &hostErr):
		return fmt.Sprintf("TLS: the server certificate does not match the endpoint (%v); check --endpoint", err)
	case errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert from the server
		return fmt.Sprintf("TLS: the server refused the handshake (%v); is the certificate ACTIVE in AWS IoT and the key the right one?", err)
	}
	return err.Error()
}

// retry configures how publishMQTT rides out refused connections.
type retry struct {
	backoff  time.Duration // first wait; doubles up to maxBackoff
	progress io.Writer     // one line per refused attempt
	certID   string        // AWS IoT id of the client certificate, for the final message
}

const maxBackoff = 16 * time.Second

// permanent reports connection errors that waiting cannot cure: this side does not trust the server.
func permanent(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		verifyErr *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &verifyErr)
}

func publishMQTT(ctx context.Context, tlsConf *tls.Config, hostport, clientID, topic string, payload []byte, r retry) error {
	start := time.Now()
	backoff := r.backoff
	var c mqtt.Client
	for attempt := 1; ; attempt++ {
		perAttempt := 10 * time.Second
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < perAttempt {
			perAttempt = max(time.Until(dl), time.Millisecond)
		}
		opts := mqtt.NewClientOptions().
			AddBroker("ssl://" + hostport).
			SetClientID(clientID).
			SetTLSConfig(tlsConf).
			SetProtocolVersion(4).
			SetCleanSession(true).
			SetAutoReconnect(false).
			SetConnectRetry(false).
			SetConnectTimeout(perAttempt)
		c = mqtt.NewClient(opts)
		err := wait(ctx, c.Connect())
		if err == nil {
			break
		}
		c.Disconnect(0)
		if permanent(err) {
			return fmt.Errorf("MQTT connect to %s as %q: %s", hostport, clientID, describeConnError(err))
		}
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("no answer")
		}
		sleep := min(backoff, maxBackoff)
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || (ok && time.Until(dl) <= sleep) {
			return fmt.Errorf("MQTT connect to %s as %q: still refused after %d attempts in %s (last: %s). "+
				"A certificate registered Just-in-Time is refused until the registration function activates it: "+
				"check that certificate %s is ACTIVE (aws iot describe-certificate --certificate-id %s) and the "+
				"function's dead-letter queue, or allow more --timeout",
				hostport, clientID, attempt, time.Since(start).Round(time.Millisecond), describeConnError(err), r.certID, r.certID)
		}
		fmt.Fprintf(r.progress, "publish: connection %d refused (%s); retrying in %s\n", attempt, describeConnError(err), sleep)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff *= 2
	}
	defer c.Disconnect(250)
	if err := wait(ctx, c.Publish(topic, 1, false, payload)); err != nil {
		return fmt.Errorf("MQTT publish to %q: %w", topic, err)
	}
	return nil
}

// certificateChain returns the DER of every PEM certificate in data, in order: the client certificate first.
func certificateChain(data []byte) ([][]byte, error) {
	var chain [][]byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", len(chain)+1, err)
		}
		chain = append(chain, b.Bytes)
	}
	if len(chain) == 0 { // DER
		chain = [][]byte{data}
	}
	return chain, nil
}

func wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
