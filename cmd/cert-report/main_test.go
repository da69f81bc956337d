package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/awsfake"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the command's output")

// fast are the flags every end-to-end run passes: the fake answers without quotas, so the limiters are opened wide,
// and throttled requests are retried after milliseconds rather than seconds.
var fast = []string{"-list-tps", "100000", "-describe-tps", "100000", "-things-tps", "100000", "-policies-tps", "100000",
	"-thing-tps", "100000", "-max-backoff", "20ms", "-now", reportNow.Format(time.RFC3339)}

type result struct {
	stdout, stderr string
	code           int
}

func runCommand(t *testing.T, args ...string) result {
	t.Helper()
	bin, err := buildCommand()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// TestReport10000 runs the built command against 10,000 certificates: 40 pages of ListCertificates, three throttling
// answers on each API, and one certificate that another operator deletes while the report lists it. The expiring
// table is compared with testdata/expiring-30d.golden.
func TestReport10000(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	fs := estate(10000)
	load(t, srv, fs)
	deleted := fs[408] // expires within the window, so the golden table shows it is gone
	srv.IoT.DeleteWhenListed(deleted.id)
	for _, op := range []string{"ListCertificates", "DescribeCertificate", "ListPrincipalThings", "ListAttachedPolicies"} {
		srv.Inject(awsfake.ServiceIoT, op, awsfake.Fault{Status: 400, Code: "ThrottlingException", Message: "Rate exceeded", Times: 3})
	}

	start := time.Now()
	r := runCommand(t, append([]string{"-expiring", "30d", "-progress", "0"}, fast...)...)
	t.Logf("10,000 certificates, table: %s", time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("cert-report exit %d, stderr:\n%s", r.code, r.stderr)
	}
	golden(t, "expiring-30d.golden", r.stdout)
	if !strings.Contains(r.stderr, "certificate "+deleted.id+" was deleted while the report ran: skipped") {
		t.Errorf("stderr does not report the deleted certificate %s:\n%s", deleted.id, r.stderr)
	}
	if strings.Contains(r.stdout, deleted.id) {
		t.Errorf("the deleted certificate %s is in the report", deleted.id)
	}

	// Every request the fake saw, the command counted: 40 pages and one describe and two lists per certificate, plus
	// the three throttled attempts of each, retried.
	things := map[string]bool{}
	for _, f := range fs {
		if f.thing != "" && f.id != deleted.id {
			things[f.thing] = true
		}
	}
	want := map[string]int{
		"ListCertificates": 40 + 3, "DescribeCertificate": 10000 + 3,
		"ListPrincipalThings": 9999 + 3, "ListAttachedPolicies": 9999 + 3, "DescribeThing": len(things),
	}
	for op, n := range want {
		if got := srv.Calls(awsfake.ServiceIoT, op); got != n {
			t.Errorf("%s calls = %d, want %d", op, got, n)
		}
		if !strings.Contains(r.stderr, fmt.Sprintf("%s %d", op, n)) {
			t.Errorf("stderr summary does not count %s %d:\n%s", op, n, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "9999 certificates, 24 shown, 1 deleted while listing") {
		t.Errorf("summary line wrong:\n%s", r.stderr)
	}

}

// TestReportJSON checks every row of the JSON report of a 1,200-certificate estate against the fixtures: capability,
// expiry, things, policies, issuer kind, sorted by expiry.
func TestReportJSON(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	fs := estate(1200)
	load(t, srv, fs)
	r := runCommand(t, append([]string{"-format", "json", "-progress", "0"}, fast...)...)
	if r.code != 0 {
		t.Fatalf("cert-report -format json exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var rows []jsonRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("json output: %v", err)
	}
	byID := map[string]fixture{}
	for _, f := range fs {
		byID[f.id] = f
	}
	if len(rows) != len(byID) {
		t.Fatalf("json has %d rows, want %d", len(rows), len(byID))
	}
	for i, row := range rows {
		f, ok := byID[row.ID]
		if !ok {
			t.Fatalf("row %d: unknown certificate %s", i, row.ID)
		}
		if row.Capability != f.capability {
			t.Errorf("certificate %s (fixture %q, thing %q, policy %q): capability %q (%s), want %q",
				row.ID, f.cert.Status, f.thing, f.policy, row.Capability, row.AttributedBy, f.capability)
		}
		if got := row.NotAfter; got != f.notAfter.Format(time.RFC3339) {
			t.Errorf("certificate %s: notAfter %s, want %s", row.ID, got, f.notAfter.Format(time.RFC3339))
		}
		wantThings := []string{}
		if f.thing != "" {
			wantThings = []string{f.thing}
		}
		if !slices.Equal(row.Things, wantThings) {
			t.Errorf("certificate %s: things %v, want %v", row.ID, row.Things, wantThings)
		}
		wantPolicies := []string{}
		if f.policy != "" {
			wantPolicies = []string{f.policy}
		}
		if !slices.Equal(row.Policies, wantPolicies) || row.IssuerKind != f.issuerKind || row.Status != f.cert.Status {
			t.Errorf("certificate %s: policies %v, issuer kind %s, status %s, want %v, %s, %s", row.ID, row.Policies,
				row.IssuerKind, row.Status, wantPolicies, f.issuerKind, f.cert.Status)
		}
		if i > 0 && rows[i-1].NotAfter > row.NotAfter {
			t.Fatalf("rows %d and %d are not sorted by expiry: %s > %s", i-1, i, rows[i-1].NotAfter, row.NotAfter)
		}
	}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -run %s -update rewrites it):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// TestUsage: -h prints help and exits 0, bad flags exit 2 with one line naming the bad value, and an API failure
// that retries cannot cure exits 1 with the reason.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout for code 0, in stderr otherwise
	}{
		{"help", []string{"-h"}, 0, "-expiring string"},
		{"format", []string{"-format", "xml"}, 2, `-format must be table, csv or json, got "xml"`},
		{"expiring", []string{"-expiring", "soon"}, 2, `-expiring: want 30d, 2w or a duration such as 12h, got "soon"`},
		{"expiring days", []string{"-expiring", "1.5d"}, 2, `want a whole number of days or weeks`},
		{"now", []string{"-now", "yesterday"}, 2, `-now must be an RFC 3339 time`},
		{"tps", []string{"-describe-tps", "0"}, 2, `-describe-tps must be more than 0, got 0`},
		{"argument", []string{"extra"}, 2, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCommand(t, tc.args...)
			out := r.stderr
			if tc.code == 0 {
				out = r.stdout
			}
			if r.code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("cert-report %v: exit %d, output:\n%s%s\nwant exit %d with %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.out)
			}
		})
	}

	t.Run("access denied", func(t *testing.T) {
		srv := awsfake.New(t)
		srv.SetEnv(t)
		srv.Inject(awsfake.ServiceIoT, "ListCertificates", awsfake.Fault{Status: 403, Code: "AccessDeniedException", Message: "not allowed"})
		r := runCommand(t, fast...)
		if r.code != 1 || !strings.Contains(r.stderr, "list certificates") || !strings.Contains(r.stderr, "AccessDeniedException") {
			t.Errorf("exit %d, stderr:\n%s\nwant exit 1 naming ListCertificates and the error", r.code, r.stderr)
		}
	})
}

// TestFormats renders one small estate as CSV and table: same rows, same order, values that could move a terminal or
// start a spreadsheet formula defused.
func TestFormats(t *testing.T) {
	rows := []certRow{
		{ID: "b", Status: "ACTIVE", NotAfter: reportNow.Add(48 * time.Hour), Issuer: "=HYPERLINK(\"x\")\x1b[2J", IssuerKind: issuerNoCA, Basis: "no mark of a capability"},
		{ID: "a", Status: "INACTIVE", NotAfter: reportNow.Add(-25 * time.Hour), Capability: "A", Issuer: "partner CSR signer x", Policies: []string{"s-PartnerPolicy"}, Basis: "policy s-PartnerPolicy"},
	}
	rows = selectAndSort(rows, reportNow, 0)
	var csvOut, table bytes.Buffer
	if err := write(&csvOut, "csv", rows, reportNow); err != nil {
		t.Fatal(err)
	}
	if err := write(&table, "table", rows, reportNow); err != nil {
		t.Fatal(err)
	}
	wantCSV := "NOT AFTER,DAYS,STATUS,CAPABILITY,ISSUER,ID,THINGS,POLICIES,ATTRIBUTED BY\n" +
		"2026-11-29T23:00:00Z,-2,INACTIVE,A cross-account,partner CSR signer x,a,,s-PartnerPolicy,policy s-PartnerPolicy\n" +
		"2026-12-03T00:00:00Z,2,ACTIVE,,\"'=HYPERLINK(\"\"x\"\")?[2J\",b,,,no mark of a capability\n"
	if csvOut.String() != wantCSV {
		t.Errorf("csv =\n%s\nwant\n%s", csvOut.String(), wantCSV)
	}
	if strings.ContainsRune(table.String(), 0x1b) {
		t.Errorf("table carries an escape character:\n%q", table.String())
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "2026-11-29T23:00:00Z  -2") {
		t.Errorf("table =\n%s", table.String())
	}
}

// TestLimiter: at 200 a second with a burst of 1, 21 requests take at least 100 ms; the second of two waiting
// callers whose context ends returns its error.
func TestLimiter(t *testing.T) {
	l := newLimiter(200, 1)
	start := time.Now()
	for range 21 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("21 requests at 200/s took %s, want at least 100ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newLimiter(0.5, 1)
	_ = slow.Wait(context.Background())
	if err := slow.Wait(ctx); err == nil {
		t.Error("Wait with an ended context returned nil")
	}
	if err := (*limiter)(nil).Wait(context.Background()); err != nil {
		t.Errorf("nil limiter: %v", err)
	}
}

// TestQuotaBound: one million certificates, each with one thing, at AWS IoT's default quotas: 4,000 pages of
// ListCertificates at 10/s take 400 s, but a million DescribeCertificate at 10/s take 100,000 s (27.8 h), as long
// as each of the two list calls per certificate; DescribeThing at 350/s needs 2,857 s.
func TestQuotaBound(t *testing.T) {
	tps := map[string]float64{"ListCertificates": defaultListTPS, "DescribeCertificate": defaultDescribeTPS,
		"ListPrincipalThings": defaultThingsTPS, "ListAttachedPolicies": defaultPolicyTPS, "DescribeThing": defaultThingTPS}
	calls := map[string]int64{"ListCertificates": 4000, "DescribeCertificate": 1e6, "ListPrincipalThings": 1e6,
		"ListAttachedPolicies": 1e6, "DescribeThing": 1e6}
	d, op := quotaBound(calls, tps)
	if d != 100000*time.Second || op != "DescribeCertificate" {
		t.Errorf("quotaBound(1,000,000 certificates) = %s (%s), want 27h46m40s (DescribeCertificate)", d, op)
	}
	tps["DescribeCertificate"], tps["ListPrincipalThings"], tps["ListAttachedPolicies"] = 100, 100, 100
	if d, op = quotaBound(calls, tps); d != 10000*time.Second || op != "DescribeCertificate" {
		t.Errorf("quotaBound at 100 TPS = %s (%s), want 2h46m40s", d, op)
	}
}

func TestParseWithin(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "12h": 12 * time.Hour, "0d": 0} {
		if got, err := parseWithin(in); err != nil || got != want {
			t.Errorf("parseWithin(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-3d", "1.5d", "-1h", "99999999d"} {
		if got, err := parseWithin(in); err == nil {
			t.Errorf("parseWithin(%q) = %v, want an error", in, got)
		}
	}
}
