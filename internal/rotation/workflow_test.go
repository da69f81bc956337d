package rotation_test

// The rotation workflow as synthesized (stacks/testdata/rotation-workflow.asl.json, which the stack test keeps equal
// to the template's definition) runs here in the Amazon States Language interpreter, with every Task state bound by
// name to the real step functions or to the real SDK call of a service integration, against the fakes and DynamoDB
// Local. The interpreter has no distributed Map, ItemReader or ResultWriter: RotateHosts is bound as a task that
// reads the manifest (as ItemReader does), applies the Map's ItemSelector and runs the Map's item processor as its
// own machine per item; the distributed settings themselves are template assertions (stacks/rotation_test.go).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/iotcert/iotcert/internal/asltest"
	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
)

const goldenWorkflow = "../../stacks/testdata/rotation-workflow.asl.json"

// Placeholders of the golden definition (stacks/rotation_test.go), replaced by this fleet's real names.
const (
	phCA       = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
	phTopic    = "arn:aws:sns:us-east-1:123456789012:FailedCertRotationTopic"
	phTable    = `"TableName": "certificates"`
	phBucket   = "manifest-bucket"
	phTemplate = "template-arn"
)

// workflow is the golden definition bound to one fleet, with the bindings of every task.
type workflow struct {
	f        *fleet
	top      []byte // the definition, RotateHosts made a task
	item     []byte // the Map's item processor as a machine
	runner   *asltest.Runner
	pca      *acmpca.Client
	topic    *sns.Client
	mu       sync.Mutex
	metrics  []map[string]any // PutMetricData requests (CloudWatch has no fake: the requests are kept and checked)
	items    []*asltest.Result
	override map[string]asltest.Task
}

func newWorkflow(t *testing.T, f *fleet) *workflow {
	t.Helper()
	raw, err := os.ReadFile(goldenWorkflow)
	if err != nil {
		t.Fatalf("read the golden workflow: %v", err)
	}
	text := string(raw)
	for old, repl := range map[string]string{
		phCA: f.srv.PCA.CAARN(), phTopic: topicARN, phTable: `"TableName": "` + f.table + `"`, `"` + phBucket + `"`: `"` + manifestBucket + `"`,
		`"` + phTemplate + `"`: `"` + rotation.DefaultTemplateARN + `"`,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("golden workflow has no %s", old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	var def map[string]any
	if err := json.Unmarshal([]byte(text), &def); err != nil {
		t.Fatal(err)
	}
	states := def["States"].(map[string]any)
	m := states["RotateHosts"].(map[string]any)
	proc := m["ItemProcessor"].(map[string]any)
	item, _ := json.Marshal(map[string]any{"StartAt": proc["StartAt"], "States": proc["States"]})
	// The Map becomes a task of the same name with the same transitions, input and result handling.
	task := map[string]any{"Type": "Task", "Resource": "arn:aws:states:::map:distributed"}
	for _, k := range []string{"ResultPath", "Catch", "End", "Next"} {
		if v, ok := m[k]; ok {
			task[k] = v
		}
	}
	task["Parameters"] = map[string]any{
		"Bucket.$": m["ItemReader"].(map[string]any)["Parameters"].(map[string]any)["Bucket.$"],
		"Key.$":    m["ItemReader"].(map[string]any)["Parameters"].(map[string]any)["Key.$"],
	}
	states["RotateHosts"] = task
	top, _ := json.Marshal(def)
	return &workflow{f: f, top: top, item: item, runner: asltest.New(t), pca: acmpca.NewFromConfig(f.cfg), topic: sns.NewFromConfig(f.cfg),
		override: map[string]asltest.Task{}}
}

var fast = 100 * time.Millisecond // every Wait and retry interval: long enough for a host to run openssl

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

// sdkError is what Step Functions sees from an AWS SDK integration: <Service>.<error code>.
func sdkError(service string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &asltest.Error{Name: service + "." + ae.ErrorCode(), Cause: ae.ErrorMessage()}
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

// attr converts Step Functions' DynamoDB JSON ({"S": "…"} / {"N": "…"}) to SDK values and back.
func attrs(m map[string]map[string]string) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for k, v := range m {
		switch {
		case v["S"] != "":
			out[k] = &types.AttributeValueMemberS{Value: v["S"]}
		case v["N"] != "":
			out[k] = &types.AttributeValueMemberN{Value: v["N"]}
		}
	}
	return out
}

func attrsJSON(m map[string]types.AttributeValue) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = map[string]string{"S": v.Value}
		case *types.AttributeValueMemberN:
			out[k] = map[string]string{"N": v.Value}
		}
	}
	return out
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
		"RotateHosts":        w.rotateHosts,
		"RequestCSR":         step(f.steps.SendCSR),
		"PollCSR":            step(f.steps.CommandResult),
		"CheckCSR":           step(f.steps.CheckCSR),
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
		"LookUpIssued": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p struct {
				TableName            string
				Key                  map[string]map[string]string
				ProjectionExpression string
				ConsistentRead       bool
			}
			if err := json.Unmarshal(in, &p); err != nil {
				return nil, err
			}
			out, err := f.ddb.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(p.TableName), Key: attrs(p.Key), ProjectionExpression: aws.String(p.ProjectionExpression), ConsistentRead: aws.Bool(p.ConsistentRead),
			})
			if err != nil {
				return nil, sdkError("DynamoDB", err)
			}
			if out.Item == nil {
				return json.Marshal(map[string]any{})
			}
			return json.Marshal(map[string]any{"Item": attrsJSON(out.Item)})
		},
		"IssueCertificate": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p struct {
				CertificateAuthorityArn, Csr, SigningAlgorithm, TemplateArn, IdempotencyToken string
				Validity                                                                      struct {
					Type  string
					Value int64
				}
			}
			if err := json.Unmarshal(in, &p); err != nil {
				return nil, err
			}
			csr, err := base64.StdEncoding.DecodeString(p.Csr) // SDK integrations carry blobs as base64
			if err != nil {
				return nil, &asltest.Error{Name: "States.Runtime", Cause: "Csr is not base64: " + err.Error()}
			}
			out, err := w.pca.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
				CertificateAuthorityArn: aws.String(p.CertificateAuthorityArn), Csr: csr, SigningAlgorithm: pcatypes.SigningAlgorithm(p.SigningAlgorithm),
				TemplateArn: aws.String(p.TemplateArn), IdempotencyToken: aws.String(p.IdempotencyToken),
				Validity: &pcatypes.Validity{Type: pcatypes.ValidityPeriodType(p.Validity.Type), Value: aws.Int64(p.Validity.Value)},
			})
			if err != nil {
				return nil, sdkError("AcmPca", err)
			}
			return json.Marshal(map[string]string{"CertificateArn": aws.ToString(out.CertificateArn)})
		},
		"RecordIssued":         w.updateItem,
		"CountIssuance":        w.updateItem,
		"PublishIssuanceCount": w.putMetricData,
		"PublishFleetMetrics":  w.putMetricData,
		"NotifyFailureDirect":  w.publish,
		"NotifyRunFailure":     w.publish,
	}
	for k, v := range w.override {
		t[k] = v
	}
	return t
}

func (w *workflow) updateItem(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	var p struct {
		TableName, UpdateExpression, ConditionExpression, ReturnValues string
		Key, ExpressionAttributeValues                                 map[string]map[string]string
		ExpressionAttributeNames                                       map[string]string
	}
	if err := json.Unmarshal(in, &p); err != nil {
		return nil, err
	}
	req := &dynamodb.UpdateItemInput{
		TableName: aws.String(p.TableName), Key: attrs(p.Key), UpdateExpression: aws.String(p.UpdateExpression),
		ExpressionAttributeValues: attrs(p.ExpressionAttributeValues), ReturnValues: types.ReturnValue(p.ReturnValues),
	}
	if len(p.ExpressionAttributeNames) > 0 {
		req.ExpressionAttributeNames = p.ExpressionAttributeNames
	}
	if p.ConditionExpression != "" {
		req.ConditionExpression = aws.String(p.ConditionExpression)
	}
	out, err := w.f.ddb.UpdateItem(ctx, req)
	if err != nil {
		return nil, sdkError("DynamoDB", err)
	}
	return json.Marshal(map[string]any{"Attributes": attrsJSON(out.Attributes)})
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
		return nil, sdkError("SNS", err)
	}
	return json.Marshal(map[string]string{"MessageId": aws.ToString(out.MessageId)})
}

// rotateHosts stands for the distributed Map: it reads the manifest as ItemReader does, gives each item the
// ItemSelector's shape ({"hostID"}) and runs the item processor for it; a failed item does not fail the Map
// (ToleratedFailurePercentage 100).
func (w *workflow) rotateHosts(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	var p struct{ Bucket, Key string }
	if err := json.Unmarshal(in, &p); err != nil {
		return nil, err
	}
	raw, ok := w.f.srv.S3.Object(p.Bucket, p.Key)
	if !ok {
		return nil, &asltest.Error{Name: "States.ItemReaderFailed", Cause: "no manifest s3://" + p.Bucket + "/" + p.Key}
	}
	var items []map[string]any
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, &asltest.Error{Name: "States.ItemReaderFailed", Cause: err.Error()}
	}
	var failed int
	for _, it := range items {
		res, err := w.runner.Run(ctx, w.item, map[string]any{"hostID": it["hostID"]}, asltest.Options{
			Tasks: w.tasks(), Wait: &fast, RetryInterval: &fast, Timeout: 3 * time.Minute,
		})
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.items = append(w.items, res)
		w.mu.Unlock()
		if res.Status != "SUCCEEDED" {
			failed++
		}
	}
	return json.Marshal(map[string]int{"items": len(items), "failed": failed})
}

func (w *workflow) run(t *testing.T, input any) *asltest.Result {
	t.Helper()
	res, err := w.runner.Run(context.Background(), w.top, input, asltest.Options{Tasks: w.tasks(), Wait: &fast, RetryInterval: &fast, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatalf("run the workflow: %v", err)
	}
	return res
}

func (w *workflow) itemResult(t *testing.T, host string) *asltest.Result {
	t.Helper()
	for _, r := range w.items {
		var in struct{ HostID string }
		_ = json.Unmarshal(r.Output, &in)
		if in.HostID == host {
			return r
		}
	}
	for _, r := range w.items {
		for _, e := range r.Events {
			if strings.Contains(e.Cause, host) {
				return r
			}
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
			case "RequestCSR", "PollCSR", "CheckCSR", "GetCertificate", "InstallCertificate", "PollInstall", "RecordRotation":
				lambdas += n
			default:
				sdk += n
			}
		}
		transitions := len(r.States) + len(r.Retried())
		t.Logf("%s: %d state transitions, %d Lambda invocations, %d service-integration calls (%v)", h, transitions, lambdas, sdk, r.Calls)
		if lambdas < 7 || sdk != 5 || transitions > 40 {
			t.Errorf("%s: %d transitions, %d Lambda invocations, %d integration calls: want at least 7 invocations, 5 calls "+
				"(look-up, issue, record, count, metric), at most 40 transitions", h, transitions, lambdas, sdk)
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
	counter := f.item(t, "#pca-issued")
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
