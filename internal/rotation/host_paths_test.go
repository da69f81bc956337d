package rotation_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/rotation"
)

// otherUID is a local user other than root, as on a shared host.
const otherUID = 1000

func mustMkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // the umask does not apply to chmod
		t.Fatal(err)
	}
}

func mustChown(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
}

// TestHostPathAttacks plays a local user who can write one of the directories the install writes, or who owns the
// aws_signing_helper root runs or a directory above it. Every case is refused before anything is written, and the
// root-only file a planted link points at is never touched. The tests run as root, as the SSM Agent runs the scripts.
func TestHostPathAttacks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacks give files to another user (chown)")
	}
	t.Parallel()
	const secret = "root only\n"
	// plant puts <dir>/<host>-new.crt as a link to a root-only file and returns that file.
	plant := func(t *testing.T, e *env, dir string) string {
		victim := filepath.Join(e.root, "root-only")
		mustWrite(t, victim, secret)
		if err := os.Symlink(victim, filepath.Join(dir, host+"-new.crt")); err != nil {
			t.Fatal(err)
		}
		return victim
	}
	cases := []struct {
		name string
		// prepare sets the attack up after phase 1 and returns the root-only file it aims at ("" for none).
		prepare func(t *testing.T, e *env) string
		want    string // "" = the install succeeds
	}{{
		name: "certificate directory writable by others, <host>-new.crt a link to a root-only file",
		prepare: func(t *testing.T, e *env) string {
			mustMkdir(t, e.defaults.CertDir, 0o777)
			return plant(t, e, e.defaults.CertDir)
		},
		want: "writable by other users",
	}, {
		name: "certificate directory sticky and world-writable, as /tmp",
		prepare: func(t *testing.T, e *env) string {
			mustMkdir(t, e.defaults.CertDir, 0o1777)
			return plant(t, e, e.defaults.CertDir)
		},
		want: "writable by other users or sticky",
	}, {
		name: "CA directory owned by another user",
		prepare: func(t *testing.T, e *env) string {
			mustMkdir(t, e.defaults.CACertDir, 0o755)
			mustChown(t, e.defaults.CACertDir)
			return ""
		},
		want: "owned by uid 1000",
	}, {
		name: "a directory above the certificate directory writable by others",
		prepare: func(t *testing.T, e *env) string {
			mustMkdir(t, e.defaults.CertDir, 0o700)
			mustMkdir(t, filepath.Dir(e.defaults.CertDir), 0o777)
			return plant(t, e, e.defaults.CertDir)
		},
		want: "writable by other users",
	}, {
		name: "link planted in a safe certificate directory is replaced, not followed",
		prepare: func(t *testing.T, e *env) string {
			mustMkdir(t, e.defaults.CertDir, 0o700)
			return plant(t, e, e.defaults.CertDir)
		},
	}, {
		name: "aws_signing_helper and its directory owned by another user, mode 0755",
		prepare: func(t *testing.T, e *env) string {
			helper := filepath.Join(e.defaults.SigningHelperDir, "aws_signing_helper")
			for _, p := range []string{e.defaults.SigningHelperDir, helper} {
				if err := os.Chmod(p, 0o755); err != nil {
					t.Fatal(err)
				}
				mustChown(t, p)
			}
			return ""
		},
		want: "owned by uid 1000",
	}, {
		name: "a directory above aws_signing_helper owned by another user",
		prepare: func(t *testing.T, e *env) string {
			up := filepath.Dir(e.defaults.SigningHelperDir)
			if err := os.Chmod(up, 0o755); err != nil {
				t.Fatal(err)
			}
			mustChown(t, up)
			return ""
		},
		want: "owned by uid 1000",
	}, {
		name: "aws_signing_helper a link to another user's program",
		prepare: func(t *testing.T, e *env) string {
			helper := filepath.Join(e.defaults.SigningHelperDir, "aws_signing_helper")
			theirs := filepath.Join(e.root, "theirs")
			mustMkdir(t, theirs, 0o755)
			if err := os.Rename(helper, filepath.Join(theirs, "aws_signing_helper")); err != nil {
				t.Fatal(err)
			}
			mustChown(t, filepath.Join(theirs, "aws_signing_helper"))
			if err := os.Symlink(filepath.Join(theirs, "aws_signing_helper"), helper); err != nil {
				t.Fatal(err)
			}
			return ""
		},
		want: "owned by uid 1000",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newHostEnv(t)
			cert, chain, serial := e.issue(e.phase1(host, "EC_prime256v1"), 7)
			victim := tc.prepare(t, e)
			res := e.phase2(host, cert, chain, serial)
			if victim != "" {
				if got, err := os.ReadFile(victim); err != nil || string(got) != secret {
					t.Errorf("the root-only file now holds %q (%v), want it untouched", got, err)
				}
			}
			if tc.want == "" {
				if res.ExitCode != 0 || e.live(host) != serial {
					t.Fatalf("phase 2: exit %d, stderr %q; want certificate %s live", res.ExitCode, res.Stderr, serial)
				}
				return
			}
			if res.ExitCode != 2 || !strings.Contains(res.Stderr, tc.want) {
				t.Fatalf("phase 2: exit %d, stderr %q; want it refused with %q", res.ExitCode, res.Stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(e.defaults.KeyDir, host+".d", "gen-"+serial)); !os.IsNotExist(err) {
				t.Errorf("the refused install made generation gen-%s", serial)
			}
		})
	}
}

// TestHostKeyDirectoryAncestors: phase 1 refuses a key directory below a directory other users can write or own,
// before any key is made, and the functions refuse the system's shared temporary directories outright.
func TestHostKeyDirectoryAncestors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacks give files to another user (chown)")
	}
	t.Parallel()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, up string)
		want    string
	}{
		{"writable by others", func(t *testing.T, up string) { mustMkdir(t, up, 0o777) }, "writable by other users"},
		{"owned by another user", func(t *testing.T, up string) { mustMkdir(t, up, 0o755); mustChown(t, up) }, "owned by uid 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newHostEnv(t)
			up := filepath.Join(e.root, "shared")
			tc.prepare(t, up)
			keyDir := filepath.Join(up, "keys")
			e.defaults.KeyDir = keyDir
			res := e.run(rotation.CSRDocument(e.defaults), map[string]string{
				rotation.ParamHostID: host, rotation.ParamKeyDir: keyDir, rotation.ParamKeyAlgorithm: "EC_prime256v1",
			})
			if res.ExitCode != 2 || !strings.Contains(res.Stderr, tc.want) {
				t.Fatalf("phase 1: exit %d, stderr %q; want it refused with %q", res.ExitCode, res.Stderr, tc.want)
			}
			if _, err := os.Stat(keyDir); !os.IsNotExist(err) {
				t.Errorf("phase 1 made %s below an unsafe directory", keyDir)
			}
		})
	}
}
