package metrics_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/metrics/metricstest"
)

func TestLineIsEmbeddedMetricFormat(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	line, err := metrics.Line(at, metrics.Refused, 1, map[string]string{"Capability": "D", "Reason": "UntrustedIssuer"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Capability":"D","Reason":"UntrustedIssuer","Refused":1,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Capability"],["Capability","Reason"]],"Metrics":[{"Name":"Refused","Unit":"Count"}],"Namespace":"IotCert"}],"Timestamp":1700000000123}}` + "\n"
	if string(line) != want {
		t.Errorf("Line = %s, want %s", line, want)
	}
	evs, err := metricstest.Parse(line)
	if err != nil || len(evs) != 1 || evs[0].Value != 1 || evs[0].Dimensions["Reason"] != "UntrustedIssuer" {
		t.Errorf("Parse(Line) = %+v, %v", evs, err)
	}
}

func TestLineRefusesWhatIsNotInTheCatalogue(t *testing.T) {
	for name, c := range map[string]struct {
		metric string
		dims   map[string]string
	}{
		"unknown metric":      {"Issued", map[string]string{"Capability": "A"}},
		"unknown capability":  {metrics.CertificatesIssued, map[string]string{"Capability": "Z"}},
		"missing reason":      {metrics.Refused, map[string]string{"Capability": "C"}},
		"extra dimension":     {metrics.CertificatesIssued, map[string]string{"Capability": "A", "ThingName": "x"}},
		"no capability":       {metrics.VendingRegistrations, map[string]string{}},
		"expiring needs kind": {metrics.CertificatesExpiring, map[string]string{"Capability": "Ops"}},
	} {
		if line, err := metrics.Line(time.Now(), c.metric, 1, c.dims); err == nil {
			t.Errorf("%s: Line = %s, want an error", name, line)
		}
	}
}

func TestEmittersWriteOneLineEach(t *testing.T) {
	rec := metricstest.Capture(t)
	metrics.Inc(metrics.CapA, metrics.CertificatesIssued)
	metrics.Refuse(metrics.CapC, metrics.ReasonUnauthorized)
	metrics.Refuse(metrics.CapC, metrics.Reason("thing-name-from-a-request")) // dropped: not a fixed reason
	metrics.Duration(metrics.CapD, metrics.JITRLatency, 1500*time.Microsecond)
	metrics.Add(metrics.CapD, "NotAMetric", 3) // dropped
	metrics.Expiring(metrics.CertificatesExpiring7, "Device", 4)
	got := rec.Names(t)
	want := []string{"CertificatesExpiring7d Ops", "CertificatesIssued A", "JITRLatency D", "Refused C Unauthorized"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("captured %v, want %v", got, want)
	}
	if v := rec.Sum(t, metrics.JITRLatency, map[string]string{"Capability": "D"}); v != 1.5 {
		t.Errorf("JITRLatency = %v ms, want 1.5", v)
	}
	if v := rec.Sum(t, metrics.CertificatesExpiring7, map[string]string{"Kind": "Device"}); v != 4 {
		t.Errorf("CertificatesExpiring7d = %v, want 4", v)
	}
}

func TestParseRefusesMalformedLines(t *testing.T) {
	good := `{"Capability":"A","CertificatesIssued":1,"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"IotCert","Dimensions":[["Capability"]],"Metrics":[{"Name":"CertificatesIssued","Unit":"Count"}]}]}}`
	if _, err := metricstest.Parse([]byte(good)); err != nil {
		t.Fatalf("Parse(good) = %v", err)
	}
	for name, line := range map[string]string{
		"not json":           `CertificatesIssued 1`,
		"log line":           `{"level":"INFO","msg":"issued"}`,
		"no timestamp":       strings.Replace(good, `"Timestamp":1700000000000,`, ``, 1),
		"string timestamp":   strings.Replace(good, `1700000000000`, `"now"`, 1),
		"no value":           strings.Replace(good, `"CertificatesIssued":1,`, ``, 1),
		"string value":       strings.Replace(good, `"CertificatesIssued":1`, `"CertificatesIssued":"1"`, 1),
		"dimension missing":  strings.Replace(good, `"Capability":"A",`, ``, 1),
		"bad unit":           strings.Replace(good, `"Unit":"Count"`, `"Unit":"Certificates"`, 1),
		"wrong unit":         strings.Replace(good, `"Unit":"Count"`, `"Unit":"Seconds"`, 1),
		"unknown metric":     strings.ReplaceAll(good, `CertificatesIssued`, `Issued`),
		"unknown capability": strings.Replace(good, `"Capability":"A"`, `"Capability":"Z"`, 1),
		"no directives":      `{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[]}}`,
		"two objects":        good + good,
	} {
		if _, err := metricstest.Parse([]byte(line + "\n")); err == nil {
			t.Errorf("%s: Parse(%s) = nil error, want one", name, line)
		}
	}
}

// TestCatalogueEmitters: every metric of namespace IotCert names the functions that emit it, each exists, and its
// code (not its tests) names the metric's constant; every function that names a metric is listed as its emitter.
func TestCatalogueEmitters(t *testing.T) {
	consts := metricConstants(t)
	root := filepath.Join("..", "..")
	listed := map[string]bool{}
	for _, m := range metrics.Catalogue {
		if m.Namespace != metrics.Namespace {
			if len(m.Emitters) == 0 {
				t.Errorf("%s/%s names no emitter", m.Namespace, m.Name)
			}
			continue
		}
		ident, ok := consts[m.Name]
		if !ok {
			t.Errorf("metric %s has no constant in package metrics", m.Name)
			continue
		}
		if len(m.Emitters) == 0 {
			t.Errorf("metric %s names no emitter", m.Name)
		}
		for _, e := range m.Emitters {
			listed[e+" "+ident] = true
			if !sourceMentions(t, filepath.Join(root, e), call(ident)) {
				t.Errorf("metric %s: %s does not emit it (no metrics.%s in its code)", m.Name, e, ident)
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "lambdas", "*"))
	for _, d := range dirs {
		for name, ident := range consts {
			e := "lambdas/" + filepath.Base(d)
			if sourceMentions(t, d, call(ident)) && !listed[e+" "+ident] {
				t.Errorf("%s emits %s but the catalogue does not list it as an emitter", e, name)
			}
		}
	}
}

// call is what a function's code says to emit the metric whose constant is ident: Refused through Refuse, the others
// by their constant as an argument.
func call(ident string) string {
	switch ident {
	case "Refused":
		return "metrics.Refuse("
	case "ReplayApplied", "ReplayStale", "ReplayDeadLettered", "ReplicationLag":
		return "metrics.Replayed("
	}
	return "metrics." + ident
}

func metricConstants(t *testing.T) map[string]string {
	f, err := parser.ParseFile(token.NewFileSet(), "metrics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) && vs.Type == nil {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						if _, ok := metrics.Lookup(metrics.Namespace, v); ok {
							out[v] = n.Name
						}
					}
				}
			}
		}
	}
	return out
}

func sourceMentions(t *testing.T, dir, s string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(s, "(") && strings.Contains(string(b), s) ||
			strings.Contains(string(b), s+")") || strings.Contains(string(b), s+",") {
			return true
		}
	}
	return false
}

func TestReplayed(t *testing.T) {
	rec := metricstest.Capture(t)
	metrics.Replayed(metrics.CapD, "applied", false, time.Now().Add(-2*time.Second))
	metrics.Replayed(metrics.CapD, "stale", false, time.Now())
	metrics.Replayed(metrics.CapD, "skipped", false, time.Now()) // nothing: applied with nothing to do
	metrics.Replayed(metrics.CapD, "", true, time.Time{})
	metrics.Replayed(metrics.CapD, "", false, time.Time{}) // a retried failure: nothing yet
	want := "ReplayApplied D,ReplayDeadLettered D,ReplayStale D,ReplicationLag D"
	if got := strings.Join(rec.Names(t), ","); got != want {
		t.Errorf("metrics = %s, want %s", got, want)
	}
	if ms := rec.Sum(t, metrics.ReplicationLag, nil); ms < 2000 || ms > 60_000 {
		t.Errorf("ReplicationLag = %v ms, want about 2000", ms)
	}
}
