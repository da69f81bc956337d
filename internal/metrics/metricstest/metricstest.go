// Package metricstest captures and checks the embedded-metric-format lines of package metrics, in the manner of
// net/http/httptest.
package metricstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/iotcert/iotcert/internal/metrics"
)

// Event is one metric value read back from a line.
type Event struct {
	Namespace  string
	Name       string
	Unit       string
	Value      float64
	Dimensions map[string]string
	// Sets are the declared dimension sets.
	Sets [][]string
}

// units are CloudWatch's metric units
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html).
var units = map[string]bool{}

func init() {
	for _, u := range strings.Fields("Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits " +
		"Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second Gigabytes/Second " +
		"Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second Terabits/Second Count/Second None") {
		units[u] = true
	}
}

// Parse reads lines of the embedded metric format and checks each against the specification
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
// and against the catalogue: a root _aws object with an integer Timestamp and a CloudWatchMetrics array; each
// directive with a Namespace, Dimensions (arrays of at most 30 names, each a string member of the root) and Metrics
// (at most 100, each with a Name that is a numeric member of the root and a known Unit); the metric, its unit and its
// dimension sets those of the catalogue, the Capability and Reason values from their fixed sets. Any other line is an
// error naming it.
func Parse(data []byte) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		evs, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %v", n, line, err)
		}
		out = append(out, evs...)
	}
	return out, sc.Err()
}

func parseLine(line []byte) ([]Event, error) {
	var root map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value on the line")
	}
	rawAWS, ok := root["_aws"]
	if !ok {
		return nil, fmt.Errorf("no _aws member")
	}
	var meta struct {
		Timestamp         *json.Number `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	if err := json.Unmarshal(rawAWS, &meta); err != nil {
		return nil, fmt.Errorf("_aws: %v", err)
	}
	if meta.Timestamp == nil {
		return nil, fmt.Errorf("_aws.Timestamp is missing")
	}
	if ts, err := meta.Timestamp.Int64(); err != nil || ts <= 0 {
		return nil, fmt.Errorf("_aws.Timestamp %s is not milliseconds since the epoch", meta.Timestamp)
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return nil, fmt.Errorf("_aws.CloudWatchMetrics is empty")
	}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := root[name]
		return s, ok && json.Unmarshal(raw, &s) == nil && s != ""
	}
	var out []Event
	for _, d := range meta.CloudWatchMetrics {
		if d.Namespace == "" || len(d.Namespace) > 255 {
			return nil, fmt.Errorf("namespace %q", d.Namespace)
		}
		dims := map[string]string{}
		for _, set := range d.Dimensions {
			if len(set) > 30 {
				return nil, fmt.Errorf("a dimension set of %d names (at most 30)", len(set))
			}
			for _, name := range set {
				v, ok := str(name)
				if !ok {
					return nil, fmt.Errorf("dimension %s is not a non-empty string member of the root", name)
				}
				dims[name] = v
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > 100 {
			return nil, fmt.Errorf("%d metrics in one directive (1 to 100)", len(d.Metrics))
		}
		for _, m := range d.Metrics {
			if !units[m.Unit] {
				return nil, fmt.Errorf("metric %s: unit %q is not a CloudWatch unit", m.Name, m.Unit)
			}
			var num json.Number
			raw, ok := root[m.Name]
			if !ok || len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &num) != nil {
				return nil, fmt.Errorf("metric %s has no numeric value in the root", m.Name)
			}
			v, err := num.Float64()
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("metric %s: value %s", m.Name, num)
			}
			ev := Event{Namespace: d.Namespace, Name: m.Name, Unit: m.Unit, Value: v, Dimensions: dims, Sets: d.Dimensions}
			if err := checkCatalogue(ev); err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

func checkCatalogue(ev Event) error {
	m, ok := metrics.Lookup(ev.Namespace, ev.Name)
	if !ok {
		return fmt.Errorf("metric %s/%s is not in the catalogue", ev.Namespace, ev.Name)
	}
	if string(m.Unit) != ev.Unit {
		return fmt.Errorf("metric %s: unit %s, the catalogue says %s", ev.Name, ev.Unit, m.Unit)
	}
	if fmt.Sprint(m.Dimensions) != fmt.Sprint(ev.Sets) {
		return fmt.Errorf("metric %s: dimension sets %v, the catalogue says %v", ev.Name, ev.Sets, m.Dimensions)
	}
	if c, ok := ev.Dimensions[metrics.DimCapability]; ok && !oneOf(c, metrics.Capabilities) {
		return fmt.Errorf("metric %s: capability %q", ev.Name, c)
	}
	if r, ok := ev.Dimensions[metrics.DimReason]; ok && !oneOf(r, metrics.Reasons) {
		return fmt.Errorf("metric %s: reason %q is not one of the fixed set", ev.Name, r)
	}
	return nil
}

func oneOf[T ~string](v string, set []T) bool {
	for _, s := range set {
		if string(s) == v {
			return true
		}
	}
	return false
}

// Recorder holds the lines package metrics wrote while it captured them.
type Recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// Capture sends package metrics' output to a new Recorder until the test ends. Tests that capture must not run in
// parallel with other tests that emit metrics in the same package.
func Capture(t testing.TB) *Recorder {
	t.Helper()
	r := &Recorder{}
	restore := metrics.SetOutput(r)
	t.Cleanup(restore)
	return r
}

// Events parses what was captured; a malformed line fails the test.
func (r *Recorder) Events(t testing.TB) []Event {
	t.Helper()
	r.mu.Lock()
	data := append([]byte(nil), r.buf.Bytes()...)
	r.mu.Unlock()
	evs, err := Parse(data)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return evs
}

// Reset forgets what was captured.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
}

// Sum adds the values of metric name (namespace IotCert) whose dimensions include every pair of want.
func (r *Recorder) Sum(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, ev := range r.Events(t) {
		if ev.Namespace == metrics.Namespace && ev.Name == name && includes(ev.Dimensions, want) {
			sum += ev.Value
		}
	}
	return sum
}

// Names lists the distinct "name capability[ reason]" of what was captured, sorted, for failure messages and exact
// comparisons.
func (r *Recorder) Names(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, ev := range r.Events(t) {
		k := ev.Name + " " + ev.Dimensions[metrics.DimCapability]
		if rs := ev.Dimensions[metrics.DimReason]; rs != "" {
			k += " " + rs
		}
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func includes(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
