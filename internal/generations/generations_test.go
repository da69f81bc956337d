package generations

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSwitchRemove(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "certs")}
	if _, err := d.Current(); !errors.Is(err, ErrNoCurrent) {
		t.Fatalf("Current() of an empty directory error = %v, want ErrNoCurrent", err)
	}
	one := map[string][]byte{CertFile: []byte("c1"), KeyFile: []byte("k1")}
	if err := d.Write("one", one); err != nil {
		t.Fatal(err)
	}
	if err := d.Write("one", one); err != nil {
		t.Fatalf("Write() of the same generation again error = %v, want nil", err)
	}
	if err := d.Write("one", map[string][]byte{CertFile: []byte("other")}); err == nil {
		t.Fatal("Write() of an existing generation with other content succeeded")
	}
	if err := d.Switch("one"); err != nil {
		t.Fatal(err)
	}
	if err := d.Write("two", map[string][]byte{CertFile: []byte("c2"), KeyFile: []byte("k2")}); err != nil {
		t.Fatal(err)
	}
	if cur, _ := d.Current(); cur != "one" {
		t.Fatalf("Current() after writing two = %q, want one (writing is not switching)", cur)
	}
	if err := d.Switch("two"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(d.Path, "current", KeyFile))
	if err != nil || string(got) != "k2" {
		t.Fatalf("current/key.pem = %q, %v; want k2", got, err)
	}
	fi, _ := os.Stat(d.File("two", KeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := d.Remove("two"); err == nil {
		t.Fatal("Remove() of the current generation succeeded")
	}
	if err := d.Remove("one"); err != nil || d.Exists("one") {
		t.Fatalf("Remove(one) = %v, exists %v", err, d.Exists("one"))
	}
	if err := d.Switch("one"); err == nil {
		t.Fatal("Switch() to a removed generation succeeded")
	}
	entries, _ := os.ReadDir(d.Path)
	for _, e := range entries {
		if e.Name() != "current" && e.Name() != "gen-two" {
			t.Errorf("left in the directory: %s", e.Name())
		}
	}
}

func TestNames(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "current x", string(make([]byte, 65))} {
		if err := d.Write(bad, nil); err == nil {
			t.Errorf("Write(%q) succeeded", bad)
		}
	}
	if err := d.Write("ok", map[string][]byte{"../evil": nil}); err == nil {
		t.Error("Write() with a file name that leaves the generation succeeded")
	}
	if err := os.Symlink("/etc", filepath.Join(d.Path, "current")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Current(); err == nil {
		t.Error("Current() accepted a link to something else")
	}
}
