package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/generations"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

var agentBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "device-agent-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		agentBin = filepath.Join(dir, "device-agent")
		if out, err := exec.Command("go", "build", "-o", agentBin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build device-agent: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	testsvc.StopAll()
	os.Exit(code)
}

// device is one device on disk: its generation directory and its first certificate.
type device struct {
	thing, dir, oldID string
}

// iotDevice provisions a device as the vending API and the per-thing stack do: AWS IoT signs its CSR.
func (c *cloud) iotDevice(thing string) device {
	c.t.Helper()
	ctx := context.Background()
	if _, err := c.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(thing)}); err != nil {
		c.t.Fatal(err)
	}
	key, _ := pki.GenerateKey(pki.KeyECP256)
	csr, _ := pki.NewDeviceCSR(key, thing)
	out, err := c.iot.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(string(csr)), SetAsActive: true})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.iot.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(policyName), Target: out.CertificateArn}); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.iot.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(thing), Principal: out.CertificateArn}); err != nil {
		c.t.Fatal(err)
	}
	return c.install(thing, aws.ToString(out.CertificatePem), key)
}

// pcaDevice provisions a multi-region device: our Private CA signs it, JITR registers it on first connect.
func (c *cloud) pcaDevice(thing string) device {
	c.t.Helper()
	ctx := context.Background()
	key, _ := pki.GenerateKey(pki.KeyECP256)
	csr, _ := pki.NewDeviceCSR(key, thing)
	issued, err := c.pca.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: aws.String(c.srv.PCA.CAARN()), Csr: csr,
		SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa, Validity: &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
	if err != nil {
		c.t.Fatal(err)
	}
	got, err := c.pca.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(c.srv.PCA.CAARN()), CertificateArn: issued.CertificateArn})
	if err != nil {
		c.t.Fatal(err)
	}
	d := c.install(thing, aws.ToString(got.Certificate)+"\n"+aws.ToString(got.CertificateChain)+"\n", key)
	c.probe(d, "") // first connect: registered, refused
	c.waitFor("JITR", func() bool { return c.status(d.oldID) == "ACTIVE" })
	return d
}

func (c *cloud) install(thing, certPEM string, key pkiSigner) device {
	c.t.Helper()
	dir := c.t.TempDir()
	keyPEM, _ := pki.EncodePrivateKey(key)
	cert, _ := pki.ParseCertificate([]byte(certPEM))
	write(c.t, filepath.Join(dir, "in.pem"), certPEM)
	write(c.t, filepath.Join(dir, "in.key"), string(keyPEM))
	if out, err := exec.Command(agentBin, "init", "-dir", filepath.Join(dir, "certs"), "-cert", filepath.Join(dir, "in.pem"), "-key", filepath.Join(dir, "in.key")).CombinedOutput(); err != nil {
		c.t.Fatalf("device-agent init: %v\n%s", err, out)
	}
	return device{thing: thing, dir: filepath.Join(dir, "certs"), oldID: pki.CertificateID(cert.Raw)}
}

var jobSeq atomic.Int64

func (c *cloud) job(thing string) string {
	c.t.Helper()
	id := fmt.Sprintf("%sthing-%d-%d", wire.JobIDPrefix, time.Now().UnixNano()%1e6, jobSeq.Add(1))
	if _, err := c.iot.CreateJob(context.Background(), &iot.CreateJobInput{JobId: aws.String(id), JobTemplateArn: aws.String(c.template),
		Targets: []string{"arn:aws:iot:us-east-1:123456789012:thing/" + thing}}); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// agent starts device-agent rotate for the device.
func (c *cloud) agent(d device, extra ...string) *exec.Cmd {
	c.t.Helper()
	caFile := filepath.Join(filepath.Dir(d.dir), "front-ca.pem")
	write(c.t, caFile, string(c.frontCA))
	args := append([]string{"rotate", "-dir", d.dir, "-thing", d.thing, "-endpoint", c.front.Addr().String(), "-ca", caFile,
		"-server-name", "localhost", "-certificate-timeout", "6s", "-confirm-timeout", "6s", "-connect-attempts", "10",
		"-retry-delay", "100ms"}, extra...)
	cmd := exec.Command(agentBin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if c.t.Failed() {
			c.t.Logf("device-agent %s:\n%s", d.thing, out.String())
		}
	})
	return cmd
}

// rotate runs device-agent rotate to the end and returns its exit code.
func (c *cloud) rotate(d device, extra ...string) int {
	c.t.Helper()
	cmd := c.agent(d, extra...)
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return 0
}

// killAt kills the agent once its state file reaches phase.
func (c *cloud) killAt(d device, phase string, cmd *exec.Cmd) {
	c.t.Helper()
	c.waitFor("phase "+phase, func() bool { return c.phase(d) == phase })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func (c *cloud) phase(d device) string {
	b, err := os.ReadFile(filepath.Join(d.dir, stateFile))
	if err != nil {
		return ""
	}
	var st state
	_ = json.Unmarshal(b, &st)
	return st.Phase
}

func (c *cloud) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cloud) status(id string) string {
	cert, ok := c.srv.IoT.Certificate(id)
	if !ok {
		return "deleted"
	}
	return cert.Status
}

// probe connects through the front with a generation of the device ("" = current) and says whether AWS IoT took it.
func (c *cloud) probe(d device, gen string) bool {
	c.t.Helper()
	dir := generations.Dir{Path: d.dir}
	if gen == "" {
		gen, _ = dir.Current()
	}
	certPEM, _ := dir.Read(gen, generations.CertFile)
	keyPEM, _ := dir.Read(gen, generations.KeyFile)
	return c.probePair(certPEM, keyPEM, "probe-"+d.thing)
}

func (c *cloud) probePair(certPEM, keyPEM []byte, clientID string) bool {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		c.t.Fatal(err)
	}
	cl := c.deviceClient(pair, clientID)
	if cl == nil {
		return false
	}
	cl.Disconnect(50)
	return true
}

func (c *cloud) deviceClient(pair tls.Certificate, clientID string) mqtt.Client {
	pool := newPool(c.frontCA)
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + c.front.Addr().String()).SetClientID(clientID).
		SetTLSConfig(&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second))
	tok := cl.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return nil
	}
	return cl
}

// working lists the ACTIVE certificates attached to the thing.
func (c *cloud) working(thing string) []string {
	var out []string
	for _, p := range c.srv.IoT.ThingPrincipals(thing) {
		id := p[strings.LastIndex(p, "/")+1:]
		if c.status(id) == "ACTIVE" {
			out = append(out, id)
		}
	}
	return out
}

// assertRotated checks the end of a rotation: the device's current generation is the only working certificate,
// the old one is refused, the new one was accepted while the old one still worked, the job SUCCEEDED, and no
// rotation state is left on the device.
func (c *cloud) assertRotated(d device, job string) string {
	c.t.Helper()
	c.settle()
	cur, err := generations.Dir{Path: d.dir}.Current()
	if err != nil {
		c.t.Fatal(err)
	}
	certPEM, _ := generations.Dir{Path: d.dir}.Read(cur, generations.CertFile)
	cert, _ := pki.ParseCertificate(certPEM)
	newID := pki.CertificateID(cert.Raw)
	if newID == d.oldID {
		c.t.Fatalf("%s: current generation still holds the old certificate", d.thing)
	}
	if got := c.working(d.thing); len(got) != 1 || got[0] != newID {
		c.t.Fatalf("%s: working certificates = %v, want only the new one %s", d.thing, got, newID)
	}
	if c.status(d.oldID) != "INACTIVE" {
		c.t.Fatalf("%s: old certificate is %s, want INACTIVE during the grace period", d.thing, c.status(d.oldID))
	}
	if !c.probe(d, "") {
		c.t.Fatalf("%s: the new certificate does not connect", d.thing)
	}
	// The old certificate stops working only after the new one has connected: at the new one's first accepted
	// connection, the old one was still ACTIVE.
	c.mu.Lock()
	first := -1
	for i, cn := range c.connections {
		if cn.certID == newID && cn.accepted {
			first = i
			break
		}
	}
	var at connection
	if first >= 0 {
		at = c.connections[first]
	}
	c.mu.Unlock()
	if first < 0 {
		c.t.Fatalf("%s: the new certificate never connected", d.thing)
	}
	if at.othersActive != 1 {
		c.t.Fatalf("%s: when the new certificate first connected, %d other certificates were ACTIVE, want 1 (the old one)", d.thing, at.othersActive)
	}
	if x, _ := c.srv.IoT.JobExecutionOf(d.thing, job); x.Status != awsfake.JobSucceeded {
		c.t.Fatalf("%s: job execution is %s, want SUCCEEDED", d.thing, x.Status)
	}
	if _, err := os.Stat(filepath.Join(d.dir, stateFile)); !errors.Is(err, os.ErrNotExist) {
		c.t.Fatalf("%s: rotation state left on the device", d.thing)
	}
	if _, err := os.Stat(filepath.Join(d.dir, keyFile)); !errors.Is(err, os.ErrNotExist) {
		c.t.Fatalf("%s: pending key left on the device", d.thing)
	}
	return newID
}

// settle waits for the functions invoked so far and for the pump to drain.
func (c *cloud) settle() {
	time.Sleep(50 * time.Millisecond)
	c.invocations.Wait()
	time.Sleep(50 * time.Millisecond)
	c.invocations.Wait()
}

// sweepAfterGrace runs the scheduled sweep as if the grace period had passed.
func (c *cloud) sweepAfterGrace() {
	c.t.Helper()
	c.done.Now = func() time.Time { return time.Now().Add(devrot7Days + time.Hour) }
	defer func() { c.done.Now = nil }()
	if _, err := c.done.Handle(context.Background(), json.RawMessage(`{"sweep":true}`)); err != nil {
		c.t.Fatalf("sweep: %v", err)
	}
}

const devrot7Days = 7 * 24 * time.Hour

func TestRotateMultiRegionAndVendingDevices(t *testing.T) {
	c := newCloud(t)
	edge := c.pcaDevice("edge-1")
	sensor := c.iotDevice("sensor-1")
	jobs := map[string]string{edge.thing: c.job(edge.thing), sensor.thing: c.job(sensor.thing)}
	for _, d := range []device{edge, sensor} {
		// The old certificate works until the new one has connected and confirmed.
		if !c.probe(d, "") {
			t.Fatalf("%s: the first certificate does not connect", d.thing)
		}
		if code := c.rotate(d); code != 0 {
			t.Fatalf("%s: device-agent rotate exit %d, want 0", d.thing, code)
		}
		c.assertRotated(d, jobs[d.thing])
		if c.probePair(readGen(t, d, oldGen(d)), readKey(t, d, oldGen(d)), "probe-old") {
			t.Fatalf("%s: the old certificate still connects after the rotation", d.thing)
		}
	}
	if code := c.rotate(sensor); code != 3 {
		t.Fatalf("rotate with no job pending exit %d, want 3", code)
	}
	c.sweepAfterGrace()
	if got := c.status(sensor.oldID); got != "deleted" {
		t.Fatalf("AWS IoT certificate after the grace period is %s, want deleted", got)
	}
	if got := c.status(edge.oldID); got != "REVOKED" {
		t.Fatalf("Private CA certificate after the grace period is %s, want REVOKED (kept so that JITR cannot register it again)", got)
	}
	if c.eventsDelivered.Load() < 2 {
		t.Fatalf("job events delivered = %d, want the two SUCCEEDED events (each twice)", c.eventsDelivered.Load())
	}
}

func oldGen(d device) string { return d.oldID[:16] }

func readGen(t *testing.T, d device, gen string) []byte {
	b, err := generations.Dir{Path: d.dir}.Read(gen, generations.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readKey(t *testing.T, d device, gen string) []byte {
	b, err := generations.Dir{Path: d.dir}.Read(gen, generations.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAgentKilledAndRestarted(t *testing.T) {
	c := newCloud(t)
	cases := []struct {
		name  string
		phase string
		hold  func(bool)
	}{
		{"after the CSR", phaseCSR, func(on bool) {
			if on {
				c.dropCertificates.Store(1000)
			} else {
				c.dropCertificates.Store(0)
			}
		}},
		{"after the certificate arrives", phaseWritten, c.holdConfirm.Store},
		{"after the switch, before the report", phaseSwitched, c.holdUpdates.Store},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			d := c.pcaDevice(fmt.Sprintf("edge-k%d", i))
			if i%2 == 1 {
				d = c.iotDevice(fmt.Sprintf("sensor-k%d", i))
			}
			job := c.job(d.thing)
			tc.hold(true)
			cmd := c.agent(d)
			c.killAt(d, tc.phase, cmd)
			if tc.phase == phaseCSR {
				c.waitFor("the certificate to be issued", func() bool { return c.issued(d.thing) })
			}
			c.settle()
			tc.hold(false)
			before := c.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr") + c.srv.PCA.Issued()
			if code := c.rotate(d); code != 0 {
				t.Fatalf("restarted device-agent exit %d, want 0", code)
			}
			c.assertRotated(d, job)
			if after := c.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr") + c.srv.PCA.Issued(); after != before {
				t.Fatalf("the restart issued %d more certificates, want none (the same CSR gets the same certificate)", after-before)
			}
		})
	}
}

// issued reports whether a certificate for the thing was published.
func (c *cloud) issued(thing string) bool {
	for _, m := range c.srv.IoT.Published() {
		if m.Topic == wire.CertificateTopic(thing) && strings.Contains(string(m.Payload), `"issued"`) {
			return true
		}
	}
	return false
}

func TestCertificateMessageLost(t *testing.T) {
	c := newCloud(t)
	d := c.iotDevice("sensor-lost")
	job := c.job(d.thing)
	c.dropCertificates.Store(1)
	if code := c.rotate(d, "-certificate-timeout", "3s"); code != 0 {
		t.Fatalf("device-agent exit %d, want 0", code)
	}
	c.assertRotated(d, job)
	if got := c.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr"); got != 2 {
		t.Fatalf("CreateCertificateFromCsr calls = %d, want 2 (provisioning and one rotation)", got)
	}
}

// Attacks through the front: a CSR for another thing's topic, and a confirmation replayed with the old certificate.
func TestForeignCSRAndReplayedConfirmation(t *testing.T) {
	c := newCloud(t)
	victim := c.iotDevice("sensor-v")
	intruder := c.iotDevice("sensor-i")
	job := c.job(victim.thing)
	c.srv.IoT.StartNextPendingJobExecution(victim.thing, nil) //nolint:errcheck // the victim's job is running

	// The intruder publishes a CSR for its own key on the victim's topic, with its own certificate.
	pair, _ := tls.X509KeyPair(readGen(t, intruder, oldGen(intruder)), readKey(t, intruder, oldGen(intruder)))
	cl := c.deviceClient(pair, intruder.thing)
	if cl == nil {
		t.Fatal("intruder cannot connect")
	}
	key, _ := pki.GenerateKey(pki.KeyECP256)
	for _, cn := range []string{victim.thing, intruder.thing} {
		csr, _ := pki.NewCSR(key, cn)
		b, _ := json.Marshal(wire.CSRMessage{JobID: job, CSR: string(csr)})
		cl.Publish(wire.CSRTopic(victim.thing), 1, false, b).WaitTimeout(5 * time.Second)
	}
	cl.Disconnect(50)
	c.settle()
	if got := c.srv.Calls(awsfake.ServiceIoT, "CreateCertificateFromCsr"); got != 2 {
		t.Fatalf("CreateCertificateFromCsr calls = %d, want 2: a CSR sent with another thing's certificate issues nothing", got)
	}

	// The victim rotates; before its confirmation, the old certificate sends one.
	c.holdConfirm.Store(true)
	cmd := c.agent(victim)
	c.killAt(victim, phaseWritten, cmd)
	c.holdConfirm.Store(false)
	pair, _ = tls.X509KeyPair(readGen(t, victim, oldGen(victim)), readKey(t, victim, oldGen(victim)))
	old := c.deviceClient(pair, victim.thing)
	if old == nil {
		t.Fatal("old certificate cannot connect before the confirmation")
	}
	b, _ := json.Marshal(wire.ConfirmMessage{JobID: job})
	old.Publish(wire.ConfirmTopic(victim.thing), 1, false, b).WaitTimeout(5 * time.Second)
	old.Disconnect(50)
	c.settle()
	if got := c.status(victim.oldID); got != "ACTIVE" {
		t.Fatalf("after a confirmation by the old certificate it is %s, want ACTIVE", got)
	}
	if code := c.rotate(victim); code != 0 {
		t.Fatalf("device-agent exit %d, want 0", code)
	}
	c.assertRotated(victim, job)
	if got := c.working(intruder.thing); len(got) != 1 || got[0] != intruder.oldID {
		t.Fatalf("intruder's working certificates = %v, want its own only", got)
	}
}

// A job canceled while the device waits: the agent reports FAILED, the new certificate is revoked, the old kept.
func TestCanceledJobKeepsTheOldCertificate(t *testing.T) {
	c := newCloud(t)
	d := c.iotDevice("sensor-c")
	job := c.job(d.thing)
	c.dropCertificates.Store(1000)
	cmd := c.agent(d, "-certificate-timeout", "3s")
	c.waitFor("the certificate to be issued", func() bool { return c.issued(d.thing) })
	if _, err := c.iot.CancelJobExecution(context.Background(), &iot.CancelJobExecutionInput{JobId: aws.String(job), ThingName: aws.String(d.thing), Force: true}); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("device-agent = %v, want exit 1", err)
	}
	c.settle()
	if got := c.working(d.thing); len(got) != 1 || got[0] != d.oldID {
		t.Fatalf("working certificates = %v, want the old one only", got)
	}
	if n := len(c.srv.IoT.Certificates()); n != 1 {
		t.Fatalf("registry holds %d certificates, want 1 (nothing orphaned)", n)
	}
	if cur, _ := (generations.Dir{Path: d.dir}).Current(); cur != oldGen(d) {
		t.Fatalf("current generation = %s, want the old one", cur)
	}
	if !c.probe(d, "") {
		t.Fatal("the old certificate no longer connects")
	}
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// device-agent run waits for rotation jobs (start-next every -poll) and rotates each as it comes.
func TestRunRotatesJobsAsTheyCome(t *testing.T) {
	c := newCloud(t)
	d := c.iotDevice("sensor-run")
	caFile := filepath.Join(filepath.Dir(d.dir), "front-ca.pem")
	write(t, caFile, string(c.frontCA))
	cmd := exec.Command(agentBin, "run", "-dir", d.dir, "-thing", d.thing, "-endpoint", c.front.Addr().String(), "-ca", caFile,
		"-server-name", "localhost", "-poll", "300ms", "-certificate-timeout", "6s", "-confirm-timeout", "6s")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("device-agent run:\n%s", out.String())
		}
	}()
	time.Sleep(500 * time.Millisecond) // the agent finds nothing to do first
	first := c.job(d.thing)
	c.waitFor("the first rotation", func() bool { x, _ := c.srv.IoT.JobExecutionOf(d.thing, first); return x.Status == awsfake.JobSucceeded })
	newID := c.assertRotated(d, first)
	second := c.job(d.thing)
	c.waitFor("the second rotation", func() bool {
		x, _ := c.srv.IoT.JobExecutionOf(d.thing, second)
		return x.Status == awsfake.JobSucceeded
	})
	d.oldID = newID
	c.assertRotated(d, second)
}
