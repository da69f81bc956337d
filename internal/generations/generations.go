// Package generations keeps a device's certificate and key as generations in one directory, the scheme of the host
// install of certificate rotation (internal/rotation/scripts/install.sh) written in Go:
//
//	<dir>/gen-<name>/{cert.pem,key.pem,...}   one directory per generation, files 0600, directory 0700
//	<dir>/current -> gen-<name>                the live generation
//
// A generation is written complete under a temporary name and renamed into place, and goes live by one rename of
// the current link, so a reader never sees the certificate of one generation with the key of another, and a stop at
// any point leaves one consistent live pair. Earlier generations are kept until removed.
package generations

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Well-known file names inside a generation.
const (
	CertFile  = "cert.pem"
	KeyFile   = "key.pem"
	ChainFile = "chain.pem"
	current   = "current"
	prefix    = "gen-"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Dir is a generation directory.
type Dir struct{ Path string }

// ErrNoCurrent means the directory has no live generation yet.
var ErrNoCurrent = errors.New("no current generation")

// CheckName accepts a generation name: a letter or digit, then letters, digits, _ or -, at most 64 characters.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("generation name %q is not valid: use letters, digits, _ and -, at most 64 characters", name)
	}
	return nil
}

// Current is the name of the live generation.
func (d Dir) Current() (string, error) {
	target, err := os.Readlink(filepath.Join(d.Path, current))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoCurrent
	}
	if err != nil {
		return "", fmt.Errorf("read current generation: %w", err)
	}
	name, ok := strings.CutPrefix(target, prefix)
	if !ok || CheckName(name) != nil {
		return "", fmt.Errorf("current generation link points at %q, not a generation", target)
	}
	return name, nil
}

// File is the path of a file of a generation.
func (d Dir) File(name, file string) string { return filepath.Join(d.Path, prefix+name, file) }

// Exists reports whether the generation has been written.
func (d Dir) Exists(name string) bool {
	fi, err := os.Stat(filepath.Join(d.Path, prefix+name))
	return err == nil && fi.IsDir()
}

// Read returns one file of a generation.
func (d Dir) Read(name, file string) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return os.ReadFile(d.File(name, file))
}

// Write makes a generation from files (file name → content), complete or not at all. Writing a generation that
// exists with the same files is a no-op; with other content it is an error.
func (d Dir) Write(name string, files map[string][]byte) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return fmt.Errorf("make generation directory: %w", err)
	}
	final := filepath.Join(d.Path, prefix+name)
	if d.Exists(name) {
		for f, want := range files {
			got, err := os.ReadFile(filepath.Join(final, f))
			if err != nil || string(got) != string(want) {
				return fmt.Errorf("generation %s exists with other content", name)
			}
		}
		return nil
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(d.Path, ".tmp-"+name+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("make generation %s: %w", name, err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; what is left of a failure otherwise
	for f, data := range files {
		if f != filepath.Base(f) || strings.HasPrefix(f, ".") {
			return fmt.Errorf("file name %q is not a plain name", f)
		}
		if err := writeSync(filepath.Join(tmp, f), data); err != nil {
			return err
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("install generation %s: %w", name, err)
	}
	return syncDir(d.Path)
}

// Switch makes a written generation the live one by one rename of the current link.
func (d Dir) Switch(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if !d.Exists(name) {
		return fmt.Errorf("generation %s does not exist", name)
	}
	link := filepath.Join(d.Path, current)
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(prefix+name, tmp); err != nil {
		return fmt.Errorf("link generation %s: %w", name, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("switch to generation %s: %w", name, err)
	}
	return syncDir(d.Path)
}

// Remove deletes a generation that is not the live one.
func (d Dir) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if cur, err := d.Current(); err == nil && cur == name {
		return fmt.Errorf("generation %s is the current one", name)
	}
	return os.RemoveAll(filepath.Join(d.Path, prefix+name))
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// WriteFileAtomic writes data to path by a rename of a synced temporary file (for state files beside the
// generations).
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := writeSync(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return syncDir(filepath.Dir(path))
}
