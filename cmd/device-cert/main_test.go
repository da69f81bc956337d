package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

func init() { waiterMinDelay = 10 * time.Millisecond }

func runTool(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"csr", "-h"}, {"sign", "-h"}} {
		code, out, errOut := runTool(args...)
		if code != 0 || errOut != "" {
			t.Errorf("run(%v) = %d, stderr %q; want 0 and no error", args, code, errOut)
		}
		for _, want := range []string{"-thing", "Example:", "device-cert csr", "device-cert sign"} {
			if !strings.Contains(out, want) {
				t.Errorf("run(%v) output lacks %q:\n%s", args, want, out)
			}
		}
	}
	_, out, _ := runTool("-h")
	// Every permission the README names, the region's source, and the own-CA mode.
	for _, want := range []string{"(default 365)", "(default \"EC_P256\")", "(default 5m0s)", DefaultTemplateARN,
		"acm-pca:GetCertificateAuthorityCertificate", "acm-pca:IssueCertificate", "acm-pca:GetCertificate on the CA",
		"the region is the CA ARN's", "-ca-cert CA.pem -ca-key CA.key", "-ca-key string"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks the default %q:\n%s", want, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "a command is required"},
		{[]string{"make"}, `unknown command "make"`},
		{[]string{"csr"}, "-thing is required"},
		{[]string{"csr", "-thing", "a/b"}, `thing name "a/b" is not valid`},
		{[]string{"csr", "-thing", "t1", "-key-algorithm", "DSA"}, `-key-algorithm "DSA"`},
		{[]string{"csr", "-thing", "t1", "extra"}, `unexpected argument "extra"`},
		{[]string{"csr", "-nope"}, "flag provided but not defined"},
		{[]string{"sign", "-csr", "x.csr"}, "-ca-arn is required"},
		{[]string{"sign", "-ca-arn", "arn:aws:s3:::bucket", "-csr", "x.csr"}, "is not a certificate authority ARN"},
		{[]string{"sign", "-ca-arn", "arn:aws:acm-pca:us-east-1:1:certificate-authority/x"}, "-csr is required"},
		{[]string{"sign", "-ca-arn", "arn:aws:acm-pca:us-east-1:1:certificate-authority/x", "-csr", "x.csr", "-days", "0"}, "-days 0"},
	}
	for _, tt := range tests {
		code, out, errOut := runTool(tt.args...)
		if code != 2 || out != "" {
			t.Errorf("run(%q) = %d, stdout %q; want 2", tt.args, code, out)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], tt.want) || lines[1] != "run 'device-cert -h' for help" {
			t.Errorf("run(%q) stderr = %q, want one line with %q and the help hint", tt.args, errOut, tt.want)
		}
	}
}

// makeCSR runs the device half and returns the key and CSR paths.
func makeCSR(t *testing.T, dir, thing, alg string) (keyPath, csrPath string) {
	t.Helper()
	code, out, errOut := runTool("csr", "-thing", thing, "-key-algorithm", alg, "-dir", dir)
	if code != 0 {
		t.Fatalf("csr = %d: %s", code, errOut)
	}
	keyPath, csrPath = filepath.Join(dir, thing+".key"), filepath.Join(dir, thing+".csr")
	if !strings.Contains(out, keyPath) || !strings.Contains(out, csrPath) {
		t.Errorf("csr output %q does not name the files", out)
	}
	return keyPath, csrPath
}

func TestCSR(t *testing.T) {
	for _, alg := range []string{pki.KeyECP256, pki.KeyECP384, pki.KeyRSA2048} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			keyPath, csrPath := makeCSR(t, dir, "thing-mr04", alg)
			st, err := os.Stat(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("key mode = %v, want 0600", st.Mode().Perm())
			}
			keyPEM, _ := os.ReadFile(keyPath)
			key, err := pki.ParsePrivateKey(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			csrPEM, _ := os.ReadFile(csrPath)
			csr, err := pki.ParseCSR(csrPEM)
			if err != nil {
				t.Fatal(err)
			}
			if csr.Subject.CommonName != "thing-mr04" || csr.Subject.String() != "CN=thing-mr04" {
				t.Errorf("CSR subject = %q, want CN=thing-mr04", csr.Subject)
			}
			if eq, _ := key.Public().(interface{ Equal(crypto.PublicKey) bool }); eq == nil || !eq.Equal(csr.PublicKey) {
				t.Error("CSR key is not the written key")
			}
			if bytes.Contains(csrPEM, []byte("PRIVATE")) {
				t.Error("CSR file holds a private key")
			}
			// Nothing is overwritten.
			code, _, errOut := runTool("csr", "-thing", "thing-mr04", "-dir", dir)
			if code != 1 || !strings.Contains(errOut, "already exists") {
				t.Errorf("second csr = %d %q, want 1 and already exists", code, errOut)
			}
			if again, _ := os.ReadFile(keyPath); !bytes.Equal(again, keyPEM) {
				t.Error("the key file changed")
			}
		})
	}
}

func openssl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		testsvc.Require(t, "openssl", "apt-get install openssl")
	}
	return p
}

func runOpenSSL(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// signEnv starts the Private CA (and IoT) fake and points the SDK environment at it.
func signEnv(t *testing.T) *awsfake.Server {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	return srv
}

func readChain(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs
}

func TestSign(t *testing.T) {
	srv := signEnv(t)
	bin := openssl(t)
	dir := t.TempDir()
	keyPath, csrPath := makeCSR(t, dir, "thing-mr04", pki.KeyECP256)
	// The first two GetCertificate calls find the issuance still in progress: the waiter polls again.
	srv.PCA.SetPendingGets(2)
	code, out, errOut := runTool("sign", "-ca-arn", srv.PCA.CAARN(), "-csr", csrPath, "-thing", "thing-mr04", "-days", "30")
	if code != 0 {
		t.Fatalf("sign = %d: %s", code, errOut)
	}
	certPath := filepath.Join(dir, "thing-mr04.cert.pem")
	if !strings.Contains(out, certPath) {
		t.Errorf("sign output %q does not name %s", out, certPath)
	}
	if n := srv.Calls(awsfake.ServicePCA, "GetCertificate"); n != 3 {
		t.Errorf("GetCertificate calls = %d, want 3 (in progress twice, then issued)", n)
	}
	chain := readChain(t, certPath)
	if len(chain) != 2 {
		t.Fatalf("certificate file holds %d certificates, want the device certificate and the CA", len(chain))
	}
	if !bytes.Equal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[1].Raw}), srv.PCA.CACertPEM()) {
		t.Error("second certificate is not the CA's")
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != "thing-mr04" {
		t.Errorf("subject CN = %q", leaf.Subject.CommonName)
	}
	if d := time.Until(leaf.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("validity ends in %v, want 30 days", d)
	}
	if !strings.Contains(out, pki.CertificateID(leaf.Raw)) {
		t.Errorf("sign output %q lacks the AWS IoT certificate id", out)
	}

	// openssl agrees: the chain verifies for client authentication, and the key matches.
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, srv.PCA.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := runOpenSSL(t, bin, "verify", "-purpose", "sslclient", "-CAfile", caPath, certPath); !strings.Contains(got, ": OK") {
		t.Errorf("openssl verify = %q", got)
	}
	certPub := runOpenSSL(t, bin, "x509", "-in", certPath, "-noout", "-pubkey")
	keyPub := runOpenSSL(t, bin, "pkey", "-in", keyPath, "-pubout")
	if certPub != keyPub {
		t.Errorf("openssl: certificate key %q != device key %q", certPub, keyPub)
	}
	runOpenSSL(t, bin, "req", "-in", csrPath, "-noout", "-verify")

	// The same CSR again (a retry): the same certificate, no second issuance.
	again := filepath.Join(dir, "again.pem")
	if code, _, errOut := runTool("sign", "-ca-arn", srv.PCA.CAARN(), "-csr", csrPath, "-out", again); code != 0 {
		t.Fatalf("second sign = %d: %s", code, errOut)
	}
	if got := readChain(t, again)[0]; !got.Equal(leaf) {
		t.Error("signing the same CSR twice gave two certificates")
	}
	if n := srv.PCA.Issued(); n != 1 {
		t.Errorf("Private CA issued %d certificates, want 1", n)
	}
	// The certificate file is never overwritten.
	if code, _, errOut := runTool("sign", "-ca-arn", srv.PCA.CAARN(), "-csr", csrPath); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("sign onto an existing file = %d %q, want 1 and already exists", code, errOut)
	}

	// AWS IoT, with the Private CA registered and auto-registration on, registers the certificate from this file
	// under the CA: what Just-in-Time Registration needs.
	ctx := context.Background()
	client := iot.NewFromConfig(srv.Config(ctx))
	reg, err := client.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(string(srv.PCA.CACertPEM())), CertificateMode: iottypes.CertificateModeSniOnly,
		SetAsActive: true, AllowAutoRegistration: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(certPath)
	ev, err := srv.IoT.AutoRegister(data)
	if err != nil {
		t.Fatalf("AutoRegister(device certificate file) error = %v", err)
	}
	if ev.CACertificateID != aws.ToString(reg.CertificateId) || ev.CertificateID != pki.CertificateID(leaf.Raw) {
		t.Errorf("registration = %+v, want under CA %s", ev, aws.ToString(reg.CertificateId))
	}
}

func TestSignOpenSSLCSR(t *testing.T) {
	srv := signEnv(t)
	srv.PCA.SetKeyAlgorithm("EC_prime256v1") // -signing-algorithm auto picks SHA256WITHECDSA
	bin := openssl(t)
	dir := t.TempDir()
	csrPath := filepath.Join(dir, "ossl.csr")
	runOpenSSL(t, bin, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", filepath.Join(dir, "ossl.key"),
		"-subj", "/CN=thing-ossl", "-out", csrPath)
	if code, _, errOut := runTool("sign", "-ca-arn", srv.PCA.CAARN(), "-csr", csrPath); code != 0 {
		t.Fatalf("sign(openssl CSR) = %d: %s", code, errOut)
	}
	if chain := readChain(t, filepath.Join(dir, "ossl.cert.pem")); chain[0].SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm = %v, want ECDSA-SHA256", chain[0].SignatureAlgorithm)
	}
}

func TestSignRefuses(t *testing.T) {
	srv := signEnv(t)
	bin := openssl(t)
	dir := t.TempDir()
	_, csrPath := makeCSR(t, dir, "thing-a", pki.KeyECP256)
	badCN := filepath.Join(dir, "bad.csr")
	runOpenSSL(t, bin, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "bad.key"), "-subj", "/CN=bad*name", "-out", badCN)
	weak := filepath.Join(dir, "weak.csr")
	runOpenSSL(t, bin, "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", filepath.Join(dir, "weak.key"),
		"-subj", "/CN=weak", "-out", weak)
	// Two CNs (x509 shows one, AWS IoT's provisioning may choose the other) and an attribute besides the CN.
	twoCN := filepath.Join(dir, "twocn.csr")
	runOpenSSL(t, bin, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "twocn.key"), "-subj", "/CN=thing-a/CN=admin", "-out", twoCN)
	withOrg := filepath.Join(dir, "org.csr")
	runOpenSSL(t, bin, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "org.key"), "-subj", "/O=Operators/CN=thing-o", "-out", withOrg)
	tampered := filepath.Join(dir, "tampered.csr")
	csrPEM, _ := os.ReadFile(csrPath)
	b, _ := pem.Decode(csrPEM)
	der := bytes.Clone(b.Bytes)
	i := bytes.Index(der, []byte("thing-a"))
	der[i+6] = 'b' // thing-b: the signature no longer verifies
	if err := os.WriteFile(tampered, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"other thing", []string{"-csr", csrPath, "-thing", "thing-b"}, `is for thing "thing-a", not "thing-b"`},
		{"bad CN", []string{"-csr", badCN}, "subject CN"},
		{"weak key", []string{"-csr", weak}, "too weak"},
		{"two CNs", []string{"-csr", twoCN}, "has 2 CN attributes"},
		{"two CNs, thing given", []string{"-csr", twoCN, "-thing", "thing-a"}, "has 2 CN attributes"},
		{"other attribute", []string{"-csr", withOrg}, "attributes besides the CN"},
		{"tampered", []string{"-csr", tampered}, "signature does not verify"},
		{"missing", []string{"-csr", filepath.Join(dir, "nope.csr")}, "read CSR"},
		{"unknown CA", []string{"-csr", csrPath, "-ca-arn", "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/nope"}, "ResourceNotFoundException"},
	}
	for _, tt := range tests {
		args := append([]string{"sign", "-ca-arn", srv.PCA.CAARN()}, tt.args...)
		code, _, errOut := runTool(args...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: run = %d %q, want 1 and %q", tt.name, code, errOut, tt.want)
		}
	}
	if n := srv.Calls(awsfake.ServicePCA, "IssueCertificate"); n != 0 {
		t.Errorf("IssueCertificate calls = %d, want 0", n)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.cert.pem")); len(m) != 0 {
		t.Errorf("certificate files written: %v", m)
	}
}

func TestIdempotencyToken(t *testing.T) {
	a, b := IdempotencyToken([]byte("csr-a")), IdempotencyToken([]byte("csr-b"))
	if len(a) != 36 || a == b || a != IdempotencyToken([]byte("csr-a")) {
		t.Errorf("IdempotencyToken = %q, %q: want 36 characters, stable per CSR, different across CSRs", a, b)
	}
}

// The CA's region comes from its ARN, whatever AWS_REGION says: the CA lives there.
func TestSignRegionFromCAARN(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	cfg, err := caConfig(context.Background(), "arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/11223344-1234-1122-2233-112233445566")
	if err != nil || cfg.Region != "us-west-2" {
		t.Errorf("caConfig() region = %q, %v; want us-west-2", cfg.Region, err)
	}
	for _, bad := range []string{"arn:aws:acm-pca::1:certificate-authority/x", "arn:aws:iot:us-west-2:1:certificate-authority/x",
		"arn:aws:acm-pca:us-west-2:1:certificate-authority/", "certificate-authority/x"} {
		if r := caRegion(bad); r != "" {
			t.Errorf("caRegion(%q) = %q, want none", bad, r)
		}
	}
}

// In the operator's-own-CA mode (ca_certificate_file), sign uses the CA's certificate and key files, offline: the
// certificate verifies with openssl against that CA for client authentication and holds the device's key.
func TestSignWithCAFiles(t *testing.T) {
	bin := openssl(t)
	dir := t.TempDir()
	caKey, caCert := filepath.Join(dir, "ca.key.pem"), filepath.Join(dir, "ca.crt.pem")
	runOpenSSL(t, bin, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", caCert,
		"-days", "3650", "-subj", "/C=DE/O=AWS/OU=IoT/CN=Multi Region CA", "-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign")
	keyPath, csrPath := makeCSR(t, dir, "thing-mr05", pki.KeyECP256)
	code, out, errOut := runTool("sign", "-ca-cert", caCert, "-ca-key", caKey, "-csr", csrPath, "-thing", "thing-mr05", "-days", "30")
	if code != 0 {
		t.Fatalf("sign with CA files = %d: %s", code, errOut)
	}
	certPath := filepath.Join(dir, "thing-mr05.cert.pem")
	if !strings.Contains(out, certPath) {
		t.Errorf("sign output %q does not name %s", out, certPath)
	}
	chain := readChain(t, certPath)
	if len(chain) != 2 || chain[0].Subject.CommonName != "thing-mr05" || chain[1].Subject.CommonName != "Multi Region CA" {
		t.Fatalf("certificate file = %d certificates, want the device's (CN thing-mr05) and the CA's", len(chain))
	}
	if got := runOpenSSL(t, bin, "verify", "-purpose", "sslclient", "-CAfile", caCert, certPath); !strings.Contains(got, ": OK") {
		t.Errorf("openssl verify = %q", got)
	}
	if certPub, keyPub := runOpenSSL(t, bin, "x509", "-in", certPath, "-noout", "-pubkey"), runOpenSSL(t, bin, "pkey", "-in", keyPath, "-pubout"); certPub != keyPub {
		t.Error("the certificate does not hold the device's key")
	}
	// Refusals: a CA key that is not the certificate's, both modes at once, one file alone, a validity beyond the CA's.
	otherKey := filepath.Join(dir, "other.key")
	runOpenSSL(t, bin, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", otherKey)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-ca-cert", caCert, "-ca-key", otherKey, "-out", filepath.Join(dir, "x1.pem")}, 1, "is not the key of the CA certificate"},
		{[]string{"-ca-cert", caCert, "-ca-key", caKey, "-ca-arn", "arn:aws:acm-pca:us-west-2:1:certificate-authority/x"}, 2, "not both"},
		{[]string{"-ca-cert", caCert}, 2, "-ca-cert and -ca-key go together"},
		{[]string{"-ca-cert", caCert, "-ca-key", caKey, "-days", "36500", "-out", filepath.Join(dir, "x2.pem")}, 1, "would outlive the CA certificate"},
		{[]string{"-ca-cert", certPath, "-ca-key", keyPath, "-out", filepath.Join(dir, "x3.pem")}, 1, "is not a CA certificate"},
	} {
		code, _, errOut := runTool(append([]string{"sign", "-csr", csrPath}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("sign %v = %d %q, want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	for _, f := range []string{"x1.pem", "x2.pem", "x3.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was written by a refused sign", f)
		}
	}
}

// The issued certificate is checked like the CSR: its subject must be the CN alone (JITR refuses anything else).
func TestCheckIssuedSubject(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "thing-a"}}, devKey)
	csr, _ := x509.ParseCertificateRequest(csrDER)
	chain := func(subject pkix.Name) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, devKey.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	}
	if err := checkIssued(chain(pkix.Name{CommonName: "thing-a"}), csr); err != nil {
		t.Errorf("CN alone: %v", err)
	}
	if err := checkIssued(chain(pkix.Name{CommonName: "thing-a", Organization: []string{"Ops"}}), csr); err == nil ||
		!strings.Contains(err.Error(), "attributes besides the CN") {
		t.Errorf("CN and O: %v, want refused", err)
	}
}
