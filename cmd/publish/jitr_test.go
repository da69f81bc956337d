package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// pcaDevice has the Private CA fake sign a new key's CSR (CN = thing) and writes the key and the certificate
// followed by the CA chain, as device-cert does. It returns the certificate and key paths.
func pcaDevice(t *testing.T, srv *awsfake.Server, dir, thing string) (certPath, keyPath string) {
	t.Helper()
	ctx := context.Background()
	k, err := pki.GenerateKey(pki.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(k, thing)
	if err != nil {
		t.Fatal(err)
	}
	srv.PCA.SetPendingGets(0) // the certificate is read once, right after issuance
	client := acmpca.NewFromConfig(srv.Config(ctx))
	issued, err := client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(srv.PCA.CAARN()), Csr: csr,
		SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
		Validity:         &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.GetCertificate(ctx, &acmpca.GetCertificateInput{
		CertificateArn: issued.CertificateArn, CertificateAuthorityArn: aws.String(srv.PCA.CAARN()),
	})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodePrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, thing+".cert.pem"), filepath.Join(dir, thing+".key")
	writeFile(t, certPath, []byte(aws.ToString(got.Certificate)+"\n"+aws.ToString(got.CertificateChain)+"\n"))
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// jitrGate stands in front of the broker as AWS IoT does for a certificate that Just-in-Time Registration has not
// activated yet: it closes every connection, and the first one starts the "registration", which activates the
// certificate after activateAfter (never, when zero). Once active it forwards connections to the broker.
type jitrGate struct {
	ln            net.Listener
	broker        string
	activateAfter time.Duration
	refused       atomic.Int32
	active        atomic.Bool
	once          sync.Once
	wg            sync.WaitGroup
}

func newJITRGate(t *testing.T, broker string, activateAfter time.Duration) *jitrGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &jitrGate{ln: ln, broker: broker, activateAfter: activateAfter}
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(func() { ln.Close(); g.wg.Wait() })
	return g
}

func (g *jitrGate) port() string { _, p, _ := net.SplitHostPort(g.ln.Addr().String()); return p }

func (g *jitrGate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.active.Load() {
			// Read the client's first flight (the TLS ClientHello), then hang up.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 4096))
			c.Close()
			g.refused.Add(1)
			if g.activateAfter > 0 {
				g.once.Do(func() { time.AfterFunc(g.activateAfter, func() { g.active.Store(true) }) })
			}
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.forward(c)
		}()
	}
}

func (g *jitrGate) forward(c net.Conn) {
	defer c.Close()
	b, err := net.Dial("tcp", g.broker)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
}

// TestPublishMQTTThroughJITR: a device certificate from the Private CA fake, with its chain, connects to mosquitto
// configured with that CA only; the first connections are refused as AWS IoT refuses a certificate JITR has not
// activated yet, and publish reconnects until it gets through.
func TestPublishMQTTThroughJITR(t *testing.T) {
	const thing, topic = "thing-mr04", "dt/thing-mr04/hello"
	srv := awsfake.New(t)
	dir := t.TempDir()
	certPath, keyPath := pcaDevice(t, srv, dir, thing)
	b := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: srv.PCA.CACertPEM()})
	brokerCA := filepath.Join(dir, "broker-ca.pem")
	writeFile(t, brokerCA, b.ServerCAPEM)

	// A subscriber with its own Private CA certificate.
	subCert, subKey := pcaDevice(t, srv, dir, "subscriber")
	subTLS, err := tls.LoadX509KeyPair(subCert, subKey)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan mqtt.Message, 1)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("subscriber").
		SetTLSConfig(b.TLSConfig(subTLS)).SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v\n%s", tok.Error(), b.Log())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { msgs <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	gate := newJITRGate(t, b.Addr, 700*time.Millisecond)
	var stdout, stderr bytes.Buffer
	args := []string{"--mqtt", "--cert", certPath, "--key", keyPath, "--ca", brokerCA, "--endpoint", "127.0.0.1",
		"--port", gate.port(), "--topic", topic, "--message", `{"provisioned":"through ACM PCA combined with JITR"}`,
		"--timeout", "20s", "--retry-backoff", "200ms"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(--mqtt through JITR) = %d, stderr %q\nbroker log:\n%s", code, stderr.String(), b.Log())
	}
	if n := gate.refused.Load(); n < 1 {
		t.Errorf("refused connections = %d, want at least 1", n)
	}
	if got := strings.Count(stderr.String(), "refused"); got != int(gate.refused.Load()) {
		t.Errorf("stderr reports %d refusals, the gate made %d:\n%s", got, gate.refused.Load(), stderr.String())
	}
	select {
	case m := <-msgs:
		if m.Topic() != topic || !strings.Contains(string(m.Payload()), "JITR") {
			t.Errorf("received %q on %q", m.Payload(), m.Topic())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no message received\nbroker log:\n%s", b.Log())
	}
	// The client id is the thing name from the certificate's CN, as the JITR policy requires.
	if log := b.Log(); !strings.Contains(log, "as "+thing) {
		t.Errorf("broker log does not show client id %s:\n%s", thing, log)
	}
}

// TestPublishMQTTJITRTimeout: a certificate that is never activated ends with a clear message at --timeout.
func TestPublishMQTTJITRTimeout(t *testing.T) {
	srv := awsfake.New(t)
	dir := t.TempDir()
	certPath, keyPath := pcaDevice(t, srv, dir, "thing-never")
	b := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: srv.PCA.CACertPEM()})
	gate := newJITRGate(t, b.Addr, 0)
	start := time.Now()
	var stdout, stderr bytes.Buffer
	args := []string{"--mqtt", "--cert", certPath, "--key", keyPath, "--endpoint", "127.0.0.1", "--port", gate.port(),
		"--topic", "dt/thing-never/x", "--timeout", "2s", "--retry-backoff", "100ms"}
	if code := run(args, &stdout, &stderr); code != 1 {
		t.Fatalf("run = %d, want 1; stderr %q", code, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %v with --timeout 2s", d)
	}
	data, _ := os.ReadFile(certPath)
	c, _ := pki.ParseCertificate(data)
	msg := stderr.String()
	for _, want := range []string{"still refused after", "ACTIVE", pki.CertificateID(c.Raw), "--timeout"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
	if n := gate.refused.Load(); n < 3 {
		t.Errorf("refused connections = %d, want several attempts with back-off", n)
	}
}

func TestPublishPCACertificateNeedsEndpoint(t *testing.T) {
	srv := awsfake.New(t)
	certPath, keyPath := pcaDevice(t, srv, t.TempDir(), "thing-1")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--mqtt", "--cert", certPath, "--key", keyPath, "--topic", "dt/thing-1/x"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "give --endpoint") {
		t.Errorf("run without --endpoint = %d %q, want 1 and a hint", code, stderr.String())
	}
	if code := run([]string{"--mqtt", "--cert", certPath, "--retry-backoff", "0"}, &stdout, &stderr); code != 2 {
		t.Errorf("run --retry-backoff 0 = %d, want 2", code)
	}
}

func TestCertificateChain(t *testing.T) {
	srv := awsfake.New(t)
	certPath, _ := pcaDevice(t, srv, t.TempDir(), "thing-1")
	data, _ := os.ReadFile(certPath)
	chain, err := certificateChain(data)
	if err != nil || len(chain) != 2 {
		t.Fatalf("certificateChain() = %d certificates, %v; want 2", len(chain), err)
	}
	if _, err := certificateChain([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); err == nil {
		t.Error("certificateChain(garbage) error = nil")
	}
}
