package testsvc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	mosquittoStartTimeout = 15 * time.Second
	mosquittoHint         = "install mosquitto (apt-get install mosquitto)"
)

// MosquittoOptions configures a broker started by Mosquitto.
type MosquittoOptions struct {
	// ClientCAPEM holds the PEM certificate(s) of the CA(s) whose client certificates the broker accepts. Required.
	ClientCAPEM []byte
}

// Broker is a running mosquitto broker with one mTLS listener.
type Broker struct {
	// Addr is the listener's address, "127.0.0.1:port".
	Addr string
	// ServerCAPEM is the PEM certificate of the throw-away CA that issued the broker's certificate.
	ServerCAPEM []byte
	// ServerName is a name in the broker's certificate ("localhost"; 127.0.0.1 is in it too).
	ServerName string

	proc *process
}

// Mosquitto starts a mosquitto broker for this test and stops it at t.Cleanup. Its only listener, on 127.0.0.1 and
// a free port, speaks MQTT over TLS 1.2 or later and requires a client certificate issued by a CA in
// opts.ClientCAPEM; the certificate's Common Name is the MQTT username, so client certificates need one. No ACL
// applies: every accepted client may publish and subscribe to any topic. Persistence is off. The broker's log is
// written to the test log when the test fails.
//
// It is skipped (or fails under CI=true) when mosquitto is not installed.
func Mosquitto(t testing.TB, opts MosquittoOptions) *Broker {
	t.Helper()
	bin, err := mosquittoBinary()
	if err != nil {
		Require(t, "mosquitto", mosquittoHint)
		return nil
	}
	if err := checkCAPEM(opts.ClientCAPEM); err != nil {
		t.Fatalf("testsvc: Mosquitto: ClientCAPEM: %v", err)
	}

	serverCA, err := newTestCA("testsvc mosquitto server CA")
	if err != nil {
		t.Fatalf("testsvc: Mosquitto: %v", err)
	}
	server, err := serverCA.issueServer()
	if err != nil {
		t.Fatalf("testsvc: Mosquitto: %v", err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"client-ca.pem": opts.ClientCAPEM,
		"server.pem":    server.certPEM,
		"server.key":    server.keyPEM,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatalf("testsvc: Mosquitto: %v", err)
		}
	}
	b := &Broker{ServerCAPEM: serverCA.pem, ServerName: "localhost"}

	began := time.Now()
	const attempts = 3
	for i := 1; ; i++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testsvc: Mosquitto: %v", err)
		}
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(mosquittoConfig(dir, port)), 0o600); err != nil {
			t.Fatalf("testsvc: Mosquitto: %v", err)
		}
		cmd := exec.Command(bin, "-c", conf)
		cmd.Dir = dir
		p, err := startProcess("mosquitto", cmd)
		if err != nil {
			t.Fatalf("testsvc: Mosquitto: %v", err)
		}
		b.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = waitTLS(p, b.Addr, b.tlsProbeConfig(), mosquittoStartTimeout)
		if err == nil {
			b.proc = p
			break
		}
		exitedEarly := p.exited()
		p.stop(0)
		if !exitedEarly || i == attempts {
			t.Fatalf("testsvc: start mosquitto on %s: %v\n%s", b.Addr, err, p.out)
		}
	}
	t.Logf("testsvc: mosquitto at %s started in %v", b.Addr, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		b.proc.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("testsvc: mosquitto log (%s):\n%s", b.Addr, b.proc.out)
		}
	})
	return b
}

// TLSConfig returns a client TLS configuration that presents clientCert and trusts only the broker's CA.
func (b *Broker) TLSConfig(clientCert tls.Certificate) *tls.Config {
	c := b.tlsProbeConfig()
	c.Certificates = []tls.Certificate{clientCert}
	return c
}

// URL returns the broker's address in the form MQTT clients take: "ssl://127.0.0.1:port".
func (b *Broker) URL() string { return "ssl://" + b.Addr }

// Log returns the end of the broker's log so far (connections, refusals, TLS errors).
func (b *Broker) Log() string { return b.proc.out.String() }

func (b *Broker) tlsProbeConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.ServerCAPEM)
	return &tls.Config{RootCAs: pool, ServerName: b.ServerName, MinVersion: tls.VersionTLS12}
}

// mosquittoConfig is the broker configuration for a listener on 127.0.0.1:port with the files in dir.
func mosquittoConfig(dir string, port int) string {
	var c strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&c, format+"\n", args...) }
	if os.Geteuid() == 0 {
		// As root, mosquitto switches to the mosquitto or nobody user, which cannot read our 0600 key file.
		line("user root")
	}
	line("persistence false")
	line("log_dest stderr")
	line("log_type error")
	line("log_type warning")
	line("log_type notice")
	line("log_type information")
	line("connection_messages true")
	line("listener %d 127.0.0.1", port)
	line("cafile %s", filepath.Join(dir, "client-ca.pem"))
	line("certfile %s", filepath.Join(dir, "server.pem"))
	line("keyfile %s", filepath.Join(dir, "server.key"))
	line("tls_version tlsv1.2") // the minimum: TLS 1.3 is accepted too
	line("require_certificate true")
	line("use_identity_as_username true")
	// The certificate's CN becomes the username, so certificate holders are not anonymous; everyone else is refused.
	line("allow_anonymous false")
	return c.String()
}

// waitTLS polls addr until it presents a server certificate that cfg verifies. The probe has no client certificate,
// so the broker ends the handshake (and logs an error for it): reaching certificate verification is what counts.
func waitTLS(p *process, addr string, cfg *tls.Config, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return fmt.Errorf("exited before accepting TLS: %v", p.err)
		}
		err := probeTLS(addr, cfg)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no TLS listener within %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func probeTLS(addr string, cfg *tls.Config) error {
	verified := false
	c := cfg.Clone()
	c.VerifyConnection = func(tls.ConnectionState) error {
		verified = true // called only after the server's chain verified against cfg.RootCAs
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: c}).DialContext(ctx, "tcp", addr)
	if conn != nil {
		_ = conn.Close()
	}
	if verified {
		return nil
	}
	if err == nil {
		err = errors.New("server certificate not verified")
	}
	return err
}

// checkCAPEM reports whether data holds at least one PEM certificate and nothing else.
func checkCAPEM(data []byte) error {
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(strings.TrimSpace(string(rest))) != 0 {
				return errors.New("trailing data that is not PEM")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}

// mosquittoBinary finds mosquitto on PATH or where Debian installs it (sbin is often not on a user's PATH).
func mosquittoBinary() (string, error) {
	if path, err := exec.LookPath("mosquitto"); err == nil {
		return path, nil
	}
	for _, path := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", errors.New("mosquitto not found")
}
