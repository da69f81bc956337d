package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "crossaccount", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg     string
		wantRSA int
		curve   elliptic.Curve
		wantErr bool
	}{
		{alg: "", curve: elliptic.P256()},
		{alg: "EC_P256", curve: elliptic.P256()},
		{alg: "EC_P384", curve: elliptic.P384()},
		{alg: "RSA_2048", wantRSA: 2048},
		{alg: "RSA_1024", wantErr: true},
		{alg: "ec_p256", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := GenerateKey(tt.alg)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("GenerateKey(%q) = %T, want error", tt.alg, k)
				}
				return
			}
			if err != nil {
				t.Fatalf("GenerateKey(%q) = %v", tt.alg, err)
			}
			switch pub := k.Public().(type) {
			case *ecdsa.PublicKey:
				if pub.Curve != tt.curve {
					t.Errorf("GenerateKey(%q) curve = %s, want %v", tt.alg, pub.Curve.Params().Name, tt.curve)
				}
			case *rsa.PublicKey:
				if pub.N.BitLen() != tt.wantRSA {
					t.Errorf("GenerateKey(%q) bits = %d, want %d", tt.alg, pub.N.BitLen(), tt.wantRSA)
				}
			default:
				t.Errorf("GenerateKey(%q) = %T", tt.alg, pub)
			}
		})
	}
}

func TestEncodeParsePrivateKey(t *testing.T) {
	for _, tt := range []struct{ alg, pemType string }{
		{"EC_P256", "EC PRIVATE KEY"},
		{"EC_P384", "EC PRIVATE KEY"},
		{"RSA_2048", "RSA PRIVATE KEY"},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := GenerateKey(tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := EncodePrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(enc)
			if block == nil || block.Type != tt.pemType {
				t.Fatalf("EncodePrivateKey(%s) = %q, want PEM %q", tt.alg, firstLine(enc), tt.pemType)
			}
			got, err := ParsePrivateKey(enc)
			if err != nil {
				t.Fatalf("ParsePrivateKey(EncodePrivateKey(%s)) = %v", tt.alg, err)
			}
			if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Errorf("ParsePrivateKey(EncodePrivateKey(%s)) returned a different key", tt.alg)
			}
			// PKCS #8 form of the same key.
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
				t.Errorf("ParsePrivateKey(PKCS#8 %s) = %v", tt.alg, err)
			}
		})
	}
}

func firstLine(b []byte) string { s, _, _ := strings.Cut(string(b), "\n"); return s }

func TestParsePrivateKeyRefuses(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalPKCS8PrivateKey(p224)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM private key block"},
		{"csr", testdata(t, "cross-account.csr"), `unexpected PEM block "CERTIFICATE REQUEST"`},
		{"weak rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)}), "too weak"},
		{"ed25519", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), "not accepted"},
		{"p224", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p224DER}), "P-224 is not accepted"},
		{"encrypted pkcs8", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"encrypted legacy", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), "encrypted"},
		{"garbage", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("secret-bytes")}), "parse private key (EC PRIVATE KEY)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivateKey(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParsePrivateKey(%s) = %T, %v, want error containing %q", tt.name, k, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-bytes") {
				t.Errorf("ParsePrivateKey(%s) error leaks key bytes: %v", tt.name, err)
			}
		})
	}
}

func TestNewCSR(t *testing.T) {
	for _, tt := range []struct {
		alg  string
		want x509.SignatureAlgorithm
	}{
		{"EC_P256", x509.ECDSAWithSHA256},
		{"EC_P384", x509.ECDSAWithSHA384},
		{"RSA_2048", x509.SHA256WithRSA},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := GenerateKey(tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			cn := "a, b=c+d%2Fe" // characters that break DNs built by string concatenation
			csrPEM, err := NewCSR(k, cn)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := ParseCSR(csrPEM)
			if err != nil {
				t.Fatalf("ParseCSR(NewCSR(%s)) = %v", tt.alg, err)
			}
			if csr.SignatureAlgorithm != tt.want {
				t.Errorf("NewCSR(%s) signature = %v, want %v", tt.alg, csr.SignatureAlgorithm, tt.want)
			}
			if csr.Subject.CommonName != cn || len(csr.Subject.Names) != 1 {
				t.Errorf("NewCSR(%s) subject = %v, want CN=%q only", tt.alg, csr.Subject, cn)
			}
		})
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := NewCSR(weak, "x"); err == nil {
		t.Errorf("NewCSR(rsa 1024) = nil error, want error")
	}
}

// csrWithKey builds a CSR DER with any key type, bypassing NewCSR's checks.
func csrWithKey(t *testing.T, k crypto.Signer, subject pkix.Name) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseCSR(t *testing.T) {
	good := testdata(t, "cross-account.csr")
	block, _ := pem.Decode(good)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	tests := []struct {
		name    string
		in      []byte
		wantErr string // empty: accepted
	}{
		{"openssl csr", good, ""},
		{"der", block.Bytes, ""},
		{"legacy pem type", pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: block.Bytes}), ""},
		{"mqtt wildcard parses", testdata(t, "mqtt-wildcard.csr"), ""},
		{"weak rsa", testdata(t, "weak-rsa1024.csr"), "rsa key of 1024 bits is too weak"},
		{"bad signature", testdata(t, "bad-signature.csr"), "signature does not verify"},
		{"not a csr", testdata(t, "not-a-csr.csr"), "neither a PEM"},
		{"bad der", []byte{0x30, 0x03, 1, 2, 3}, "parse csr"},
		{"empty", nil, "empty input"},
		{"certificate pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), `PEM block is "CERTIFICATE"`},
		{"truncated pem", good[:len(good)-40], "malformed PEM"},
		{"ed25519", csrWithKey(t, edKey, pkix.Name{CommonName: "a"}), "not accepted"},
		{"p224", csrWithKey(t, p224, pkix.Name{CommonName: "a"}), "P-224 is not accepted"},
		{"too large", make([]byte, 70<<10), "more than"},
		{"sha1 signature", sha1CSR(t), "signature algorithm SHA1-RSA is not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseCSR(%s) = %v, want nil", tt.name, err)
				}
				if csr == nil {
					t.Fatalf("ParseCSR(%s) = nil csr", tt.name)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseCSR(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestCertificateID(t *testing.T) {
	// sha256("abc")
	got := CertificateID([]byte("abc"))
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got != want {
		t.Errorf("CertificateID(abc) = %s, want %s", got, want)
	}
}

func TestTopicEncoding(t *testing.T) {
	tests := []struct{ topic, cn string }{
		{"producer1/data", "producer1%2Fdata"},
		{"a/b/c", "a%2Fb%2Fc"},
		{"plain", "plain"},
		{"/lead", "%2Flead"},
		{"producer1/*", "producer1%2F*"},
	}
	for _, tt := range tests {
		if got := EncodeTopic(tt.topic); got != tt.cn {
			t.Errorf("EncodeTopic(%q) = %q, want %q", tt.topic, got, tt.cn)
		}
		if got := DecodeTopic(tt.cn); got != tt.topic {
			t.Errorf("DecodeTopic(%q) = %q, want %q", tt.cn, got, tt.topic)
		}
		if got := DecodeTopic(tt.topic); got != tt.topic {
			t.Errorf("DecodeTopic(%q) = %q, want no change", tt.topic, got)
		}
	}
}

func TestValidateTopic(t *testing.T) {
	tests := []struct {
		name, topic, wantErr string
	}{
		{"simple", "producer1/data", ""},
		{"iam wildcard", "producer1/*", ""},
		{"seven slashes", "a/b/c/d/e/f/g/h", ""},
		{"eight slashes", "a/b/c/d/e/f/g/h/i", "has 8 forward slashes: AWS IoT allows at most 7"},
		{"basic ingest prefix exempt", "$aws/rules/myrule/a/b/c/d/e/f/g/h", ""},
		{"basic ingest over", "$aws/rules/myrule/a/b/c/d/e/f/g/h/i", "has 8 forward slashes"},
		{"max bytes", strings.Repeat("a", 256), ""},
		{"too long", strings.Repeat("a", 257), "257 bytes long: AWS IoT allows at most 256"},
		{"unicode", "capteur/température", ""},
		{"empty", "", "must not be empty"},
		{"plus", "a/+/b", `topic "a/+/b" contains MQTT wildcard "+": the policy uses IAM wildcards, write "*" instead`},
		{"hash", "a/#", `contains MQTT wildcard "#"`},
		{"nul", "a\x00b", "NUL"},
		{"bad utf8", "a\xffb", "not valid UTF-8"},
		{"encoded slash", "a%2Fb", `contains "%2F"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTopic(tt.topic)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateTopic(%q) = %v, want nil", tt.topic, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateTopic(%q) = %v, want error containing %q", tt.topic, err, tt.wantErr)
			}
		})
	}
}

func TestTopicFromCSR(t *testing.T) {
	k, err := GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(der []byte) *x509.CertificateRequest {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}
	cn := func(v string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: v}
	}
	openssl, err := ParseCSR(testdata(t, "cross-account.csr"))
	if err != nil {
		t.Fatal(err)
	}
	wildcard, err := ParseCSR(testdata(t, "mqtt-wildcard.csr"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		csr     *x509.CertificateRequest
		want    string
		wantErr string
	}{
		{"openssl", openssl, "producer1/data", ""},
		{"encoded mqtt wildcard", wildcard, "", `contains MQTT wildcard "+"`},
		{"raw wildcard", parse(csrWithKey(t, k, pkix.Name{CommonName: "a%2F#"})), "", `MQTT wildcard "#"`},
		{"no cn", parse(csrWithKey(t, k, pkix.Name{Organization: []string{"o"}})), "", "no common name"},
		{"two cns", parse(csrWithKey(t, k, pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{cn("a"), cn("b")}})), "", "2 common names"},
		{"nil", nil, "", "no csr"},
		{"iam wildcard", parse(csrWithKey(t, k, pkix.Name{CommonName: "producer1%2F*"})), "producer1/*", ""},
		{"64 characters", parse(csrWithKey(t, k, pkix.Name{CommonName: strings.Repeat("x", 64)})), strings.Repeat("x", 64), ""},
		{"65 characters", parse(csrWithKey(t, k, pkix.Name{CommonName: strings.Repeat("x", 65)})), "", "X.509 allows at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TopicFromCSR(tt.csr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TopicFromCSR(%s) = %q, %v, want error containing %q", tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TopicFromCSR(%s) = %q, %v, want %q", tt.name, got, err, tt.want)
			}
		})
	}
}

func sha1CSR(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "a"}, SignatureAlgorithm: x509.SHA1WithRSA,
	}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
