package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/pki"
)

// producer holds files made the way the producer makes them: key and CSR as create-csr writes them, and the
// certificate as the consumer's stack issues it.
type producer struct {
	key      crypto.Signer
	keyPath  string
	certPath string
	certPEM  []byte
	cert     *x509.Certificate
}

func newProducer(t *testing.T, topic, endpoint string) *producer {
	t.Helper()
	dir := t.TempDir()
	k, err := pki.GenerateKey(pki.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodePrivateKey(k)
	csrPEM, err := pki.NewCSR(k, pki.EncodeTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, id, err := pki.IssueCrossAccount(pki.IssueRequest{CSR: csr, Topic: topic, Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	p := &producer{key: k, keyPath: filepath.Join(dir, "cross-account.key"), certPath: filepath.Join(dir, id+".pem"), certPEM: certPEM}
	p.cert, _ = pki.ParseCertificate(certPEM)
	writeFile(t, p.keyPath, keyPEM)
	writeFile(t, p.certPath, certPEM)
	return p
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

type received struct {
	method, path, rawPath, query, header string
	body                                 []byte
}

// iotServer imitates the AWS IoT HTTPS publish endpoint: it requires a client certificate and trusts exactly
// pinned, the issued certificate (its issuer's key was discarded, so no chain can be built to a CA).
func iotServer(t *testing.T, pinned *x509.Certificate, status int, answer string) (*httptest.Server, chan received, string) {
	t.Helper()
	got := make(chan received, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("x-amzn-platform"), body}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(pinned) // Go accepts a leaf found in the pool as its own anchor
	srv.TLS = &tls.Config{
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  pool,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], pinned.Raw) {
				return errors.New("client certificate is not the issued one")
			}
			return nil
		},
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected in some cases
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPath := filepath.Join(t.TempDir(), "server-ca.pem")
	writeFile(t, caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	return srv, got, caPath
}

func port(t *testing.T, srv *httptest.Server) string {
	_, p, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublishHTTPS(t *testing.T) {
	// The issuer CN is the endpoint: 127.0.0.1 is in httptest's server certificate.
	p := newProducer(t, "producer1/data", "127.0.0.1")
	const okAnswer = `{"message":"OK","traceId":"0d2c7c1e-4e9a-4f8e-9b3a-5c7d2a1b0e6f"}`
	tests := []struct {
		name        string
		args        []string
		wantPath    string
		wantRawPath string
		wantBody    string
	}{
		{"from certificate", nil, "/topics/producer1/data", "/topics/producer1/data", DefaultMessage},
		{"message and topic", []string{"--message", `{"t": 21.5}` + "\n", "--topic", "producer1/a b%c"},
			"/topics/producer1/a b%c", "/topics/producer1/a%20b%25c", `{"t": 21.5}` + "\n"},
		{"explicit endpoint", []string{"--endpoint", "127.0.0.1"}, "/topics/producer1/data", "/topics/producer1/data", DefaultMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got, caPath := iotServer(t, p.cert, 200, okAnswer)
			var stdout, stderr bytes.Buffer
			args := append([]string{"--cert", p.certPath, "--key", p.keyPath, "--ca", caPath, "--port", port(t, srv)}, tt.args...)
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("run(%q) = %d, stderr %q", args, code, stderr.String())
			}
			r := <-got
			if r.method != "POST" || r.path != tt.wantPath || r.rawPath != tt.wantRawPath || r.query != "qos=1" {
				t.Errorf("request = %s %s (raw %s) ?%s, want POST %s (raw %s) ?qos=1", r.method, r.path, r.rawPath, r.query, tt.wantPath, tt.wantRawPath)
			}
			if r.header != "APN/1 partner,solution" {
				t.Errorf("x-amzn-platform = %q, want %q", r.header, "APN/1 partner,solution")
			}
			if string(r.body) != tt.wantBody {
				t.Errorf("body = %q, want %q", r.body, tt.wantBody)
			}
			if got := strings.TrimSpace(stdout.String()); got != okAnswer {
				t.Errorf("stdout = %q, want the response body %q", got, okAnswer)
			}
		})
	}
}

func TestPublishHTTPSFailures(t *testing.T) {
	p := newProducer(t, "producer1/data", "127.0.0.1")
	other := newProducer(t, "producer1/data", "127.0.0.1")

	t.Run("non-2xx", func(t *testing.T) {
		srv, _, caPath := iotServer(t, p.cert, 403, `{"message":"Forbidden"}`)
		var stdout, stderr bytes.Buffer
		code := run([]string{"--cert", p.certPath, "--key", p.keyPath, "--ca", caPath, "--port", port(t, srv)}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "403 Forbidden") || !strings.Contains(stderr.String(), `{"message":"Forbidden"}`) {
			t.Errorf("run(403) = %d, stderr %q, want 1 with status and body", code, stderr.String())
		}
	})
	t.Run("untrusted server", func(t *testing.T) {
		srv, _, _ := iotServer(t, p.cert, 200, "{}")
		var stdout, stderr bytes.Buffer
		code := run([]string{"--cert", p.certPath, "--key", p.keyPath, "--port", port(t, srv)}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "server certificate is not trusted") {
			t.Errorf("run(no --ca) = %d, stderr %q, want 1 and a trust message", code, stderr.String())
		}
	})
	t.Run("client certificate refused", func(t *testing.T) {
		srv, got, caPath := iotServer(t, p.cert, 200, "{}")
		var stdout, stderr bytes.Buffer
		code := run([]string{"--cert", other.certPath, "--key", other.keyPath, "--ca", caPath, "--port", port(t, srv)}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "TLS") {
			t.Errorf("run(other cert) = %d, stderr %q, want 1 and a TLS message", code, stderr.String())
		}
		select {
		case r := <-got:
			t.Errorf("server received %s %s from a refused client", r.method, r.path)
		default:
		}
	})
}

func TestRunErrors(t *testing.T) {
	p := newProducer(t, "producer1/data", "127.0.0.1")
	q := newProducer(t, "producer1/data", "127.0.0.1")
	noCN := filepath.Join(t.TempDir(), "nocn.pem")
	writeFile(t, noCN, selfSigned(t, p.key, pkix.Name{}, pkix.Name{CommonName: "x"}))
	noIssuer := filepath.Join(t.TempDir(), "noissuer.pem")
	writeFile(t, noIssuer, selfSigned(t, p.key, pkix.Name{CommonName: "producer1/data"}, pkix.Name{}))
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"default key missing", []string{"--cert", p.certPath}, "read private key"},
		{"key mismatch", []string{"--cert", p.certPath, "--key", q.keyPath}, "does not belong to the certificate"},
		{"not a certificate", []string{"--cert", p.keyPath, "--key", p.keyPath}, "parse certificate"},
		{"no topic", []string{"--cert", noCN, "--key", p.keyPath}, "No topic information was found in the certificate's subject common name field"},
		{"no endpoint", []string{"--cert", noIssuer, "--key", p.keyPath}, "No endpoint information was found in the certificate's issuer common name field"},
		{"wildcard topic", []string{"--cert", p.certPath, "--key", p.keyPath, "--topic", "a/#"}, "MQTT wildcard"},
		{"no client id", []string{"--cert", p.certPath, "--key", p.keyPath, "--mqtt", "--topic", "$aws/rules/r"}, "give --client-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("run(%q) = %d, stderr %q, want 1 and %q", tt.args, code, stderr.String(), tt.wantErr)
			}
		})
	}
}

// selfSigned makes a certificate for k with the given subject and issuer names.
func selfSigned(t *testing.T, k crypto.Signer, subject, issuer pkix.Name) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	parent := &x509.Certificate{Subject: issuer}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestDefaultKeyPath(t *testing.T) {
	pairDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pairDir, "ca.key.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ cert, want string }{
		{"../d9be716d.pem", "../d9be716d.key"},
		{"cert.crt", "cert.key"},
		{"dir.v1/cert", "dir.v1/cert.key"},
		{"a.b.pem", "a.b.key"},
		// device-cert's and the multi-region notebook's names.
		{"thing-mr04.cert.pem", "thing-mr04.key"},
		{"/etc/iot/thing-mr04.crt.pem", "/etc/iot/thing-mr04.key"},
		{filepath.Join(pairDir, "ca.crt.pem"), filepath.Join(pairDir, "ca.key.pem")},
	}
	for _, tt := range tests {
		if got := defaultKeyPath(tt.cert); got != tt.want {
			t.Errorf("defaultKeyPath(%q) = %q, want %q", tt.cert, got, tt.want)
		}
	}
}

func TestDefaultClientID(t *testing.T) {
	tests := []struct{ topic, want string }{
		{"producer1/data", "producer1"},
		{"plain", "plain"},
		{"/lead", ""},
		{"a b/c", ""},
		{"$aws/rules/x", ""},
	}
	for _, tt := range tests {
		if got := defaultClientID(tt.topic); got != tt.want {
			t.Errorf("defaultClientID(%q) = %q, want %q", tt.topic, got, tt.want)
		}
	}
}

func TestTopicPath(t *testing.T) {
	tests := []struct{ topic, want string }{
		{"producer1/data", "producer1/data"},
		{"a b/c?d#", "a%20b/c%3Fd%23"},
		{"x/ü", "x/%C3%BC"},
	}
	for _, tt := range tests {
		if got := topicPath(tt.topic); got != tt.want {
			t.Errorf("topicPath(%q) = %q, want %q", tt.topic, got, tt.want)
		}
	}
}
