// Package metrics publishes the app's CloudWatch metrics in the embedded metric format: one JSON object per event,
// written as one line on standard output, which CloudWatch Logs turns into metrics without an API call from the
// function (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
// Lambda sends standard output to the function's log group and CloudWatch Logs extracts the metrics from lines that
// follow the specification; a line is written synchronously, so no buffered metric is lost when an invocation ends
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Lambda.html).
// Lambda's JSON log format does not re-encode a line that is already JSON
// (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html).
//
// The metric names, units and dimensions are a fixed catalogue (Catalogue): the dashboard of the operations stack is
// built from it and its tests check that every widget names a metric some function emits.
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Namespace holds every metric the functions emit.
const Namespace = "IotCert"

// Dimension names.
const (
	// DimCapability is the capability that emitted the metric (A to F, Ops).
	DimCapability = "Capability"
	// DimReason is why a request was refused (Refused only), one of Reasons.
	DimReason = "Reason"
	// DimKind tells device from CA certificates (CertificatesExpiring*).
	DimKind = "Kind"
)

// Capability is the value of the Capability dimension.
type Capability string

// The capabilities of the app.
const (
	CapA   Capability = "A"   // cross-account signing
	CapB   Capability = "B"   // per-thing stacks
	CapC   Capability = "C"   // certificate vending
	CapD   Capability = "D"   // multi-region JITR and registry replay
	CapE   Capability = "E"   // host certificate rotation
	CapF   Capability = "F"   // device certificate rotation
	CapOps Capability = "Ops" // the operations stack
)

// Capabilities lists every value of the Capability dimension.
var Capabilities = []Capability{CapA, CapB, CapC, CapD, CapE, CapF, CapOps}

// Reason is the value of the Reason dimension of Refused: a fixed set, so a refusal never turns outside input (a
// thing name, a topic) into a metric dimension an attacker could multiply.
type Reason string

// The refusal reasons.
const (
	ReasonMalformed       Reason = "Malformed"       // a request or event that does not parse
	ReasonInvalidCSR      Reason = "InvalidCSR"      // a CSR with a bad signature, weak key or wrong subject
	ReasonUnauthorized    Reason = "Unauthorized"    // a missing, unknown or wrong token
	ReasonUntrustedIssuer Reason = "UntrustedIssuer" // a certificate not issued by our CA
	ReasonInvalidName     Reason = "InvalidName"     // a thing or host name outside the allowed pattern
	ReasonValidity        Reason = "Validity"        // a certificate outside its validity period
	ReasonRevoked         Reason = "Revoked"         // a revoked certificate or CRL entry
	ReasonConflict        Reason = "Conflict"        // a name or certificate already owned by another device
	ReasonLimit           Reason = "Limit"           // a rate or size limit
	// ReasonInvalidCertificate is a certificate that is not acceptable itself: a weak key, a CA certificate, key usages.
	ReasonInvalidCertificate Reason = "InvalidCertificate"
)

// Reasons lists every value of the Reason dimension.
var Reasons = []Reason{ReasonMalformed, ReasonInvalidCSR, ReasonUnauthorized, ReasonUntrustedIssuer, ReasonInvalidName,
	ReasonValidity, ReasonRevoked, ReasonConflict, ReasonLimit, ReasonInvalidCertificate}

// Unit is a CloudWatch metric unit.
type Unit string

// The units the catalogue uses.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
)

// Metric names emitted by the functions (namespace IotCert).
const (
	CertificatesIssued    = "CertificatesIssued"
	Refused               = "Refused"
	RotationSucceeded     = "RotationSucceeded"
	RotationFailed        = "RotationFailed"
	ReplayApplied         = "ReplayApplied"
	ReplayStale           = "ReplayStale"
	ReplayDeadLettered    = "ReplayDeadLettered"
	ReplicationLag        = "ReplicationLag"
	VendingRegistrations  = "VendingRegistrations"
	JITRLatency           = "JITRLatency"
	CertificatesExpiring  = "CertificatesExpiring30d"
	CertificatesExpiring7 = "CertificatesExpiring7d"
)

// Metric is one entry of the catalogue.
type Metric struct {
	Namespace string
	Name      string
	Unit      Unit
	// Dimensions are the dimension sets the metric is published with.
	Dimensions [][]string
	// Emitters name what publishes the metric: lambdas/<name> for our functions (a test checks each one's code names
	// the metric), or the AWS service or state machine that does.
	Emitters []string
	// Doc says what one data point means.
	Doc string
}

var capOnly = [][]string{{DimCapability}}

// Catalogue is every metric the dashboard may show: ours (namespace IotCert, emitted through this package), the
// rotation workflow's and the reconciler's (published before this package existed, kept for their alarms), and the
// AWS services' own.
var Catalogue = []Metric{
	{Namespace, CertificatesIssued, Count, capOnly,
		[]string{"lambdas/certsigner", "lambdas/thingcert", "lambdas/vendregister", "lambdas/jitr", "lambdas/rotationstep", "internal/devrot"},
		"one certificate issued or registered and activated"},
	{Namespace, Refused, Count, [][]string{{DimCapability}, {DimCapability, DimReason}},
		[]string{"lambdas/certsigner", "lambdas/vendauth", "lambdas/vendregister", "lambdas/jitr", "lambdas/rotationstep", "lambdas/crlprocessor", "internal/devrot"},
		"one request, event or certificate refused, with the reason"},
	{Namespace, RotationSucceeded, Count, capOnly, []string{"lambdas/rotationstep", "internal/devrot"},
		"one host certificate rotated and recorded (E), or one device rotation confirmed by the new certificate (F)"},
	{Namespace, RotationFailed, Count, capOnly, []string{"lambdas/rotationstep", "internal/devrot"},
		"one host rotation that failed (E), or one device rotation aborted with the old certificate kept (F)"},
	{Namespace, ReplayApplied, Count, capOnly, []string{"lambdas/thingcrud", "lambdas/thinggroupcrud", "lambdas/thingtypecrud"},
		"one registry event applied in a replica region"},
	{Namespace, ReplayStale, Count, capOnly, []string{"lambdas/thingcrud", "lambdas/thinggroupcrud", "lambdas/thingtypecrud"},
		"one registry event skipped because the replica already holds a newer state"},
	{Namespace, ReplayDeadLettered, Count, capOnly, []string{"lambdas/thingcrud", "lambdas/thinggroupcrud", "lambdas/thingtypecrud"},
		"one registry event the replay state machine sends to the dead-letter queue without retry (an invalid event)"},
	{Namespace, ReplicationLag, Milliseconds, capOnly, []string{"lambdas/thingcrud", "lambdas/thinggroupcrud", "lambdas/thingtypecrud"},
		"from a registry event in the primary region to its replay in a replica"},
	{Namespace, VendingRegistrations, Count, capOnly, []string{"lambdas/vendregister"}, "one device registered through the vending API"},
	{Namespace, JITRLatency, Milliseconds, capOnly, []string{"lambdas/jitr"},
		"from AWS IoT's registration event to the certificate's activation"},
	{Namespace, CertificatesExpiring, Count, [][]string{{DimCapability, DimKind}}, []string{"lambdas/auditfindings"},
		"certificates Device Defender's last audit found expiring within 30 days (Kind Device or CA)"},
	{Namespace, CertificatesExpiring7, Count, [][]string{{DimCapability, DimKind}}, []string{"lambdas/auditfindings"},
		"of those, certificates expiring within 7 days"},

	// The rotation workflow publishes these itself (stacks/rotation_asl.go); RotationFailures comes from its log.
	{"CertRotation", "IssuedCertificates", Count, [][]string{{"StackName"}}, []string{"CertRotation state machine"}, "certificates the rotation CA issued"},
	{"CertRotation", "StaleHosts", Count, [][]string{{"StackName"}}, []string{"CertRotation state machine"}, "hosts more than a day past renewAt"},
	{"CertRotation", "CADaysLeft", Count, [][]string{{"StackName"}}, []string{"CertRotation state machine"}, "days until the rotation CA certificate expires"},
	// The reconciler's drift line (internal/replay.DriftEMF).
	{"IotMultiRegion", "RegistryDrift", Count, [][]string{{"Region"}}, []string{"lambdas/reconciler"}, "registry differences the reconciler repaired"},
	// AWS's own metrics.
	{"AWS/ApiGateway", "4XXError", Count, [][]string{{"ApiName"}}, []string{"Amazon API Gateway"}, "client errors of the vending API"},
	{"AWS/ApiGateway", "5XXError", Count, [][]string{{"ApiName"}}, []string{"Amazon API Gateway"}, "server errors of the vending API"},
	{"AWS/Lambda", "Throttles", Count, [][]string{{}}, []string{"AWS Lambda"}, "throttled invocations, every function of the region"},
	{"AWS/Lambda", "Errors", Count, [][]string{{}}, []string{"AWS Lambda"}, "failed invocations, every function of the region"},
	{"AWS/DynamoDB", "ReplicationLatency", Milliseconds, [][]string{{"TableName", "ReceivingRegion"}}, []string{"Amazon DynamoDB"},
		"global-table replication latency of the registry table"},
}

// Lookup returns the catalogue entry of a metric.
func Lookup(namespace, name string) (Metric, bool) {
	for _, m := range Catalogue {
		if m.Namespace == namespace && m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

var (
	mu          sync.Mutex
	out         io.Writer = os.Stdout
	now                   = time.Now
	validReason           = func() map[Reason]bool {
		m := map[Reason]bool{}
		for _, r := range Reasons {
			m[r] = true
		}
		return m
	}()
)

// SetOutput sends the lines to w instead of standard output and returns a function that restores the previous writer.
// For tests (metricstest.Capture).
func SetOutput(w io.Writer) (restore func()) {
	mu.Lock()
	defer mu.Unlock()
	prev := out
	out = w
	return func() {
		mu.Lock()
		defer mu.Unlock()
		out = prev
	}
}

// Add publishes value for the metric name of capability c. A name outside the catalogue, or a unit that does not
// match it, is logged and dropped: a metric must never fail the work it measures.
func Add(c Capability, name string, value float64) {
	emit(c, name, value, "")
}

// Inc publishes one occurrence of name.
func Inc(c Capability, name string) {
	emit(c, name, 1, "")
}

// Refuse publishes one refusal with its reason.
func Refuse(c Capability, reason Reason) {
	if !validReason[reason] {
		slog.Error("metrics: refusal reason outside the catalogue", "reason", string(reason))
		return
	}
	emit(c, Refused, 1, reason)
}

// Duration publishes d in milliseconds for a metric whose unit is Milliseconds.
func Duration(c Capability, name string, d time.Duration) {
	if d < 0 {
		d = 0
	}
	emit(c, name, float64(d.Microseconds())/1000, "")
}

// Expiring publishes a count of expiring certificates of one kind (Device or CA).
func Expiring(name, kind string, n int) {
	line, err := Line(now(), name, float64(n), map[string]string{DimCapability: string(CapOps), DimKind: kind})
	write(line, err)
}

func emit(c Capability, name string, value float64, reason Reason) {
	dims := map[string]string{DimCapability: string(c)}
	if reason != "" {
		dims[DimReason] = string(reason)
	}
	line, err := Line(now(), name, value, dims)
	write(line, err)
}

func write(line []byte, err error) {
	if err != nil {
		slog.Error("metrics: not published", "error", err.Error())
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if _, err := out.Write(line); err != nil {
		slog.Error("metrics: write failed", "error", err.Error())
	}
}

// Line is the embedded-metric-format line (ending in a newline) of one value of a catalogue metric of namespace
// IotCert, with the dimension values dims. Every dimension set the catalogue gives the metric is declared, so the
// metric can be read per capability and, for Refused, per reason.
func Line(at time.Time, name string, value float64, dims map[string]string) ([]byte, error) {
	m, ok := Lookup(Namespace, name)
	if !ok {
		return nil, fmt.Errorf("metric %q is not in the catalogue", name)
	}
	c := Capability(dims[DimCapability])
	known := false
	for _, k := range Capabilities {
		known = known || k == c
	}
	if !known {
		return nil, fmt.Errorf("metric %s: capability %q is not one of %v", name, c, Capabilities)
	}
	root := map[string]any{}
	for _, set := range m.Dimensions {
		for _, d := range set {
			v, ok := dims[d]
			if !ok || v == "" {
				return nil, fmt.Errorf("metric %s: dimension %s has no value", name, d)
			}
			root[d] = v
		}
	}
	if len(root) != len(dims) {
		return nil, fmt.Errorf("metric %s: dimensions %v do not match the catalogue's %v", name, dims, m.Dimensions)
	}
	root["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": m.Dimensions,
			"Metrics":    []any{map[string]string{"Name": name, "Unit": string(m.Unit)}},
		}},
	}
	root[name] = value
	b, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Replay results, as internal/replay's Outcome names them.
const (
	replayApplied = "applied"
	replayStale   = "stale"
)

// Replayed publishes the outcome of one registry event replayed in a replica region: ReplayApplied with
// ReplicationLag (from the event's time in the primary region, eventTime), ReplayStale, or ReplayDeadLettered when the
// state machine sends the event to the dead-letter queue without retrying it (deadLettered).
func Replayed(c Capability, result string, deadLettered bool, eventTime time.Time) {
	switch {
	case deadLettered:
		Inc(c, ReplayDeadLettered)
	case result == replayApplied:
		Inc(c, ReplayApplied)
		if !eventTime.IsZero() {
			Duration(c, ReplicationLag, now().Sub(eventTime))
		}
	case result == replayStale:
		Inc(c, ReplayStale)
	}
}
