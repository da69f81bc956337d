package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/vending"
)

// fakeAPI answers POST /register as the vending API does, signing with a throw-away CA.
type fakeAPI struct {
	t      *testing.T
	caKey  crypto.Signer
	caCert *x509.Certificate
	mu     sync.Mutex
	bodies []string
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server, string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test IoT CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	f := &fakeAPI{t: t, caKey: k, caCert: ca}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "api-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, srv, caFile
}

func (f *fakeAPI) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(b))
	f.mu.Unlock()
	if r.URL.Path != "/prod/register" || r.Method != http.MethodPost {
		f.reply(w, 404, map[string]string{"message": "Missing Authentication Token"})
		return
	}
	if r.Header.Get("Authorization") != "DeviceToken good-token" {
		f.reply(w, 403, map[string]string{"Message": "User is not authorized to access this resource"})
		return
	}
	req, err := vending.ParseRegisterBody(b)
	if err != nil {
		f.reply(w, 400, vending.ErrorResponse{Error: err.Error()})
		return
	}
	if req.ThingName == "taken" {
		f.reply(w, 400, vending.ErrorResponse{Error: vending.MsgThingExists})
		return
	}
	var pub crypto.PublicKey
	var kp vending.KeyPair
	if req.CSR != "" {
		csr, err := pki.ParseCSR([]byte(req.CSR))
		if err != nil {
			f.reply(w, 400, vending.ErrorResponse{Error: "invalid csr: " + err.Error()})
			return
		}
		pub = csr.PublicKey
	} else {
		k, _ := pki.GenerateKey("RSA_2048")
		pub = k.Public()
		keyPEM, _ := pki.EncodePrivateKey(k)
		kp.PrivateKey = string(keyPEM)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	kp.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "AWS IoT Certificate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, f.caCert, pub, f.caKey)
	if err != nil {
		f.t.Error(err)
	}
	ca1, _ := vending.AmazonRootCA(1)
	f.reply(w, 200, vending.RegisterResponse{
		CertificateData: vending.CertificateData{PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), KeyPair: kp},
		RootCA:          ca1,
	})
}

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRegister(t *testing.T) {
	api, srv, caFile := newFakeAPI(t)
	for _, mode := range []string{"keys", "csr"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			thing := "dev-" + mode
			args := []string{"--url", srv.URL + "/prod/", "--token", "good-token", "--thing", thing, "--out", dir, "--ca", caFile}
			if mode == "csr" {
				args = append(args, "--csr")
			}
			code, out, errOut := runCmd(args...)
			if code != 0 {
				t.Fatalf("run(%q) = %d, stderr %q", args, code, errOut)
			}
			if got := strings.Count(out, "\n"); got != 3 {
				t.Errorf("stdout = %q, want the three file names", out)
			}
			cert, err := os.ReadFile(filepath.Join(dir, thing+".cert.pem"))
			if err != nil {
				t.Fatal(err)
			}
			key, err := os.ReadFile(filepath.Join(dir, thing+".private.key"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				t.Errorf("written key does not match the certificate: %v", err)
			}
			st, _ := os.Stat(filepath.Join(dir, thing+".private.key"))
			if st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
			}
			root, _ := os.ReadFile(filepath.Join(dir, thing+".root-ca.pem"))
			if !bytes.HasPrefix(root, []byte("-----BEGIN CERTIFICATE-----")) {
				t.Errorf("root CA file = %.40q, want PEM", root)
			}
			api.mu.Lock()
			last := api.bodies[len(api.bodies)-1]
			api.mu.Unlock()
			if mode == "csr" && (!strings.Contains(last, "CERTIFICATE REQUEST") || strings.Contains(last, "PRIVATE")) {
				t.Errorf("CSR mode request body = %.100q, want a CSR and no private key", last)
			}
		})
	}
}

func TestRegisterErrors(t *testing.T) {
	_, srv, caFile := newFakeAPI(t)
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"thing exists", []string{"--token", "good-token", "--thing", "taken"}, 1, "400 Bad Request: " + vending.MsgThingExists},
		{"bad token", []string{"--token", "bad", "--thing", "d1"}, 1, "403 Forbidden: User is not authorized"},
		{"no token", []string{"--thing", "d1"}, 2, "--token"},
		{"bad thing", []string{"--token", "good-token", "--thing", "a/b"}, 2, "--thing must match"},
		{"bad version", []string{"--token", "good-token", "--thing", "d1", "--version", "a b"}, 1, "400 Bad Request: version must be"},
		{"bad key type", []string{"--token", "good-token", "--thing", "d1", "--csr", "--key-type", "DSA"}, 1, "unknown key algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("VEND_TOKEN", "")
			args := append([]string{"--url", srv.URL + "/prod", "--ca", caFile, "--out", dir}, tt.args...)
			code, _, errOut := runCmd(args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantMsg) {
				t.Errorf("run(%q) = %d %q, want %d with %q", tt.args, code, errOut, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(errOut, "good-token") {
				t.Errorf("stderr %q shows the token", errOut)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written after failures: %v", entries)
	}
	// Without --ca the test server's certificate is not trusted.
	if code, _, errOut := runCmd("--url", srv.URL+"/prod", "--token", "good-token", "--thing", "d1", "--out", dir); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("run(untrusted server) = %d %q, want 1 with a certificate error", code, errOut)
	}
}

func TestTokenFromEnv(t *testing.T) {
	_, srv, caFile := newFakeAPI(t)
	t.Setenv("VEND_TOKEN", "good-token")
	if code, _, errOut := runCmd("--url", srv.URL+"/prod", "--ca", caFile, "--thing", "envdev", "--out", t.TempDir()); code != 0 {
		t.Errorf("run(VEND_TOKEN) = %d %q, want 0", code, errOut)
	}
}
