package main

import (
	"strings"
	"testing"
)

// TestCSRThingNameBound: with --csr the thing name becomes the CSR's common name, which X.509 bounds at 64
// characters; a longer (AWS IoT-valid) name is a usage error that says why and what to do, and nothing is sent.
func TestCSRThingNameBound(t *testing.T) {
	api, srv, caFile := newFakeAPI(t)
	long := strings.Repeat("d", 65)
	code, _, errOut := runCmd("--url", srv.URL+"/prod", "--ca", caFile, "--out", t.TempDir(), "--token", "good-token", "--thing", long, "--csr")
	if code != 2 || !strings.Contains(errOut, "is 65 characters: a certificate's common name holds at most 64") {
		t.Errorf("run(--csr, 65-character thing) = %d %q, want 2 with the common-name bound", code, errOut)
	}
	if !strings.Contains(errOut, "without --csr") || strings.Count(errOut, "\n") != 2 || !strings.Contains(errOut, "run 'register -h' for help") {
		t.Errorf("stderr = %q, want one line with the way out, then the help hint", errOut)
	}
	api.mu.Lock()
	sent := len(api.bodies)
	api.mu.Unlock()
	if sent != 0 {
		t.Errorf("requests sent = %d, want 0", sent)
	}
	// Without --csr AWS IoT makes the key and the certificate; the long thing name is fine there.
	if code, _, errOut := runCmd("--url", srv.URL+"/prod", "--ca", caFile, "--out", t.TempDir(), "--token", "good-token", "--thing", long); code != 0 {
		t.Errorf("run(keys mode, 65-character thing) = %d %q, want 0", code, errOut)
	}
	// 64 characters fit.
	if code, _, errOut := runCmd("--url", srv.URL+"/prod", "--ca", caFile, "--out", t.TempDir(), "--token", "good-token", "--thing", long[:64], "--csr"); code != 0 {
		t.Errorf("run(--csr, 64-character thing) = %d %q, want 0", code, errOut)
	}
}
