package rotation_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// helperVersion is the IAM Roles Anywhere credential helper the host scripts are tested with.
const helperVersion = "v1.4.0"

var helperBuild = struct {
	once sync.Once
	path string
	err  error
}{}

// signingHelper returns the path of the real aws_signing_helper, built once per test binary (with CGO, as its
// PKCS#11 support needs) into the user's cache directory, outside the repository.
func signingHelper(t testing.TB) string {
	t.Helper()
	helperBuild.once.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			helperBuild.err = err
			return
		}
		dir := filepath.Join(cache, "iotcert-test", "rolesanywhere-credential-helper-"+helperVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH)
		bin := filepath.Join(dir, "rolesanywhere-credential-helper")
		if _, err := os.Stat(bin); err == nil {
			helperBuild.path = bin
			return
		}
		cmd := exec.Command("go", "install", "github.com/aws/rolesanywhere-credential-helper@"+helperVersion)
		cmd.Dir = os.TempDir() // outside the module: go.mod is not touched
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			helperBuild.err = fmt.Errorf("go install rolesanywhere-credential-helper@%s: %v\n%s", helperVersion, err, out)
			return
		}
		helperBuild.path = bin
	})
	if helperBuild.err != nil {
		testsvc.Require(t, "aws_signing_helper ("+helperBuild.err.Error()+")",
			"needs the Go module proxy and a C compiler (apt-get install gcc)")
	}
	return helperBuild.path
}

func requireOpenSSL(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		testsvc.Require(t, "openssl", "apt-get install openssl")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		testsvc.Require(t, "bash", "apt-get install bash")
	}
}

// hostRoot is a fresh directory standing for a host's file system. The host scripts refuse a directory with any
// ancestor other users can write (so the system temporary directory, which is world-writable and sticky, cannot hold
// it), nor may a segment of its path start with '.' (so the user's cache directory cannot either): it lives in
// iotcert-test-hosts in the user's home directory instead, and is removed after the test.
func hostRoot(t testing.TB) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(home, "iotcert-test-hosts")
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp(base, "host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	return root
}

// env is a host: the fake (Private CA and Roles Anywhere), the real helper behind a wrapper that points it at the
// fake, and a temporary directory standing for the host's file system.
type env struct {
	t        testing.TB
	srv      *awsfake.Server
	pca      *acmpca.Client
	root     string // the host's directories live under it
	hostEnv  []string
	profile  string
	role     string
	anchor   string
	defaults rotation.DocumentDefaults
}

const testRole = "arn:aws:iam::123456789012:role/IAMRA-Role-us-east-1"

// newEnv is a host whose fake is also the process's AWS environment (SDK clients a test loads from the environment
// reach it); such a test cannot run in parallel with others.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := newHostEnv(t)
	e.srv.SetEnv(t)
	return e
}

// newHostEnv is a host that leaves the process's environment alone (its SDK client is configured explicitly, the
// host's commands get their own environment), so tests using only it may run in parallel.
func newHostEnv(t testing.TB) *env {
	t.Helper()
	requireOpenSSL(t)
	helper := signingHelper(t)
	srv := awsfake.New(t)
	srv.PCA.SetPendingGets(0)
	root := hostRoot(t)
	helperDir := filepath.Join(root, "opt", "iamra")
	if err := os.MkdirAll(helperDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The host's aws_signing_helper is the real one, pointed at the fake's CreateSession.
	wrapper := "#!/bin/sh\nsub=\"$1\"\nshift\nexec " + helper + " \"$sub\" --endpoint " + srv.URL() + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(helperDir, "aws_signing_helper"), []byte(wrapper), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config(context.Background())
	cfg.Retryer = fastRetryer
	e := &env{
		t: t, srv: srv, pca: acmpca.NewFromConfig(cfg), root: root,
		hostEnv:  []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + root, "LC_ALL=C"},
		profile:  srv.RolesAnywhere.AddProfile(testRole),
		role:     testRole,
		anchor:   srv.RolesAnywhere.AddTrustAnchor(srv.PCA.CACertPEM()),
		defaults: rotation.DocumentDefaults{CertDir: filepath.Join(root, "etc", "pki", "certs"), KeyDir: filepath.Join(root, "etc", "pki", "iamra"), CACertDir: filepath.Join(root, "etc", "pki", "ca"), SigningHelperDir: helperDir},
	}
	return e
}

func (e *env) run(doc rotation.Document, params map[string]string, extraEnv ...string) rotation.RunResult {
	e.t.Helper()
	res, err := rotation.RunOnHost(context.Background(), doc, params, e.root, append(append([]string{}, e.hostEnv...), extraEnv...))
	if err != nil {
		e.t.Fatalf("RunOnHost() error = %v", err)
	}
	return res
}

// phase1 runs the CSR document and returns the CSR it printed.
func (e *env) phase1(host, alg string) string {
	e.t.Helper()
	res := e.run(rotation.CSRDocument(e.defaults), map[string]string{
		rotation.ParamHostID: host, rotation.ParamKeyDir: e.defaults.KeyDir, rotation.ParamKeyAlgorithm: alg,
	})
	if res.ExitCode != 0 {
		e.t.Fatalf("phase 1 exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	return res.Stdout
}

// issue has the fake Private CA sign csr through the real SDK, as the workflow does, and returns certificate, chain
// and serial.
func (e *env) issue(csr string, days int64) (string, string, string) {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.pca.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(e.srv.PCA.CAARN()), Csr: []byte(csr),
		SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa, TemplateArn: aws.String(rotation.DefaultTemplateARN),
		Validity: &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(days)},
	})
	if err != nil {
		e.t.Fatalf("IssueCertificate() error = %v", err)
	}
	got, err := e.pca.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(e.srv.PCA.CAARN()), CertificateArn: out.CertificateArn})
	if err != nil {
		e.t.Fatalf("GetCertificate() error = %v", err)
	}
	cert := mustCert(e.t, *got.Certificate)
	return *got.Certificate + "\n", *got.CertificateChain + "\n", rotation.SerialHex(cert)
}

func (e *env) installParams(host, cert, chain, serial string) map[string]string {
	return map[string]string{
		rotation.ParamHostID: host, rotation.ParamCertDir: e.defaults.CertDir, rotation.ParamKeyDir: e.defaults.KeyDir,
		rotation.ParamCACertDir: e.defaults.CACertDir, rotation.ParamSigningHelperDir: e.defaults.SigningHelperDir,
		rotation.ParamCertificate: base64.StdEncoding.EncodeToString([]byte(cert)),
		rotation.ParamChain:       base64.StdEncoding.EncodeToString([]byte(chain)),
		rotation.ParamSerial:      serial, rotation.ParamProfileARN: e.profile, rotation.ParamRoleARN: e.role,
		rotation.ParamTrustAnchorARN: e.anchor,
	}
}

func (e *env) phase2(host, cert, chain, serial string, extraEnv ...string) rotation.RunResult {
	e.t.Helper()
	return e.run(rotation.InstallDocument(e.defaults), e.installParams(host, cert, chain, serial), extraEnv...)
}

// rotate runs both phases and the issuance between them; the install must succeed.
func (e *env) rotate(host, alg string) (serial, cert, chain string) {
	e.t.Helper()
	cert, chain, serial = e.issue(e.phase1(host, alg), 7)
	if res := e.phase2(host, cert, chain, serial); res.ExitCode != 0 {
		e.t.Fatalf("phase 2 exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	return serial, cert, chain
}

// live reads the live pair through its links and checks that the certificate holds the key's public key; it returns
// the certificate's serial ("" when there is no live pair).
func (e *env) live(host string) string {
	e.t.Helper()
	certPEM, errC := os.ReadFile(filepath.Join(e.defaults.CertDir, host+".crt"))
	keyPEM, errK := os.ReadFile(filepath.Join(e.defaults.KeyDir, host+".key"))
	if os.IsNotExist(errC) && os.IsNotExist(errK) {
		return ""
	}
	if errC != nil || errK != nil {
		e.t.Fatalf("live pair of %s: certificate %v, key %v", host, errC, errK)
	}
	cert := mustCert(e.t, string(certPEM))
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		e.t.Fatalf("live key of %s is not PEM", host)
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		e.t.Fatalf("live key of %s: %v", host, err)
	}
	pub := key.(crypto.Signer).Public()
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		e.t.Fatalf("live pair of %s: certificate %s does not hold the live key's public key", host, rotation.SerialHex(cert))
	}
	if _, err := os.Stat(filepath.Join(e.defaults.CACertDir, "ca_chain_certificate.crt")); err != nil {
		e.t.Fatalf("live chain of %s: %v", host, err)
	}
	return rotation.SerialHex(cert)
}

func mustCert(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM certificate in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const host = "i-0123456789abcdef0"

func TestHostRotation(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RSA_2048", "EC_prime256v1"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			e := newHostEnv(t)
			csr := e.phase1(host, alg)
			if strings.Contains(csr, "PRIVATE KEY") {
				t.Fatal("phase 1 printed the private key")
			}
			_, parsed, err := rotation.ParseHostCSR(csr)
			if err != nil {
				t.Fatalf("ParseHostCSR() error = %v", err)
			}
			if err := rotation.CheckCSRFor(parsed, host); err != nil {
				t.Errorf("CheckCSRFor() = %v, want nil", err)
			}
			st, err := os.Stat(filepath.Join(e.defaults.KeyDir, host+"-new.key"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o400 {
				t.Errorf("new key mode = %v, want 0400", st.Mode().Perm())
			}
			if dst, _ := os.Stat(e.defaults.KeyDir); dst.Mode().Perm() != 0o700 {
				t.Errorf("key directory mode = %v, want 0700 (made root-only)", dst.Mode().Perm())
			}

			cert, chain, serial := e.issue(csr, 7)
			res := e.phase2(host, cert, chain, serial)
			if res.ExitCode != 0 {
				t.Fatalf("phase 2 exit %d, stderr %q", res.ExitCode, res.Stderr)
			}
			if got := e.live(host); got != serial {
				t.Fatalf("live serial = %s, want %s", got, serial)
			}
			sessions := e.srv.RolesAnywhere.Sessions()
			if len(sessions) != 1 || sessions[0].Serial != serial || sessions[0].Subject != host {
				t.Fatalf("CreateSession calls = %+v, want one with serial %s", sessions, serial)
			}
			for _, gone := range []string{filepath.Join(e.defaults.KeyDir, host+"-new.key"), filepath.Join(e.defaults.CertDir, host+"-new.crt")} {
				if _, err := os.Lstat(gone); !os.IsNotExist(err) {
					t.Errorf("%s still exists after install", gone)
				}
			}

			// Two more rotations: the live pair follows, the previous generation is kept, older ones go.
			s2, _, _ := e.rotate(host, alg)
			s3, cert3, chain3 := e.rotate(host, alg)
			if got := e.live(host); got != s3 {
				t.Fatalf("live serial = %s, want %s", got, s3)
			}
			gens, _ := filepath.Glob(filepath.Join(e.defaults.KeyDir, host+".d", "gen-*"))
			want := []string{filepath.Join(e.defaults.KeyDir, host+".d", "gen-"+s2), filepath.Join(e.defaults.KeyDir, host+".d", "gen-"+s3)}
			if fmt.Sprint(sortStrings(gens)) != fmt.Sprint(sortStrings(want)) {
				t.Errorf("generations = %v, want %v (current and previous)", gens, want)
			}

			// The same install sent again (a retried step) changes nothing.
			if res := e.phase2(host, cert3, chain3, s3); res.ExitCode != 0 || !strings.Contains(res.Stdout, "already live") {
				t.Errorf("repeated install: exit %d, stdout %q, want 0 and already live", res.ExitCode, res.Stdout)
			}
		})
	}
}

func sortStrings(s []string) []string {
	out := append([]string{}, s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
