package rotation_test

// The rotation workflow as synthesized (stacks/testdata/rotation-workflow.asl.json, which the stack test keeps equal
// to the template's definition) runs here in the Amazon States Language interpreter, with every Task state bound by
// name to the real step functions or to the real SDK call of a service integration, against the fakes and DynamoDB
// Local. The distributed Map runs from its definition (internal/asltest): its ItemReader reads the manifest from the
// S3 fake, its ItemSelector shapes each host's input, each host is a child execution, its tolerated failures and its
// ResultWriter (into the S3 fake) are the definition's. The S3 bindings refuse keys outside the prefixes the stack
// grants the workflow's role (rotation.ManifestPrefix, rotation.ResultsPrefix), as IAM would.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/iotcert/iotcert/internal/asltest"
	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
)

const goldenWorkflow = "../../stacks/testdata/rotation-workflow.asl.json"

// Placeholders of the golden definition (stacks/rotation_test.go), replaced by this fleet's real names.
const (
	phTopic  = "arn:aws:sns:us-east-1:123456789012:FailedCertRotationTopic"
	phBucket = "manifest-bucket"
)

// workflow is the golden definition bound to one fleet, with the bindings of every task.
type workflow struct {
	f        *fleet
	def      []byte
	runner   *asltest.Runner
	topic    *sns.Client
	s3       *s3.Client
	mu       sync.Mutex
	metrics  []map[string]any // PutMetricData requests (CloudWatch has no fake: the requests are kept and checked)
	items    []*asltest.Result
	override map[string]asltest.Task
}

func goldenDefinition(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(goldenWorkflow)
	if err != nil {
		t.Fatalf("read the golden workflow: %v", err)
	}
	return string(raw)
}

func newWorkflow(t *testing.T, f *fleet) *workflow {
	t.Helper()
	text := goldenDefinition(t)
	for old, repl := range map[string]string{phTopic: topicARN, `"` + phBucket + `"`: `"` + manifestBucket + `"`} {
		if !strings.Contains(text, old) {
			t.Fatalf("golden workflow has no %s", old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	return &workflow{f: f, def: []byte(text), runner: asltest.New(t), topic: sns.NewFromConfig(f.cfg), s3: s3.NewFromConfig(f.cfg),
		override: map[string]asltest.Task{}}
}

var fast = time.Millisecond // every Wait and retry interval: the hosts and Private CA answer by poll count, not by time

// taskError is what Step Functions sees from a Lambda step: the step's error name, the Lambda error document as
// cause.
func taskError(err error) error {
	if err == nil {
		return nil
	}
	name := "States.TaskFailed"
	var e *rotation.Error
	if errors.As(err, &e) {
		name = e.Name
	}
	cause, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": name})
	return &asltest.Error{Name: name, Cause: string(cause)}
}

// integrationError is what Step Functions reports for a failed service integration whose error names are not
// modelled (awsfake.SFNIntegrationError): States.TaskFailed, the one name the workflow may rely on.
func integrationError(call string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &asltest.Error{Name: awsfake.SFNIntegrationError(call, ae.ErrorCode()), Cause: ae.ErrorMessage()}
	}
	return &asltest.Error{Name: "States.TaskFailed", Cause: err.Error()}
}

func step(fn func(context.Context, rotation.State) (rotation.State, error)) asltest.Task {
	return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		var st rotation.State
		if err := json.Unmarshal(in, &st); err != nil {
			return nil, err
		}
		out, err := fn(ctx, st)
		if err != nil {
			return nil, taskError(err)
		}
		return json.Marshal(out)
	}
}

func (w *workflow) tasks() map[string]asltest.Task {
	f := w.f
	t := map[string]asltest.Task{
		"SelectDueHosts": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var si rotation.SelectInput
			if err := json.Unmarshal(in, &si); err != nil {
				return nil, err
			}
			out, err := f.sel.Select(ctx, si)
			if err != nil {
				return nil, taskError(err)
			}
			return json.Marshal(out)
		},
		"RequestCSR":         step(f.steps.SendCSR),
		"PollCSR":            step(f.steps.CommandResult),
		"CheckCSR":           step(f.steps.CheckCSR),
		"IssueCertificate":   step(f.steps.Issue),
		"GetCertificate":     step(f.steps.GetCertificate),
		"InstallCertificate": step(f.steps.SendInstall),
		"PollInstall":        step(f.steps.CommandResult),
		"RecordRotation": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var st rotation.State
			if err := json.Unmarshal(in, &st); err != nil {
				return nil, err
			}
			out, err := f.steps.Record(ctx, st)
			if err != nil {
				return nil, taskError(err)
			}
			return json.Marshal(out)
		},
		"NotifyFailure": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var fl rotation.Failure
			if err := json.Unmarshal(in, &fl); err != nil {
				return nil, err
			}
			out, err := f.steps.NotifyFailure(ctx, fl)
			if err != nil {
				return nil, taskError(err)
			}
			return json.Marshal(out)
		},
		"NotifyRunFailure": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var fl rotation.RunFailure
			if err := json.Unmarshal(in, &fl); err != nil {
				return nil, err
			}
			out, err := f.steps.NotifyRunFailure(ctx, fl)
			if err != nil {
				return nil, taskError(err)
			}
			return json.Marshal(out)
		},
		"PublishIssuanceCount":   w.putMetricData,
		"PublishFleetMetrics":    w.putMetricData,
		"NotifyFailureDirect":    w.publish,
		"NotifyRunFailureDirect": w.publish,
	}
	for k, v := range w.override {
		t[k] = v
	}
	return t
}

func (w *workflow) putMetricData(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
	var p map[string]any
	if err := json.Unmarshal(in, &p); err != nil {
		return nil, err
	}
	for _, d := range p["MetricData"].([]any) {
		if _, ok := d.(map[string]any)["Value"].(float64); !ok {
			return nil, &asltest.Error{Name: "CloudWatch.InvalidParameterValueException", Cause: fmt.Sprintf("Value is not a number: %v", d)}
		}
	}
	w.mu.Lock()
	w.metrics = append(w.metrics, p)
	w.mu.Unlock()
	return json.Marshal(map[string]any{})
}

func (w *workflow) publish(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	var p struct{ TopicArn, Message string }
	if err := json.Unmarshal(in, &p); err != nil {
		return nil, err
	}
	out, err := w.topic.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(p.TopicArn), Message: aws.String(p.Message)})
	if err != nil {
		return nil, integrationError("sns:publish", err)
	}
	return json.Marshal(map[string]string{"MessageId": aws.ToString(out.MessageId)})
}

// resources binds what the distributed Map calls itself: its ItemReader's s3:getObject and its ResultWriter's
// s3:putObject, through the real SDK against the S3 fake, only under the prefixes the stack grants.
func (w *workflow) resources() map[string]asltest.Task {
	return map[string]asltest.Task{
		"arn:aws:states:::s3:getObject": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p struct{ Bucket, Key string }
			if err := json.Unmarshal(in, &p); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(p.Key, rotation.ManifestPrefix) {
				return nil, &asltest.Error{Name: "S3.AccessDenied", Cause: "the workflow's role may read only " + rotation.ManifestPrefix + "*, not " + p.Key}
			}
			out, err := w.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)})
			if err != nil {
				return nil, &asltest.Error{Name: "S3.NoSuchKey", Cause: err.Error()}
			}
			defer out.Body.Close()
			body, err := io.ReadAll(out.Body)
			if err != nil {
				return nil, err
			}
			return json.Marshal(string(body))
		},
		"arn:aws:states:::s3:putObject": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p struct{ Bucket, Key, Body string }
			if err := json.Unmarshal(in, &p); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(p.Key, rotation.ResultsPrefix) {
				return nil, &asltest.Error{Name: "S3.AccessDenied", Cause: "the workflow's role may write only " + rotation.ResultsPrefix + "*, not " + p.Key}
			}
			if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key), Body: strings.NewReader(p.Body)}); err != nil {
				return nil, &asltest.Error{Name: "S3.PutObjectFailed", Cause: err.Error()}
			}
			return json.RawMessage(`{}`), nil
		},
	}
}

func (w *workflow) run(t *testing.T, input any) *asltest.Result {
	t.Helper()
	res, err := w.runner.Run(context.Background(), w.def, input, asltest.Options{Tasks: w.tasks(), Resources: w.resources(),
		Wait: &fast, RetryInterval: &fast, Timeout: 5 * time.Minute, Name: "CertRotation-Workflow"})
	if err != nil {
		t.Fatalf("run the workflow: %v", err)
	}
	w.mu.Lock()
	w.items = append(w.items, res.Children...)
	w.mu.Unlock()
	return res
}

func (w *workflow) itemResult(t *testing.T, host string) *asltest.Result {
	t.Helper()
	for _, r := range w.items {
		var in struct{ HostID string }
		_ = json.Unmarshal(r.Input, &in)
		if in.HostID == host {
			return r
		}
	}
	t.Fatalf("no item execution for %s", host)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestWorkflowThreeHostsRotate(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.srv.PCA.SetPendingGets(2) // Private CA signs asynchronously; no issuance event is used at all
	w := newWorkflow(t, f)
	hosts := []string{hostN(101), hostN(102), "mi-0123456789abcdef1"}
	for _, h := range hosts {
		f.addHost(t, h, nil, false)
	}
	res := w.run(t, map[string]any{})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("workflow = %s %s %s, states %v", res.Status, res.Error, res.Cause, res.States)
	}
	if len(w.items) != 3 {
		t.Fatalf("%d host executions, want 3", len(w.items))
	}
	for _, h := range hosts {
		r := w.itemResult(t, h)
		if r.Status != "SUCCEEDED" {
			t.Errorf("%s: %s %s %s", h, r.Status, r.Error, r.Cause)
			continue
		}
		if !contains(r.States, "IssueCertificate") || contains(r.States, "NotifyFailure") || !contains(r.Retried(), "GetCertificate") {
			t.Errorf("%s: states %v, retried %v", h, r.States, r.Retried())
		}
		// The cost of one rotation: state transitions (states entered and retries: what Step Functions bills), Lambda
		// invocations and service-integration calls.
		lambdas, sdk := 0, 0
		for name, n := range r.Calls {
			switch name {
			case "RequestCSR", "PollCSR", "CheckCSR", "IssueCertificate", "GetCertificate", "InstallCertificate", "PollInstall", "RecordRotation":
				lambdas += n
			default:
				sdk += n
			}
		}
		transitions := len(r.States) + len(r.Retried())
		t.Logf("%s: %d state transitions, %d Lambda invocations, %d service-integration calls (%v)", h, transitions, lambdas, sdk, r.Calls)
		// 13 states entered on the happy path; every other transition is a retried wait: here one per command (each
		// host answers InProgress to its first poll) and two for the certificate (Private CA still signing).
		if lambdas != 12 || sdk != 1 || len(r.States) != 13 {
			t.Errorf("%s: %d states entered %v, %d Lambda invocations, %d integration calls: want 13 states, 12 invocations "+
				"(8 and the 4 retried waits), 1 call (the issuance metric)", h, len(r.States), r.States, lambdas, sdk)
		}
		if got := strings.Join(r.Retried(), " "); got != "PollCSR GetCertificate GetCertificate PollInstall" {
			t.Errorf("%s: retried %s, want PollCSR once, GetCertificate twice, PollInstall once", h, got)
		}
		item := f.item(t, h)
		if item[rotation.AttrStatus] != rotation.StatusRotated || item[rotation.AttrSerial] == "" || f.live(h) != item[rotation.AttrSerial] {
			t.Errorf("%s: item %v, live %s", h, item, f.live(h))
		}
		if _, ok := item[rotation.AttrPendingCertARN]; ok {
			t.Errorf("%s: pending issuance left on the item", h)
		}
	}
	if n := f.srv.PCA.Issued(); n != 3 {
		t.Errorf("issued %d certificates, want 3", n)
	}
	if n := len(f.srv.RolesAnywhere.Sessions()); n != 3 {
		t.Errorf("%d CreateSession calls, want one test per host", n)
	}
	// The issuance counter and the metrics the alarms read.
	counter := f.item(t, rotation.IssuanceCounterKey)
	if counter["issued"] != "3" {
		t.Errorf("issuance counter = %v, want 3", counter)
	}
	var maxIssued float64
	var fleetMetrics, staleReported bool
	for _, m := range w.metrics {
		for _, d := range m["MetricData"].([]any) {
			d := d.(map[string]any)
			switch d["MetricName"] {
			case "IssuedCertificates":
				maxIssued = max(maxIssued, d["Value"].(float64))
			case "OverdueHosts":
				fleetMetrics = d["Value"].(float64) == 3
			case "StaleHosts":
				staleReported = d["Value"].(float64) == 0
			}
		}
	}
	if maxIssued != 3 || !fleetMetrics || !staleReported {
		t.Errorf("metrics %v: want IssuedCertificates up to 3, OverdueHosts 3 and StaleHosts 0", w.metrics)
	}
	if msgs := f.srv.SNS.Messages(); len(msgs) != 0 {
		t.Errorf("notifications on success: %+v", msgs)
	}
	// Nothing is due any more: a second run selects nothing and succeeds without a Map.
	w.items = nil
	if res := w.run(t, map[string]any{}); res.Status != "SUCCEEDED" || contains(res.States, "RotateHosts") || len(w.items) != 0 {
		t.Errorf("second run = %s, states %v", res.Status, res.States)
	}
}

// A host whose agent is offline never finishes its command: the retries of PollCSR run out, the host's execution
// fails with the sample's message on the topic and the host stays due.
func TestWorkflowHostOffline(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := newWorkflow(t, f)
	on, off := hostN(111), hostN(112)
	f.addHost(t, on, nil, false)
	f.addHost(t, off, nil, true)
	res := w.run(t, map[string]any{})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("workflow = %s %s: one host's failure must not fail the run", res.Status, res.Cause)
	}
	r := w.itemResult(t, off)
	if r.Status != "FAILED" || r.Error != "Rotation.Failed" || !contains(r.Caught(), "PollCSR") || contains(r.States, "CheckCSR") {
		t.Errorf("offline host: %s %s, states %v, caught %v", r.Status, r.Error, r.States, r.Caught())
	}
	if n := r.Calls["PollCSR"]; n != 31 {
		t.Errorf("PollCSR called %d times, want 31 (one try and 30 retries)", n)
	}
	msgs := f.srv.SNS.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Certificate rotation failed for "+off+": ") {
		t.Errorf("notifications %+v, want one with the sample's prefix for %s", msgs, off)
	}
	if item := f.item(t, off); item[rotation.AttrStatus] != rotation.StatusFailed || item[rotation.AttrLastError] == "" {
		t.Errorf("offline host item %v, want FAILED with lastError", item)
	}
	if item := f.item(t, on); item[rotation.AttrStatus] != rotation.StatusRotated {
		t.Errorf("online host item %v, want ROTATED", item)
	}
}

// A host that prints a CSR for another host (or a compromised one) is refused before anything is issued.
func TestWorkflowCSRWrongCN(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := newWorkflow(t, f)
	host := hostN(121)
	f.addHost(t, host, nil, false)
	w.override["PollCSR"] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		out, err := step(f.steps.CommandResult)(ctx, in)
		if err != nil {
			return nil, err
		}
		var st rotation.State
		_ = json.Unmarshal(out, &st)
		st.Output = csrFor(t, hostN(999)) // the host answers with a CSR naming another host
		return json.Marshal(st)
	}
	res := w.run(t, map[string]any{})
	r := w.itemResult(t, host)
	if res.Status != "SUCCEEDED" || r.Status != "FAILED" || !contains(r.Caught(), "CheckCSR") || contains(r.States, "IssueCertificate") {
		t.Errorf("wrong CN: run %s, host %s, states %v", res.Status, r.Status, r.States)
	}
	if n := f.srv.PCA.Issued(); n != 0 {
		t.Errorf("issued %d certificates for a wrong CSR", n)
	}
	msgs := f.srv.SNS.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "CSRRejected") || !strings.Contains(msgs[0].Message, "is not the host id") {
		t.Errorf("notifications %+v, want the CSR refusal", msgs)
	}
}

// Private CA throttles IssueCertificate: the state's Retry backs off and the host still rotates, with one
// certificate.
func TestWorkflowIssuanceThrottled(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := newWorkflow(t, f)
	host := hostN(131)
	f.addHost(t, host, nil, false)
	f.srv.Inject(awsfake.ServicePCA, "IssueCertificate", awsfake.Fault{Status: 400, Code: "ThrottlingException", Message: "Rate exceeded", Times: 12})
	w.run(t, map[string]any{})
	r := w.itemResult(t, host)
	if r.Status != "SUCCEEDED" {
		t.Fatalf("throttled host: %s %s %s", r.Status, r.Error, r.Cause)
	}
	retries := 0
	for _, s := range r.Retried() {
		if s == "IssueCertificate" {
			retries++
		}
	}
	// The SDK retries each call itself (8 attempts); the state retries what is still throttled.
	if retries == 0 {
		t.Errorf("IssueCertificate was not retried by the workflow (retried: %v)", r.Retried())
	}
	if n := f.srv.PCA.Issued(); n != 1 {
		t.Errorf("issued %d certificates, want 1", n)
	}
}

// The issuance event never arrives: the workflow does not wait for it, it reads the certificate (retrying while
// Private CA is still signing) and installs it.
func TestWorkflowNoIssuanceEvent(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.srv.PCA.SetPendingGets(5)
	w := newWorkflow(t, f)
	host := hostN(141)
	f.addHost(t, host, nil, false)
	w.run(t, map[string]any{})
	r := w.itemResult(t, host)
	if r.Status != "SUCCEEDED" || r.Calls["GetCertificate"] != 6 {
		t.Errorf("host %s, GetCertificate calls %d, want success after 5 in-progress answers", r.Status, r.Calls["GetCertificate"])
	}
	if n := len(f.srv.Events.Entries()); n != 0 {
		t.Errorf("%d EventBridge events: the workflow must not depend on any", n)
	}
}

// The test on the host fails (aws_signing_helper gets no credentials): the old pair stays live and the host is
// FAILED with the helper's message.
func TestWorkflowHostTestFailsOldPairStays(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := newWorkflow(t, f)
	host := hostN(151)
	f.addHost(t, host, nil, false)
	if res := w.run(t, map[string]any{"hostIDs": []string{host}}); res.Status != "SUCCEEDED" || w.itemResult(t, host).Status != "SUCCEEDED" {
		t.Fatalf("first rotation failed: %+v", w.itemResult(t, host))
	}
	old := f.live(host)
	// The host's test now fails for real: the role it must assume is not in the profile, so Roles Anywhere's
	// CreateSession refuses the helper.
	f.steps.Config.RoleARN = "arn:aws:iam::123456789012:role/NotInTheProfile"
	w.items = nil
	w.run(t, map[string]any{"hostIDs": []string{host}})
	r := w.itemResult(t, host)
	if r.Status != "FAILED" || !contains(r.Caught(), "PollInstall") || contains(r.States, "RecordRotation") {
		t.Errorf("failed test: host %s, states %v, caught %v", r.Status, r.States, r.Caught())
	}
	if got := f.live(host); got != old {
		t.Errorf("live serial %s after a failed test, want the old %s", got, old)
	}
	item := f.item(t, host)
	if item[rotation.AttrStatus] != rotation.StatusFailed || item[rotation.AttrSerial] != old {
		t.Errorf("item %v, want FAILED with the old serial %s", item, old)
	}
	msgs := f.srv.SNS.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Certificate rotation failed for "+host+": CommandFailed") {
		t.Errorf("notifications %+v", msgs)
	}
}

// csrFor is a valid CSR whose subject names cn.
func csrFor(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	return b.String()
}

// Every error name in a Retry or Catch of the workflow is one Step Functions emits for that state: the language's
// States.* names, for a Lambda task the Lambda service errors and our steps' errorType, for an SDK integration the
// names its API reference models (awsfake.SFNIntegrationErrors). A name Step Functions never emits (a throttling
// error Private CA's model does not list, a guessed SNS or DynamoDB name) would leave a Retry that never fires.
func TestWorkflowErrorNamesEmitted(t *testing.T) {
	t.Parallel()
	var def struct {
		States map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(goldenDefinition(t)), &def); err != nil {
		t.Fatal(err)
	}
	states := map[string]json.RawMessage{}
	var collect func(map[string]json.RawMessage)
	collect = func(m map[string]json.RawMessage) {
		for name, raw := range m {
			states[name] = raw
			var sub struct {
				ItemProcessor *struct{ States map[string]json.RawMessage }
			}
			_ = json.Unmarshal(raw, &sub)
			if sub.ItemProcessor != nil {
				collect(sub.ItemProcessor.States)
			}
		}
	}
	collect(def.States)
	language := []string{"States.ALL", "States.TaskFailed", "States.Timeout", "States.Runtime", "States.HeartbeatTimeout"}
	// https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
	lambda := []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
	ours := []string{rotation.ErrHostInvalid, rotation.ErrCommandInProgress, rotation.ErrCommandFailed, rotation.ErrCSRRejected,
		rotation.ErrCertificateInProgress, rotation.ErrIssuanceFailed, rotation.ErrThrottled, rotation.ErrHostBusy}
	// https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
	distributed := []string{"States.ItemReaderFailed", "States.ResultWriterFailed", "States.ExceedToleratedFailureThreshold"}
	checked := 0
	for name, raw := range states {
		var st struct {
			Type, Resource string
			Retry, Catch   []struct{ ErrorEquals []string }
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		allowed := append([]string{}, language...)
		switch {
		case st.Type == "Map":
			allowed = append(allowed, distributed...)
		case strings.HasPrefix(st.Resource, "arn:aws:lambda:"):
			allowed = append(append(allowed, lambda...), ours...)
		case strings.HasPrefix(st.Resource, "arn:aws:states:::aws-sdk:"):
			if names, ok := awsfake.SFNIntegrationErrors(strings.TrimPrefix(st.Resource, "arn:aws:states:::aws-sdk:")); ok {
				allowed = append(allowed, names...)
			}
		}
		for _, r := range append(st.Retry, st.Catch...) {
			for _, e := range r.ErrorEquals {
				checked++
				if !contains(allowed, e) {
					t.Errorf("state %s (%s %s) matches %s, which Step Functions does not emit there", name, st.Type, st.Resource, e)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d error names checked", checked)
	}
}

// A rotate-now run for a host that the scheduled run is rotating: the second run finds the host's lease taken and
// leaves the host alone (no second certificate, no failure notice); the first completes.
func TestWorkflowOverlappingRuns(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := newWorkflow(t, f)
	host := hostN(161)
	f.addHost(t, host, nil, false)
	plain := w.tasks()
	var second *asltest.Result
	w.override["PollCSR"] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		if second == nil {
			res, err := w.runner.Run(ctx, w.def, map[string]any{"hostIDs": []string{host}}, asltest.Options{Tasks: plain, Resources: w.resources(),
				Wait: &fast, RetryInterval: &fast, Timeout: 2 * time.Minute, Name: "CertRotation-Workflow"})
			if err != nil {
				return nil, err
			}
			second = res
		}
		return plain["PollCSR"](ctx, in)
	}
	first := w.run(t, map[string]any{})
	if first.Status != "SUCCEEDED" || second == nil || second.Status != "SUCCEEDED" || len(second.Children) != 1 {
		t.Fatalf("runs: first %s, second %+v", first.Status, second)
	}
	if c := second.Children[0]; c.Status != "SUCCEEDED" || !contains(c.States, "HostBusy") || contains(c.States, "IssueCertificate") ||
		f.srv.Calls(awsfake.ServiceSSM, "SendCommand") != 2 {
		t.Errorf("second run's host: %s, states %v, SendCommand calls %d; want HostBusy before any command or issuance",
			c.Status, c.States, f.srv.Calls(awsfake.ServiceSSM, "SendCommand"))
	}
	if r := first.Children[0]; r.Status != "SUCCEEDED" || !contains(r.States, "RecordRotation") {
		t.Errorf("first run's host: %s, states %v", r.Status, r.States)
	}
	if n := f.srv.PCA.Issued(); n != 1 {
		t.Errorf("issued %d certificates, want 1", n)
	}
	if msgs := f.srv.SNS.Messages(); len(msgs) != 0 {
		t.Errorf("notifications %+v, want none", msgs)
	}
	item := f.item(t, host)
	if item[rotation.AttrStatus] != rotation.StatusRotated || item[rotation.AttrLeaseOwner] != "" || item[rotation.AttrLeaseUntil] != "" {
		t.Errorf("item %v, want ROTATED with the lease released", item)
	}
	// The lease released, the host can be rotated again at once.
	w.items = nil
	delete(w.override, "PollCSR")
	if res := w.run(t, map[string]any{"hostID": host}); res.Status != "SUCCEEDED" || w.itemResult(t, host).Status != "SUCCEEDED" || f.srv.PCA.Issued() != 2 {
		t.Errorf("rotate-now after the overlap: %s, issued %d", res.Status, f.srv.PCA.Issued())
	}
}

// A run that fails as a whole tells a person what failed, for which hosts, in words: no raw JSON, and the run's
// prefix, not the trigger's.
func TestWorkflowRunFailureMessage(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := newWorkflow(t, f)
	res := w.run(t, map[string]any{"hostIDs": []string{"i-1;reboot"}})
	if res.Status != "FAILED" || res.Error != "Rotation.RunFailed" {
		t.Fatalf("run = %s %s, want Rotation.RunFailed", res.Status, res.Error)
	}
	msgs := f.srv.SNS.Messages()
	if len(msgs) != 1 {
		t.Fatalf("notifications %+v, want one", msgs)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(msgs[0].Message), &body); err != nil {
		t.Fatalf("message %q is not {\"default\": text}", msgs[0].Message)
	}
	text := body["default"]
	want := `Certificate rotation run failed for "i-1;reboot": HostInvalid: host id "i-1;reboot"`
	if !strings.HasPrefix(text, want) || strings.ContainsAny(text, "{}") || strings.Contains(text, "trigger") {
		t.Errorf("run failure message %q, want it to start %q, in words", text, want)
	}

	// The manifest cannot be read (the selection wrote it where the workflow may not read): the Map's ItemReader
	// fails the run, with the reason.
	f.addHost(t, hostN(171), nil, false)
	w.override["SelectDueHosts"] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		out, err := f.sel.Select(ctx, rotation.SelectInput{})
		if err != nil {
			return nil, taskError(err)
		}
		raw, _ := f.srv.S3.Object(out.Bucket, out.Key)
		out.Key = "elsewhere/" + out.Key // not under the prefix the role may read
		f.srv.S3.Put(out.Bucket, out.Key, raw)
		return json.Marshal(out)
	}
	res = w.run(t, map[string]any{})
	msgs = f.srv.SNS.Messages()
	if res.Status != "FAILED" || len(msgs) != 2 || !strings.Contains(msgs[1].Message, "Certificate rotation run failed for the due hosts: States.ItemReaderFailed") {
		t.Errorf("unreadable manifest: run %s, notifications %+v", res.Status, msgs)
	}
	if n := f.srv.Calls(awsfake.ServiceSSM, "SendCommand"); n != 0 {
		t.Errorf("%d commands sent by a run that could not read its manifest", n)
	}
}
