package rotation_test

import (
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

	"github.com/iotcert/iotcert/internal/rotation"
)

// foreignCert signs csr with a CA of its own, not the trust anchor's.
func foreignCert(t testing.TB, csrPEM string) (cert, chain, serial string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "foreign CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	b, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(0xABCDEF), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, csr.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), "ABCDEF"
}

// TestHostInstallRefusals: a certificate that does not work never goes live; the old pair stays live and the step
// fails with the reason (the helper's message where the helper refused).
func TestHostInstallRefusals(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(e *env) (cert, chain, serial string)
		want    string
	}{{
		name: "certificate for another key",
		prepare: func(e *env) (string, string, string) {
			e.phase1(host, "EC_prime256v1")
			other := newHostEnv(e.t) // a CSR made with a key this host does not hold
			return e.issue(other.phase1(host, "EC_prime256v1"), 7)
		},
		want: "does not match the key",
	}, {
		name: "expired certificate",
		prepare: func(e *env) (string, string, string) {
			cert, chain, serial := e.issue(e.phase1(host, "EC_prime256v1"), 1)
			e.srv.RolesAnywhere.SetNow(func() time.Time { return time.Now().Add(48 * time.Hour) })
			return cert, chain, serial
		},
		want: "Untrusted signing certificate",
	}, {
		name: "certificate of a foreign CA",
		prepare: func(e *env) (string, string, string) {
			return foreignCert(e.t, e.phase1(host, "EC_prime256v1"))
		},
		want: "Untrusted signing certificate",
	}, {
		name: "aws_signing_helper missing",
		prepare: func(e *env) (string, string, string) {
			if err := os.Remove(filepath.Join(e.defaults.SigningHelperDir, "aws_signing_helper")); err != nil {
				e.t.Fatal(err)
			}
			return e.issue(e.phase1(host, "EC_prime256v1"), 7)
		},
		want: "aws_signing_helper not found",
	}, {
		name: "role not in the profile",
		prepare: func(e *env) (string, string, string) {
			e.role = "arn:aws:iam::123456789012:role/Other"
			return e.issue(e.phase1(host, "EC_prime256v1"), 7)
		},
		want: "is not in profile",
	}}
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newHostEnv(t)
			old, _, _ := e.rotate(host, "RSA_2048")
			cert, chain, serial := tc.prepare(e)
			res := e.phase2(host, cert, chain, serial)
			if res.ExitCode == 0 {
				t.Fatalf("phase 2 succeeded, stdout %q; want a failure", res.Stdout)
			}
			if !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("phase 2 stderr = %q, want it to contain %q", res.Stderr, tc.want)
			}
			if got := e.live(host); got != old {
				t.Errorf("live serial = %s, want the old %s", got, old)
			}
			if _, err := os.Stat(filepath.Join(e.defaults.KeyDir, host+".d", "gen-"+serial)); !os.IsNotExist(err) {
				t.Errorf("the refused generation gen-%s exists", serial)
			}
		})
	}
}

// TestHostInstallFromPlainFiles: a host of the sample's layout (plain <host>.crt and <host>.key) moves to the
// generation layout without ever showing a mixed pair.
func TestHostInstallFromPlainFiles(t *testing.T) {
	t.Parallel()
	e := newHostEnv(t)
	// The sample's phase 2 ended with two mv's: plain files.
	cert, chain, serial := e.issue(e.phase1(host, "RSA_2048"), 7)
	for _, d := range []string{e.defaults.CertDir, e.defaults.CACertDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(e.defaults.CertDir, host+".crt"), cert)
	key, _ := os.ReadFile(filepath.Join(e.defaults.KeyDir, host+"-new.key"))
	mustWrite(t, filepath.Join(e.defaults.KeyDir, host+".key"), string(key))
	mustWrite(t, filepath.Join(e.defaults.CACertDir, "ca_chain_certificate.crt"), chain)
	if got := e.live(host); got != serial {
		t.Fatalf("plain live serial = %s, want %s", got, serial)
	}
	next, _, _ := e.rotate(host, "RSA_2048")
	if got := e.live(host); got != next {
		t.Fatalf("live serial = %s, want %s", got, next)
	}
	if fi, err := os.Lstat(filepath.Join(e.defaults.CertDir, host+".crt")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s.crt is not a link through current after the install", host)
	}
	if _, err := os.Stat(filepath.Join(e.defaults.KeyDir, host+".d", "gen-files", "cert.pem")); err != nil {
		t.Errorf("the previous plain pair was not kept as a generation: %v", err)
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHostInstallStopAnywhere kills phase 2 after each of its commands in turn (bash's DEBUG trap, set through
// BASH_ENV) and checks that the host always keeps exactly one consistent live pair, the old or the new, and that
// running the install again completes it.
func TestHostInstallStopAnywhere(t *testing.T) {
	t.Parallel()
	for _, layout := range []string{"generations", "plain files", "first install"} {
		t.Run(layout, func(t *testing.T) {
			t.Parallel()
			e := newHostEnv(t)
			var old string
			switch layout {
			case "generations":
				old, _, _ = e.rotate(host, "EC_prime256v1")
			case "first install":
				old = "" // no pair yet: a stop may leave none, or the new one
			default:
				c, ch, s := e.issue(e.phase1(host, "EC_prime256v1"), 7)
				for _, d := range []string{e.defaults.CertDir, e.defaults.CACertDir} {
					_ = os.MkdirAll(d, 0o700)
				}
				mustWrite(t, filepath.Join(e.defaults.CertDir, host+".crt"), c)
				k, _ := os.ReadFile(filepath.Join(e.defaults.KeyDir, host+"-new.key"))
				mustWrite(t, filepath.Join(e.defaults.KeyDir, host+".key"), string(k))
				mustWrite(t, filepath.Join(e.defaults.CACertDir, "ca_chain_certificate.crt"), ch)
				old = s
			}
			cert, chain, serial := e.issue(e.phase1(host, "EC_prime256v1"), 7)
			snapshot := filepath.Join(t.TempDir(), "etc")
			etc := filepath.Join(e.root, "etc")
			copyTree(t, etc, snapshot)
			trap := filepath.Join(t.TempDir(), "stop.bash")
			stops := 0
			for limit := 1; ; limit++ {
				restoreTree(t, snapshot, etc)
				mustWrite(t, trap, "__n=0\ntrap '__n=$((__n+1)); if [ \"$__n\" -ge "+itoa(limit)+" ]; then kill -9 $$; fi' DEBUG\n")
				res := e.phase2(host, cert, chain, serial, "BASH_ENV="+trap)
				live := e.live(host)
				if live != old && live != serial {
					t.Fatalf("stopped after %d commands: live serial %q, want %s or %s", limit, live, old, serial)
				}
				// Once current names the new generation, the configured paths hold the new pair (also on a first
				// install, which has no old pair to fall back on).
				if cur, _ := os.Readlink(filepath.Join(e.defaults.KeyDir, host+".d", "current")); cur == "gen-"+serial && live != serial {
					t.Fatalf("stopped after %d commands, after the rename: live serial %q, want %s at the configured paths", limit, live, serial)
				}
				if res.ExitCode == 0 {
					if live != serial {
						t.Fatalf("install completed but live serial = %s, want %s", live, serial)
					}
					break
				}
				stops++
				// Running the install again (the workflow's retry) completes it; checked at every fifth stop point to
				// keep the test short.
				if limit%5 != 0 {
					continue
				}
				if res := e.phase2(host, cert, chain, serial); res.ExitCode != 0 || e.live(host) != serial {
					t.Fatalf("stopped after %d commands, rerun: exit %d, stderr %q", limit, res.ExitCode, res.Stderr)
				}
				if limit > 500 {
					t.Fatal("the install never completed")
				}
			}
			if stops < 20 {
				t.Fatalf("only %d stop points exercised, want the whole script", stops)
			}
			t.Logf("%d stop points, each leaving one consistent live pair", stops)
		})
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// copyTree copies a directory tree, keeping links as links.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case fi.IsDir():
			return os.MkdirAll(dst, fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func restoreTree(t *testing.T, snapshot, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyTree(t, snapshot, dir)
}

// TestCreateSessionChecksTheSignature runs the real helper with a certificate and a key that do not belong together
// (the install script refuses that pair before, so the fake's signature check is tested here directly): the fake
// CreateSession refuses the X.509 signature, and accepts the matching pair.
func TestCreateSessionChecksTheSignature(t *testing.T) {
	t.Parallel()
	e := newHostEnv(t)
	cert, chain, _ := e.issue(e.phase1(host, "EC_prime256v1"), 7)
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "cert.pem"), cert)
	mustWrite(t, filepath.Join(dir, "chain.pem"), chain)
	key, _ := os.ReadFile(filepath.Join(e.defaults.KeyDir, host+"-new.key"))
	mustWrite(t, filepath.Join(dir, "key.pem"), string(key))
	other := newHostEnv(t)
	other.phase1(host, "EC_prime256v1")
	otherKey, _ := os.ReadFile(filepath.Join(other.defaults.KeyDir, host+"-new.key"))
	mustWrite(t, filepath.Join(dir, "other.pem"), string(otherKey))
	run := func(keyFile string) (string, error) {
		cmd := exec.Command(filepath.Join(e.defaults.SigningHelperDir, "aws_signing_helper"), "credential-process",
			"--certificate", filepath.Join(dir, "cert.pem"), "--intermediates", filepath.Join(dir, "chain.pem"),
			"--private-key", filepath.Join(dir, keyFile), "--profile-arn", e.profile, "--role-arn", e.role,
			"--trust-anchor-arn", e.anchor)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("other.pem"); err == nil || !strings.Contains(out, "Signature does not match") {
		t.Errorf("helper with a foreign key: %v, %q; want the signature refused", err, out)
	}
	if out, err := run("key.pem"); err != nil || !strings.Contains(out, `"SessionToken"`) {
		t.Errorf("helper with the right key: %v, %q; want credentials", err, out)
	}
}

// TestHostRefusesSharedKeyDirectory: a key directory other users can write (the sample's /tmp) is refused by both
// phases before any key is made or moved, and an aws_signing_helper they can write is refused by phase 2.
func TestHostRefusesSharedKeyDirectory(t *testing.T) {
	t.Parallel()
	e := newHostEnv(t)
	shared := filepath.Join(e.root, "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	e.defaults.KeyDir = shared
	res := e.run(rotation.CSRDocument(e.defaults), map[string]string{
		rotation.ParamHostID: host, rotation.ParamKeyDir: shared, rotation.ParamKeyAlgorithm: "EC_prime256v1",
	})
	if res.ExitCode != 2 || !strings.Contains(res.Stderr, "writable by other users") {
		t.Fatalf("phase 1 in a shared directory: exit %d, stderr %q; want it refused", res.ExitCode, res.Stderr)
	}
	if entries, _ := os.ReadDir(shared); len(entries) != 0 {
		t.Fatalf("phase 1 left %v in the shared directory", entries)
	}
	// The helper, which root runs, is refused as well when other users can replace it.
	helper := filepath.Join(e.defaults.SigningHelperDir, "aws_signing_helper")
	if err := os.Chmod(helper, 0o777); err != nil {
		t.Fatal(err)
	}
	e.defaults.KeyDir = filepath.Join(e.root, "keys")
	e.phase1(host, "EC_prime256v1")
	if res := e.phase2(host, "x", "y", "AB"); res.ExitCode != 2 || !strings.Contains(res.Stderr, "writable by other users") {
		t.Fatalf("phase 2 with a writable helper: exit %d, stderr %q; want it refused", res.ExitCode, res.Stderr)
	}
	if err := os.Chmod(helper, 0o700); err != nil {
		t.Fatal(err)
	}
	e.defaults.KeyDir = shared
	mustWrite(t, filepath.Join(shared, host+"-new.key"), "planted")
	res = e.phase2(host, "x", "y", "AB")
	if res.ExitCode != 2 || !strings.Contains(res.Stderr, "writable by other users") {
		t.Fatalf("phase 2 in a shared directory: exit %d, stderr %q; want it refused", res.ExitCode, res.Stderr)
	}
}
