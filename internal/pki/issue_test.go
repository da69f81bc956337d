package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const testEndpoint = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"

func mustCSR(t testing.TB, topic string) *x509.CertificateRequest {
	t.Helper()
	k, err := GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewCSR(k, EncodeTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(p)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestIssueCrossAccount(t *testing.T) {
	csr := mustCSR(t, "producer1/data")
	now := time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("UTC+2", 2*3600)) // 2026-02-28T22:30Z
	wantNotBefore := time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC)
	issued := now.UTC()
	tests := []struct {
		name         string
		topic        string
		validity     time.Duration
		wantNotAfter time.Time
	}{
		{"default validity", "producer1/data", 0, issued.Add(365 * 24 * time.Hour)},
		{"30 days", "producer1/data", 30 * 24 * time.Hour, issued.AddDate(0, 0, 30)},
		{"dn special characters", `a, b=c;d "e"\\/*`, 0, issued.Add(DefaultValidity)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, id, err := IssueCrossAccount(IssueRequest{CSR: csr, Topic: tt.topic, Endpoint: testEndpoint, Validity: tt.validity, Now: now})
			if err != nil {
				t.Fatalf("IssueCrossAccount = %v", err)
			}
			cert, err := ParseCertificate(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if got := CertificateID(cert.Raw); got != id {
				t.Errorf("id = %s, want %s", id, got)
			}
			if cert.Version != 3 {
				t.Errorf("version = %d, want 3", cert.Version)
			}
			if cert.Issuer.CommonName != testEndpoint || len(cert.Issuer.Names) != 1 {
				t.Errorf("issuer = %v, want CN=%s", cert.Issuer, testEndpoint)
			}
			if cert.Subject.CommonName != tt.topic || len(cert.Subject.Names) != 1 {
				t.Errorf("subject = %v (%d attributes), want CN=%q only", cert.Subject, len(cert.Subject.Names), tt.topic)
			}
			if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Errorf("certificate public key differs from the CSR's")
			}
			if !cert.NotBefore.Equal(wantNotBefore) {
				t.Errorf("notBefore = %v, want %v", cert.NotBefore, wantNotBefore)
			}
			if !cert.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("notAfter = %v, want %v", cert.NotAfter, tt.wantNotAfter)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
				t.Errorf("serial = %v, want positive and at most 128 bits", cert.SerialNumber)
			}
			if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("signature = %v, want ECDSA-SHA256", cert.SignatureAlgorithm)
			}
			if !cert.BasicConstraintsValid || cert.IsCA {
				t.Errorf("basic constraints valid=%v ca=%v, want CA:false", cert.BasicConstraintsValid, cert.IsCA)
			}
			if cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("key usage = %v, want digitalSignature", cert.KeyUsage)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ext key usage = %v, want clientAuth", cert.ExtKeyUsage)
			}
			if len(cert.AuthorityKeyId) != 0 {
				t.Errorf("authority key id = %x, want none", cert.AuthorityKeyId)
			}
		})
	}
}

func TestIssueCrossAccountSerialsDiffer(t *testing.T) {
	csr := mustCSR(t, "producer1/data")
	seen := map[string]bool{}
	var serials []*big.Int
	for range 50 {
		p, id, err := IssueCrossAccount(IssueRequest{CSR: csr, Topic: "producer1/data", Endpoint: testEndpoint})
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("certificate id %s issued twice", id)
		}
		seen[id] = true
		c, _ := ParseCertificate(p)
		serials = append(serials, c.SerialNumber)
	}
	// 50 random 128-bit serials all below 2^120: probability 2^-400.
	sort.Slice(serials, func(i, j int) bool { return serials[i].Cmp(serials[j]) < 0 })
	if top := serials[len(serials)-1].BitLen(); top < 120 {
		t.Errorf("largest of 50 serials has %d bits, want about 128", top)
	}
	for i := 1; i < len(serials); i++ {
		if serials[i].Cmp(serials[i-1]) == 0 {
			t.Errorf("serial %v repeated", serials[i])
		}
	}
}

func TestIssueCrossAccountRefuses(t *testing.T) {
	csr := mustCSR(t, "producer1/data")
	weak, err := ParseCSR(testdata(t, "cross-account.csr"))
	if err != nil {
		t.Fatal(err)
	}
	weak.PublicKey = "not a key"
	tests := []struct {
		name    string
		req     IssueRequest
		wantErr string
	}{
		{"no csr", IssueRequest{Topic: "a", Endpoint: testEndpoint}, "no csr"},
		{"bad key", IssueRequest{CSR: weak, Topic: "a", Endpoint: testEndpoint}, "not accepted"},
		{"wildcard", IssueRequest{CSR: csr, Topic: "a/+", Endpoint: testEndpoint}, "MQTT wildcard"},
		{"long topic", IssueRequest{CSR: csr, Topic: strings.Repeat("x", 65), Endpoint: testEndpoint}, "at most 64"},
		{"no endpoint", IssueRequest{CSR: csr, Topic: "a"}, "no endpoint"},
		{"negative validity", IssueRequest{CSR: csr, Topic: "a", Endpoint: testEndpoint, Validity: -time.Hour}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := IssueCrossAccount(tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IssueCrossAccount(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

// requireOpenSSL returns the openssl path, or skips; under CI=true a missing openssl fails the test.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl not found (required under CI): %v", err)
		}
		t.Skipf("openssl not installed: %v", err)
	}
	return p
}

func runOpenSSL(t *testing.T, openssl string, args ...string) string {
	t.Helper()
	out, err := exec.Command(openssl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestOpenSSLInterop(t *testing.T) {
	openssl := requireOpenSSL(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "cross-account.key")
	csrFile := filepath.Join(dir, "cross-account.csr")

	// The seed's create-csr.sh.
	runOpenSSL(t, openssl, "ecparam", "-out", key, "-name", "prime256v1", "-genkey")
	runOpenSSL(t, openssl, "req", "-new", "-key", key, "-out", csrFile, "-subj", "/CN=producer1%2Fdata")

	t.Run("openssl csr accepted", func(t *testing.T) {
		data, _ := os.ReadFile(csrFile)
		csr, err := ParseCSR(data)
		if err != nil {
			t.Fatalf("ParseCSR(openssl csr) = %v", err)
		}
		if got, err := TopicFromCSR(csr); err != nil || got != "producer1/data" {
			t.Errorf("TopicFromCSR(openssl csr) = %q, %v, want producer1/data", got, err)
		}
	})
	t.Run("openssl ecparam key parsed", func(t *testing.T) {
		data, _ := os.ReadFile(key)
		if !bytes.Contains(data, []byte("BEGIN EC PARAMETERS")) {
			t.Fatalf("openssl ecparam output has no EC PARAMETERS block:\n%s", data)
		}
		if _, err := ParsePrivateKey(data); err != nil {
			t.Errorf("ParsePrivateKey(openssl ecparam key) = %v", err)
		}
	})
	t.Run("our csr verified by openssl", func(t *testing.T) {
		for _, alg := range []string{"EC_P256", "EC_P384", "RSA_2048"} {
			k, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewCSR(k, EncodeTopic("producer1/data"))
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, alg+".csr")
			if err := os.WriteFile(f, p, 0o600); err != nil {
				t.Fatal(err)
			}
			out := runOpenSSL(t, openssl, "req", "-in", f, "-verify", "-noout", "-subject")
			if !strings.Contains(out, "producer1%2Fdata") {
				t.Errorf("openssl req -subject (%s) = %q, want CN producer1%%2Fdata", alg, out)
			}
			// Our key file is readable by openssl too.
			kp, _ := EncodePrivateKey(k)
			kf := filepath.Join(dir, alg+".key")
			os.WriteFile(kf, kp, 0o600)
			runOpenSSL(t, openssl, "pkey", "-in", kf, "-noout")
		}
	})
	t.Run("issued certificate read by openssl", func(t *testing.T) {
		data, _ := os.ReadFile(csrFile)
		csr, err := ParseCSR(data)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
		certPEM, _, err := IssueCrossAccount(IssueRequest{CSR: csr, Topic: "producer1/data", Endpoint: testEndpoint, Validity: 10 * 24 * time.Hour, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := ParseCertificate(certPEM)
		f := filepath.Join(dir, "cert.pem")
		os.WriteFile(f, certPEM, 0o600)
		out := runOpenSSL(t, openssl, "x509", "-in", f, "-noout", "-subject", "-issuer", "-serial", "-dates", "-nameopt", "RFC2253")
		serialHex := strings.ToUpper(cert.SerialNumber.Text(16))
		if len(serialHex)%2 == 1 {
			serialHex = "0" + serialHex // openssl prints whole octets
		}
		want := []string{
			"subject=CN=producer1/data",
			"issuer=CN=" + testEndpoint,
			"serial=" + serialHex,
			"notBefore=Nov 21 00:00:00 2026 GMT",
			"notAfter=Dec  2 16:00:00 2026 GMT",
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("openssl x509 output = %q, want it to contain %q", out, w)
			}
		}
		// The private key made by openssl matches the certificate.
		text := runOpenSSL(t, openssl, "x509", "-in", f, "-noout", "-text")
		for _, w := range []string{"Version: 3", "CA:FALSE", "Digital Signature", "TLS Web Client Authentication", "ecdsa-with-SHA256"} {
			if !strings.Contains(text, w) {
				t.Errorf("openssl x509 -text lacks %q", w)
			}
		}
	})
}

// Serial numbers are encoded as a positive DER INTEGER of at most 17 octets (RFC 5280 allows 20).
func TestSerialEncoding(t *testing.T) {
	csr := mustCSR(t, "a")
	for range 20 {
		p, _, err := IssueCrossAccount(IssueRequest{CSR: csr, Topic: "a", Endpoint: testEndpoint})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := ParseCertificate(p)
		b, err := asn1.Marshal(c.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b) - 2; n > 17 {
			t.Errorf("serial %x encodes in %d octets, want at most 17", c.SerialNumber, n)
		}
	}
}
