package rotation_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/rotation"
)

// The scripts' own checks (bash =~), which every value the patterns accept must also pass.
var (
	bashHostRE = regexp.MustCompile(`^(i-([A-Za-z0-9_]{8}|[A-Za-z0-9_]{17})|mi-[A-Za-z0-9_]{17})$`)
	bashPathRE = regexp.MustCompile(`^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$`)
)

func FuzzHostID(f *testing.F) {
	for _, s := range append([]string{"i-01234567", "mi-0123456789abcdef0", "i-0123456789abcdef0"}, payloads...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !rotation.ValidHostID(id) {
			return
		}
		if !bashHostRE.MatchString(id) {
			t.Fatalf("ValidHostID(%q) = true, but the scripts refuse it", id)
		}
		if strings.ContainsAny(id, " \t\n\r$`;&|<>()'\"\\/=") {
			t.Fatalf("ValidHostID(%q) = true for a value with shell or subject syntax", id)
		}
	})
}

func FuzzPath(f *testing.F) {
	for _, s := range append([]string{"/etc/pki/iamra", "/root", "/a/.b/c"}, payloads...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if rotation.CheckPath("p", p) != nil {
			return
		}
		if !bashPathRE.MatchString(p) {
			t.Fatalf("CheckPath(%q) = nil, but the scripts refuse it", p)
		}
		for _, seg := range strings.Split(p, "/")[1:] {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("CheckPath(%q) = nil with segment %q", p, seg)
			}
		}
		if strings.ContainsAny(p, " \t\n\r$`;&|<>()'\"\\*?[]{}~") {
			t.Fatalf("CheckPath(%q) = nil for a value with shell syntax", p)
		}
	})
}

func FuzzParseHostCSR(f *testing.F) {
	f.Add(csrPEM(f, "i-01234567", 2048, nil))
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")
	f.Add("noise")
	f.Fuzz(func(t *testing.T, out string) {
		pemText, csr, err := rotation.ParseHostCSR(out)
		if err != nil {
			return
		}
		if csr.CheckSignature() != nil || !strings.HasPrefix(pemText, "-----BEGIN CERTIFICATE REQUEST-----") {
			t.Fatalf("ParseHostCSR accepted a CSR without a valid signature or PEM")
		}
		_ = rotation.CheckCSRFor(csr, "i-01234567")
	})
}

func FuzzCRLToPEM(f *testing.F) {
	ca, key := testCA(f)
	f.Add(crlDER(f, ca, key, 1))
	f.Add([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x82})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := rotation.CRLToPEM(data)
		if err == nil && !strings.HasPrefix(string(out), "-----BEGIN X509 CRL-----\n") {
			t.Fatalf("CRLToPEM() = %q, want PEM", out)
		}
	})
}

func FuzzTaskErrorMessage(f *testing.F) {
	f.Add("CommandFailed", `{"errorType":"CommandFailed","errorMessage":"boom"}`)
	f.Add("States.Timeout", "")
	f.Add("", "{")
	f.Fuzz(func(t *testing.T, name, cause string) {
		m := rotation.TaskError{Error: name, Cause: cause}.Message()
		if m == "" && (name != "" || cause != "") {
			t.Fatalf("Message() of %q/%q is empty", name, cause)
		}
	})
}
