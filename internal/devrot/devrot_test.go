package devrot_test

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot"
	"github.com/iotcert/iotcert/internal/devrot/devrottest"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/metrics/metricstest"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

// env is devrottest's cloud with a clock the test moves.
type env struct {
	t        testing.TB
	srv      *awsfake.Server
	iot      *iot.Client
	pca      *acmpca.Client
	caID     string
	template string
	now      time.Time
	signer   *devrot.Signer
	done     *devrot.Completion
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := devrottest.New(t)
	c.Srv.PCA.SetPendingGets(1)
	e := &env{t: t, srv: c.Srv, iot: c.IoT, pca: c.PCA, caID: c.CAID, template: c.Template, now: time.Now().UTC(),
		signer: c.Signer, done: c.Completion}
	clock := func() time.Time { return e.now }
	e.signer.Now, e.done.Now = clock, clock
	return e
}

// device is a thing with its current certificate.
type device struct {
	thing  string
	certID string
	key    crypto.Signer
}

// iotDevice is a device of the per-thing stack or the vending API: AWS IoT issued its certificate.
func (e *env) iotDevice(thing string) device {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(thing)}); err != nil {
		e.t.Fatal(err)
	}
	key, csr := newCSR(e.t, thing)
	out, err := e.iot.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(string(csr)), SetAsActive: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.grant(thing, aws.ToString(out.CertificateArn))
	return device{thing: thing, certID: aws.ToString(out.CertificateId), key: key}
}

// pcaDevice is a multi-region device: our Private CA issued its certificate and JITR registered it.
func (e *env) pcaDevice(thing string) device {
	e.t.Helper()
	key, csr := newCSR(e.t, thing)
	pemCert := e.issueByPCA(csr)
	id := e.jitr(pemCert)
	return device{thing: thing, certID: id, key: key}
}

func (e *env) issueByPCA(csr []byte) string {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.pca.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(e.srv.PCA.CAARN()), Csr: csr, SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
		Validity: &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(30)},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for {
		got, err := e.pca.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(e.srv.PCA.CAARN()), CertificateArn: out.CertificateArn})
		if err == nil {
			return aws.ToString(got.Certificate)
		}
		if !strings.Contains(err.Error(), "RequestInProgress") {
			e.t.Fatal(err)
		}
	}
}

// jitr is what AWS IoT and the JITR function do when a device first presents a Private CA certificate: register,
// create the thing if missing, attach, activate.
func (e *env) jitr(certPEM string) string {
	e.t.Helper()
	reg, err := e.srv.IoT.AutoRegister([]byte(certPEM))
	if err != nil {
		e.t.Fatalf("AutoRegister() error = %v", err)
	}
	cert, _ := pki.ParseCertificate([]byte(certPEM))
	ctx := context.Background()
	if _, ok := e.srv.IoT.Thing(cert.Subject.CommonName); !ok {
		if _, err := e.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(cert.Subject.CommonName)}); err != nil {
			e.t.Fatal(err)
		}
	}
	c, _ := e.srv.IoT.Certificate(reg.CertificateID)
	e.grant(cert.Subject.CommonName, c.ARN)
	if _, err := e.iot.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(reg.CertificateID), NewStatus: iottypes.CertificateStatusActive}); err != nil {
		e.t.Fatal(err)
	}
	return reg.CertificateID
}

func (e *env) grant(thing, arn string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.iot.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(devrottest.PolicyName), Target: aws.String(arn)}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.iot.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(arn)}); err != nil {
		e.t.Fatal(err)
	}
}

func newCSR(t testing.TB, cn string) (crypto.Signer, []byte) {
	t.Helper()
	key, err := pki.GenerateKey("EC_P256")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, cn)
	if err != nil {
		t.Fatal(err)
	}
	return key, csr
}

var jobSeq atomic.Int64

// startJob makes a rotation job for the thing from the template and starts its execution, as the device does with
// start-next.
func (e *env) startJob(thing string) string {
	e.t.Helper()
	id := fmt.Sprintf("%sthing-%d", wire.JobIDPrefix, jobSeq.Add(1))
	if _, err := e.iot.CreateJob(context.Background(), &iot.CreateJobInput{
		JobId: aws.String(id), Targets: []string{"arn:aws:iot:us-east-1:123456789012:thing/" + thing}, JobTemplateArn: aws.String(e.template),
	}); err != nil {
		e.t.Fatalf("CreateJob() error = %v", err)
	}
	if _, ok, err := e.srv.IoT.StartNextPendingJobExecution(thing, nil); err != nil || !ok {
		e.t.Fatalf("StartNextPendingJobExecution() = %v, %v", ok, err)
	}
	return id
}

// lastMessage is the last message the functions published on the thing's certificate topic.
func (e *env) lastMessage(thing string) wire.CertificateMessage {
	e.t.Helper()
	var m wire.CertificateMessage
	for _, p := range e.srv.IoT.Published() {
		if p.Topic == wire.CertificateTopic(thing) {
			m = wire.CertificateMessage{}
			if err := json.Unmarshal(p.Payload, &m); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	return m
}

func (e *env) status(id string) string {
	c, ok := e.srv.IoT.Certificate(id)
	if !ok {
		return "deleted"
	}
	return c.Status
}

func (e *env) attached(thing, id string) bool {
	c, ok := e.srv.IoT.Certificate(id)
	if !ok {
		return false
	}
	for _, p := range e.srv.IoT.ThingPrincipals(thing) {
		if p == c.ARN {
			return true
		}
	}
	return false
}

func (e *env) sign(d device, job string, csr []byte) devrot.Result {
	e.t.Helper()
	res, err := e.signer.Handle(context.Background(), devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: job, CSR: string(csr)})
	if err != nil {
		e.t.Fatalf("signer: %v", err)
	}
	return res
}

func (e *env) complete(v any) devrot.Result {
	e.t.Helper()
	raw, _ := json.Marshal(v)
	res, err := e.done.Handle(context.Background(), raw)
	if err != nil {
		e.t.Fatalf("completion(%s): %v", raw, err)
	}
	return res
}

func jobEvent(job, thing, status string) devrot.JobEvent {
	return devrot.JobEvent{EventType: "JOB_EXECUTION", Operation: strings.ToLower(status), JobID: job,
		ThingARN: "arn:aws:iot:us-east-1:123456789012:thing/" + thing, Status: status}
}

// endJob ends the thing's execution of the job in the fake with status, as the device (FAILED, REJECTED), AWS IoT's
// timer (TIMED_OUT) or an operator (CANCELED) does, and returns the event AWS IoT then publishes.
func (e *env) endJob(job, thing, status string) devrot.JobEvent {
	e.t.Helper()
	var err error
	switch status {
	case awsfake.JobTimedOut:
		err = e.srv.IoT.TimeOutJobExecution(thing, job)
	case awsfake.JobCanceled:
		_, err = e.iot.CancelJobExecution(context.Background(), &iot.CancelJobExecutionInput{JobId: aws.String(job), ThingName: aws.String(thing), Force: true})
	default:
		_, err = e.srv.IoT.UpdateJobExecution(thing, job, status, nil, nil)
	}
	if err != nil {
		e.t.Fatalf("end job execution %s/%s as %s: %v", job, thing, status, err)
	}
	return jobEvent(job, thing, status)
}

// rotate runs the signer for a fresh key and returns the issued message.
func (e *env) rotate(d device, job string) (crypto.Signer, wire.CertificateMessage) {
	e.t.Helper()
	key, csr := newCSR(e.t, d.thing)
	if res := e.sign(d, job, csr); res.Status != "issued" {
		e.t.Fatalf("signer = %+v, want issued", res)
	}
	m := e.lastMessage(d.thing)
	if m.Status != wire.StatusIssued || m.JobID != job || m.CertificateID == "" {
		e.t.Fatalf("certificate message = %+v", m)
	}
	return key, m
}

func TestRotationOfAnAWSIoTCertificate(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-1")
	job := e.startJob(d.thing)
	rec := metricstest.Capture(t)
	_, m := e.rotate(d, job)

	if got := e.status(m.CertificateID); got != "ACTIVE" || !e.attached(d.thing, m.CertificateID) {
		t.Fatalf("new certificate is %s, attached %v; want ACTIVE and attached", got, e.attached(d.thing, m.CertificateID))
	}
	c, _ := e.srv.IoT.Certificate(m.CertificateID)
	if got := e.srv.IoT.PrincipalPolicies(c.ARN); len(got) != 1 || got[0] != devrottest.PolicyName {
		t.Fatalf("new certificate policies = %v, want [device-policy]", got)
	}

	// A confirmation replayed from the old certificate changes nothing.
	if res := e.complete(devrot.ConfirmEvent{Principal: d.certID, ThingName: d.thing, JobID: job}); res.Status != "refused" {
		t.Fatalf("confirmation by the old certificate = %+v, want refused", res)
	}
	if got := e.status(d.certID); got != "ACTIVE" {
		t.Fatalf("old certificate after a refused confirmation is %s, want ACTIVE", got)
	}

	if res := e.complete(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: d.thing, JobID: job}); res.Status != "confirmed" {
		t.Fatalf("confirmation = %+v, want confirmed", res)
	}
	if got := e.status(d.certID); got != "INACTIVE" || e.attached(d.thing, d.certID) {
		t.Fatalf("old certificate after confirmation is %s, attached %v; want INACTIVE, detached", got, e.attached(d.thing, d.certID))
	}
	if got := e.lastMessage(d.thing); got.Status != wire.StatusConfirmed {
		t.Fatalf("device told %+v, want confirmed", got)
	}
	// Duplicate confirmation and a late failure event: nothing changes.
	if res := e.complete(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: d.thing, JobID: job}); res.Status != "confirmed" {
		t.Fatalf("repeated confirmation = %+v", res)
	}
	if res := e.complete(jobEvent(job, d.thing, "TIMED_OUT")); res.Status != "ignored" {
		t.Fatalf("job event after confirmation = %+v, want ignored", res)
	}
	// One issue, one success (the repeated confirmation counts nothing), one refusal (the old certificate's replay).
	capF := map[string]string{metrics.DimCapability: string(metrics.CapF)}
	for name, want := range map[string]float64{metrics.CertificatesIssued: 1, metrics.RotationSucceeded: 1, metrics.RotationFailed: 0} {
		if got := rec.Sum(t, name, capF); got != want {
			t.Errorf("metric %s = %v, want %v", name, got, want)
		}
	}
	if got := rec.Sum(t, metrics.Refused, map[string]string{metrics.DimCapability: string(metrics.CapF), metrics.DimReason: string(metrics.ReasonUnauthorized)}); got != 1 {
		t.Errorf("Refused (Unauthorized) = %v, want 1: the confirmation replayed by the old certificate", got)
	}

	// Within the grace period the old certificate stays; after it, it is revoked and deleted.
	e.now = e.now.Add(devrot.DefaultGrace - time.Minute)
	e.complete(map[string]bool{"sweep": true})
	if got := e.status(d.certID); got != "INACTIVE" {
		t.Fatalf("old certificate within the grace period is %s, want INACTIVE", got)
	}
	e.now = e.now.Add(2 * time.Minute)
	e.complete(map[string]string{"detail-type": "Scheduled Event"})
	if got := e.status(d.certID); got != "deleted" {
		t.Fatalf("old certificate after the grace period is %s, want deleted", got)
	}
	if got := e.status(m.CertificateID); got != "ACTIVE" {
		t.Fatalf("new certificate is %s, want ACTIVE", got)
	}
}

func TestRotationOfAPrivateCACertificate(t *testing.T) {
	e := newEnv(t)
	d := e.pcaDevice("edge-7")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	if got := e.status(m.CertificateID); got != "deleted" {
		t.Fatalf("new Private CA certificate is registered before the device connects (%s)", got)
	}
	if e.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr") != 0 {
		t.Fatal("a Private CA device got an AWS IoT certificate")
	}
	// Confirmation before the device connected with it: not registered, refused.
	if res := e.complete(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: d.thing, JobID: job}); res.Status != "refused" {
		t.Fatalf("confirmation before registration = %+v, want refused", res)
	}
	// First connect: JITR registers the second certificate of the existing thing.
	if id := e.jitr(m.CertificatePEM); id != m.CertificateID {
		t.Fatalf("registered id %s, want %s", id, m.CertificateID)
	}
	if res := e.complete(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: d.thing, JobID: job}); res.Status != "confirmed" {
		t.Fatalf("confirmation = %+v, want confirmed", res)
	}
	if got := e.status(d.certID); got != "INACTIVE" {
		t.Fatalf("old certificate is %s, want INACTIVE", got)
	}
	e.now = e.now.Add(devrot.DefaultGrace + time.Minute)
	e.complete(map[string]bool{"sweep": true})
	// Kept as REVOKED (JITR could otherwise register it again) and revoked in the Private CA.
	if got := e.status(d.certID); got != "REVOKED" {
		t.Fatalf("old certificate after the grace period is %s, want REVOKED", got)
	}
	old, _ := e.srv.IoT.Certificate(d.certID)
	cert, _ := pki.ParseCertificate([]byte(old.PEM))
	if _, ok := e.srv.PCA.Revoked(cert.SerialNumber.Text(16)); !ok {
		t.Fatal("old certificate is not revoked in the Private CA")
	}
}

func TestSignerRefusals(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-2")
	other := e.iotDevice("sensor-3")
	job := e.startJob(d.thing)
	_, goodCSR := newCSR(t, d.thing)
	_, otherCSR := newCSR(t, other.thing)
	queued := fmt.Sprintf("%squeued-%d", wire.JobIDPrefix, jobSeq.Add(1))
	if _, err := e.iot.CreateJob(context.Background(), &iot.CreateJobInput{JobId: aws.String(queued), Targets: []string{"arn:aws:iot:us-east-1:123456789012:thing/" + d.thing}, JobTemplateArn: aws.String(e.template)}); err != nil {
		t.Fatal(err)
	}
	plain := wire.JobIDPrefix + "plain"
	if _, err := e.iot.CreateJob(context.Background(), &iot.CreateJobInput{JobId: aws.String(plain), Targets: []string{"arn:aws:iot:us-east-1:123456789012:thing/" + d.thing}, Document: aws.String(wire.JobDocumentJSON())}); err != nil {
		t.Fatal(err)
	}
	reuse, err := pki.NewCSR(d.key, d.thing)
	if err != nil {
		t.Fatal(err)
	}
	_, sans := newCSR(t, "x")
	cases := []struct {
		name string
		ev   devrot.CSREvent
		want string
	}{
		{"csr for another thing", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: job, CSR: string(otherCSR)}, "subject must be exactly CN=sensor-2"},
		{"sent with another thing's certificate", devrot.CSREvent{Principal: other.certID, ThingName: d.thing, JobID: job, CSR: string(goodCSR)}, "not attached to thing sensor-2"},
		{"key of the current certificate", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: job, CSR: string(reuse)}, "reuses the key"},
		{"job not started", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: queued, CSR: string(goodCSR)}, "is QUEUED, not IN_PROGRESS"},
		{"job of another template", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: plain, CSR: string(goodCSR)}, "not made from the rotation template"},
		{"no such job", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: wire.JobIDPrefix + "nope", CSR: string(goodCSR)}, "does not exist"},
		{"not a rotation job id", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: "firmware-1", CSR: string(goodCSR)}, "not a rotation job id"},
		{"principal not a certificate id", devrot.CSREvent{Principal: "AIDAEXAMPLE", ThingName: d.thing, JobID: job, CSR: string(goodCSR)}, "principal"},
		{"wildcard thing", devrot.CSREvent{Principal: d.certID, ThingName: "+", JobID: job, CSR: string(goodCSR)}, "thing name"},
		{"not a csr", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: job, CSR: "hello"}, "parse csr"},
		{"csr of x", devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: job, CSR: string(sans)}, "CN=sensor-2"},
	}
	rec := metricstest.Capture(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.signer.Handle(context.Background(), c.ev)
			if err != nil || res.Status != "refused" || !strings.Contains(res.Reason, c.want) {
				t.Fatalf("Handle() = %+v, %v; want refused with %q", res, err, c.want)
			}
		})
	}
	capF := map[string]string{metrics.DimCapability: string(metrics.CapF)}
	if got := rec.Sum(t, metrics.Refused, capF); got != float64(len(cases)) {
		t.Errorf("Refused = %v, want one per refused CSR (%d)", got, len(cases))
	}
	if got := rec.Sum(t, metrics.Refused, map[string]string{metrics.DimCapability: string(metrics.CapF), metrics.DimReason: string(metrics.ReasonInvalidCSR)}); got != 4 {
		t.Errorf("Refused (InvalidCSR) = %v, want 4: another thing's subject, the old key, not a CSR, the CSR of x", got)
	}
	if got := rec.Sum(t, metrics.CertificatesIssued, capF); got != 0 {
		t.Errorf("CertificatesIssued = %v after refusals only", got)
	}
	if got := e.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr"); got != 2 { // the two devices' own
		t.Fatalf("CreateCertificateFromCsr calls = %d, want 2 (no certificate for a refused CSR)", got)
	}
	// An inactive sender is refused too.
	if _, err := e.iot.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{CertificateId: aws.String(d.certID), NewStatus: iottypes.CertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.signer.Handle(context.Background(), devrot.CSREvent{Principal: d.certID, ThingName: d.thing, JobID: job, CSR: string(goodCSR)}); res.Status != "refused" {
		t.Fatalf("CSR from an INACTIVE certificate = %+v, want refused", res)
	}
}

func TestRepeatedCSR(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-4")
	job := e.startJob(d.thing)
	_, csr := newCSR(t, d.thing)
	e.sign(d, job, csr)
	first := e.lastMessage(d.thing)
	// The certificate message was lost: the device sends the same CSR again and gets the same certificate.
	e.sign(d, job, csr)
	if again := e.lastMessage(d.thing); again != first {
		t.Fatalf("repeated CSR answered %+v, want %+v", again, first)
	}
	if got := e.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr"); got != 2 {
		t.Fatalf("CreateCertificateFromCsr calls = %d, want 2 (the device's own and one rotation)", got)
	}
	_, other := newCSR(t, d.thing)
	if res := e.sign(d, job, other); res.Status != "refused" || !strings.Contains(res.Reason, "another csr") {
		t.Fatalf("second CSR for the job = %+v, want refused", res)
	}
}

func TestFailedJobRevokesTheNewCertificate(t *testing.T) {
	for _, status := range []string{"FAILED", "TIMED_OUT", "CANCELED", "REJECTED"} {
		t.Run(status, func(t *testing.T) {
			e := newEnv(t)
			d := e.iotDevice("sensor-5")
			job := e.startJob(d.thing)
			_, m := e.rotate(d, job)
			rec := metricstest.Capture(t)
			ev := e.endJob(job, d.thing, status)
			for range 2 { // AWS delivers events at least once
				if res := e.complete(ev); res.Status != "aborted" && res.Status != "ignored" {
					t.Fatalf("job event = %+v", res)
				}
			}
			if got := e.status(m.CertificateID); got != "deleted" {
				t.Fatalf("new certificate after %s is %s, want deleted", status, got)
			}
			if got := e.status(d.certID); got != "ACTIVE" || !e.attached(d.thing, d.certID) {
				t.Fatalf("old certificate after %s is %s, want ACTIVE and attached", status, got)
			}
			if got := rec.Sum(t, metrics.RotationFailed, map[string]string{metrics.DimCapability: string(metrics.CapF)}); got != 1 {
				t.Fatalf("RotationFailed = %v after the event delivered twice, want 1", got)
			}
			if res := e.complete(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: d.thing, JobID: job}); res.Status != "refused" {
				t.Fatalf("confirmation after abort = %+v, want refused", res)
			}
		})
	}
}

func TestAbortOfAPrivateCACertificate(t *testing.T) {
	e := newEnv(t)
	d := e.pcaDevice("edge-8")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	e.jitr(m.CertificatePEM) // the device connected with it, then failed
	e.complete(e.endJob(job, d.thing, "FAILED"))
	if got := e.status(m.CertificateID); got != "REVOKED" || e.attached(d.thing, m.CertificateID) {
		t.Fatalf("new Private CA certificate is %s, attached %v; want REVOKED, detached", got, e.attached(d.thing, m.CertificateID))
	}
	cert, _ := pki.ParseCertificate([]byte(m.CertificatePEM))
	if _, ok := e.srv.PCA.Revoked(cert.SerialNumber.Text(16)); !ok {
		t.Fatal("new certificate not revoked in the Private CA")
	}
	if got := e.status(d.certID); got != "ACTIVE" {
		t.Fatalf("old certificate is %s, want ACTIVE", got)
	}
}

func TestJobEventBeforeTheCSR(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-6")
	job := e.startJob(d.thing)
	// Events come out of order: the failure is handled before a CSR that was sent earlier.
	e.complete(e.endJob(job, d.thing, "FAILED"))
	_, csr := newCSR(t, d.thing)
	// The signer read the execution before it failed (IN_PROGRESS): the tombstone decides.
	e.signer.IoT = staleExecution{e.signer.IoT}
	if res := e.sign(d, job, csr); res.Status != "refused" {
		t.Fatalf("CSR after the job ended = %+v, want refused", res)
	}
	if got := e.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr"); got != 1 {
		t.Fatalf("CreateCertificateFromCsr calls = %d, want 1", got)
	}
}

func TestNoConfirmationWithinTheTimeout(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-7")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	e.now = e.now.Add(devrot.DefaultConfirmTimeout - time.Minute)
	e.complete(map[string]bool{"sweep": true})
	if got := e.status(m.CertificateID); got != "ACTIVE" {
		t.Fatalf("new certificate before the timeout is %s", got)
	}
	e.now = e.now.Add(2 * time.Minute)
	e.complete(map[string]bool{"sweep": true})
	if got := e.status(m.CertificateID); got != "deleted" {
		t.Fatalf("new certificate after the timeout is %s, want deleted", got)
	}
	if x, _ := e.srv.IoT.JobExecutionOf(d.thing, job); x.Status != awsfake.JobCanceled {
		t.Fatalf("job execution after the timeout is %s, want CANCELED", x.Status)
	}
	if got := e.status(d.certID); got != "ACTIVE" {
		t.Fatalf("old certificate is %s, want ACTIVE", got)
	}
}

func TestAbortWaitsForAWSIoTToDetach(t *testing.T) {
	e := newEnv(t)
	e.srv.IoT.SetDetachDelay(awsfake.DefaultDetachDelay)
	d := e.iotDevice("sensor-8")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	raw, _ := json.Marshal(e.endJob(job, d.thing, "FAILED"))
	_, err := e.done.Handle(context.Background(), raw)
	if err == nil && e.status(m.CertificateID) != "deleted" {
		t.Fatal("abort reported success with the certificate still registered")
	}
	for i := 0; i < 5 && e.status(m.CertificateID) != "deleted"; i++ {
		e.done.Handle(context.Background(), json.RawMessage(`{"sweep":true}`)) //nolint:errcheck // retried below
	}
	if got := e.status(m.CertificateID); got != "deleted" {
		t.Fatalf("new certificate is %s after sweeps, want deleted", got)
	}
}

// A device that keeps the key of an aborted rotation must not be able to bring its Private CA certificate to life
// later: AWS IoT does not read the CA's revocation list, so an unregistered certificate would be auto-registered and
// activated by JITR on its first connection. The abort registers it in AWS IoT as REVOKED instead.
func TestAbortedPrivateCACertificateNeverPresentedCannotRegisterLater(t *testing.T) {
	e := newEnv(t)
	d := e.pcaDevice("edge-9")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	ev := e.endJob(job, d.thing, "FAILED") // the device reports FAILED and keeps the new key
	e.complete(ev)
	if got := e.status(m.CertificateID); got != "REVOKED" {
		t.Fatalf("aborted Private CA certificate is %q in AWS IoT, want REVOKED", got)
	}
	if _, err := e.srv.IoT.AutoRegister([]byte(m.CertificatePEM)); err == nil {
		t.Fatal("the aborted certificate was auto-registered on a later connection")
	}
	e.complete(ev) // delivered again: the registration is not repeated
	if got := e.status(d.certID); got != "ACTIVE" {
		t.Fatalf("old certificate is %s, want ACTIVE", got)
	}
}

// staleExecution answers DescribeJobExecution with IN_PROGRESS: what a signer read before the job failed.
type staleExecution struct{ devrot.IoTAPI }

func (staleExecution) DescribeJobExecution(_ context.Context, in *iot.DescribeJobExecutionInput, _ ...func(*iot.Options)) (*iot.DescribeJobExecutionOutput, error) {
	return &iot.DescribeJobExecutionOutput{Execution: &iottypes.JobExecution{JobId: in.JobId, Status: iottypes.JobExecutionStatusInProgress}}, nil
}

// A job execution event is a message on a topic: one that says FAILED while the execution is still IN_PROGRESS (a
// client that may publish on $aws/events/jobExecution/..., as AWS's basic job policy example allows) must not
// revoke another device's new certificate or block its confirmation.
func TestForgedJobEventChangesNothing(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-10")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	for _, status := range []string{"FAILED", "CANCELED", "TIMED_OUT", "REJECTED", "REMOVED"} {
		if res := e.complete(jobEvent(job, d.thing, status)); res.Status != "refused" {
			t.Fatalf("forged %s event = %+v, want refused", status, res)
		}
	}
	if got := e.status(m.CertificateID); got != "ACTIVE" || !e.attached(d.thing, m.CertificateID) {
		t.Fatalf("new certificate after forged events is %s, attached %v; want ACTIVE and attached", got, e.attached(d.thing, m.CertificateID))
	}
	if res := e.complete(devrot.ConfirmEvent{Principal: m.CertificateID, ThingName: d.thing, JobID: job}); res.Status != "confirmed" {
		t.Fatalf("confirmation after forged events = %+v, want confirmed", res)
	}
	// A forged event for a thing with no rotation of the job leaves no tombstone either.
	other := e.iotDevice("sensor-11")
	job2 := e.startJob(other.thing)
	if res := e.complete(jobEvent(job2, other.thing, "FAILED")); res.Status != "refused" {
		t.Fatalf("forged event before the CSR = %+v, want refused", res)
	}
	if _, csr := newCSR(t, other.thing); e.sign(other, job2, csr).Status != "issued" {
		t.Fatal("a forged event before the CSR blocked the rotation")
	}
	// Nor for a thing that has no execution of the job (yet): a continuous job gives a thing added later its own.
	late := e.iotDevice("sensor-12")
	if res := e.complete(jobEvent(job2, late.thing, "FAILED")); res.Status != "ignored" {
		t.Fatalf("event for a thing without an execution = %+v, want ignored", res)
	}
	if _, found, err := e.done.Store.Get(context.Background(), late.thing, job2); err != nil || found {
		t.Fatalf("rotation item for a thing without an execution: found %v, error %v; want none", found, err)
	}
}

// project is what an AWS IoT rule's SELECT list passes on from a message: a payload field by name, and for
// "<expression> AS <alias>" the value AWS computes (given in computed). A field the list does not name is dropped;
// SELECT * passes the payload whole.
func project(sql string, payload, computed map[string]any) json.RawMessage {
	list := strings.TrimSpace(sql[len("SELECT "):strings.Index(sql, " FROM ")])
	out := payload
	if list != "*" {
		out = map[string]any{}
		for _, item := range strings.Split(list, ",") {
			item = strings.TrimSpace(item)
			if _, alias, ok := strings.Cut(item, " AS "); ok {
				out[alias] = computed[alias]
			} else if v, ok := payload[item]; ok {
				out[item] = v
			}
		}
	}
	raw, _ := json.Marshal(out)
	return raw
}

// A message on the job-events topic that is not AWS's must not pass for a confirmation: with the new certificate's
// id (not a secret) it would retire the old certificate of a device that has not proven the new one.
func TestJobEventsRuleCannotCarryAConfirmation(t *testing.T) {
	e := newEnv(t)
	d := e.iotDevice("sensor-13")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	for _, forged := range []map[string]any{
		{"principal": m.CertificateID, "thingName": d.thing, "jobId": job},
		{"jobId": job, "sweep": true},
	} {
		raw := project(wire.JobEventsRuleSQL, forged, nil)
		res, err := e.done.Handle(context.Background(), raw)
		if err == nil && res.Status != "refused" {
			t.Fatalf("job-events rule passed %s as %+v", raw, res)
		}
	}
	if got := e.status(d.certID); got != "ACTIVE" || !e.attached(d.thing, d.certID) {
		t.Fatalf("old certificate after a forged message on the job-events topic is %s, attached %v; want ACTIVE and attached", got, e.attached(d.thing, d.certID))
	}
	// The confirm and CSR rules take the sender and the thing from AWS (principal(), topic(2)), never the payload.
	raw := project(wire.ConfirmRuleSQL, map[string]any{"principal": d.certID, "thingName": "other", "jobId": job},
		map[string]any{"principal": m.CertificateID, "thingName": d.thing})
	var ev devrot.ConfirmEvent
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Principal != m.CertificateID || ev.ThingName != d.thing {
		t.Fatalf("confirm rule passed %s", raw)
	}
}

// FuzzCompletionEvent feeds the completion function what its three rules could deliver, and anything else: a device
// can publish on the confirm topic, and the job-events topic is not documented as closed to clients. Whatever arrives,
// the function must not panic, and only a confirmation sent with the rotation's new certificate may retire the old
// one.
func FuzzCompletionEvent(f *testing.F) {
	e := newEnv(f)
	d := e.iotDevice("fuzz-sensor")
	job := e.startJob(d.thing)
	_, m := e.rotate(d, job)
	for _, v := range []any{
		devrot.ConfirmEvent{Principal: d.certID, ThingName: d.thing, JobID: job},
		jobEvent(job, d.thing, "FAILED"),
		jobEvent(job, d.thing, "SUCCEEDED"),
		map[string]any{"eventType": "JOB_EXECUTION", "principal": m.CertificateID, "thingName": d.thing, "jobId": job},
		map[string]bool{"sweep": true},
		map[string]string{"detail-type": "Scheduled Event"},
	} {
		raw, _ := json.Marshal(v)
		f.Add(raw)
	}
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"principal":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		before := e.status(d.certID)
		_, _ = e.done.Handle(context.Background(), raw)
		if after := e.status(d.certID); after == before {
			return
		}
		var ev struct {
			Principal string `json:"principal"`
		}
		if json.Unmarshal(raw, &ev) != nil || ev.Principal != m.CertificateID {
			t.Fatalf("old certificate went from %s to %s after %q, which was not sent with the new certificate", before, e.status(d.certID), raw)
		}
	})
}
