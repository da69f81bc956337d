package main

// The end-to-end harness: AWS IoT as a device sees it, built from the fakes and mosquitto.
//
//	device-agent ──mTLS──▶ front ──TLS──▶ mosquitto ◀── harness client (Jobs responder, data-plane forwarder)
//
// The front does what AWS IoT's gateway does and mosquitto cannot: it accepts a client certificate only when it is
// registered and ACTIVE in the IoT fake (an unknown certificate of a registered CA with auto-registration is
// registered, handed to Just-in-Time Registration, and refused, as AWS does), and it reads the MQTT packets the
// device sends: a PUBLISH on a rule's topic invokes the rule's function asynchronously with principal() = the id of
// the certificate of that connection. Everything else passes to mosquitto unchanged. The harness client answers the
// Jobs MQTT API from the IoT fake's jobs (https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html),
// forwards what the functions publish through the data plane to mosquitto, and delivers the job execution events
// to the completion function (each twice: AWS delivers at least once).

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot"
	"github.com/iotcert/iotcert/internal/devrot/devrottest"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

const policyName = devrottest.PolicyName

// cloud is the harness.
type cloud struct {
	t        testing.TB
	srv      *awsfake.Server
	iot      *iot.Client
	pca      *acmpca.Client
	caID     string
	template string
	signer   *devrot.Signer
	done     *devrot.Completion
	front    net.Listener
	frontCA  []byte // PEM: the CA of the front's server certificate (the device's -ca)
	broker   *testsvc.Broker
	client   mqtt.Client

	mu          sync.Mutex
	connections []connection // every handshake the front judged, in order
	invocations sync.WaitGroup

	// Faults.
	dropCertificates atomic.Int32 // certificate messages to drop before forwarding
	holdConfirm      atomic.Bool  // confirmations reach no function
	holdUpdates      atomic.Bool  // job updates get no answer
	forwarded        atomic.Int32 // data-plane messages forwarded
	eventsDelivered  atomic.Int32
}

// connection is one TLS handshake at the front.
type connection struct {
	at       time.Time
	certID   string
	accepted bool
	// othersActive counts the other ACTIVE certificates of the same thing at that moment.
	othersActive int
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	e := devrottest.New(t)
	e.Srv.PCA.SetPendingGets(0)
	c := &cloud{t: t, srv: e.Srv, iot: e.IoT, pca: e.PCA, caID: e.CAID, template: e.Template, signer: e.Signer, done: e.Completion}
	var err error

	// Mosquitto trusts only the front's client certificate; the device trusts only the front's server certificate.
	ca2 := newCA(t, "harness CA")
	c.frontCA = ca2.pem
	c.broker = testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: ca2.pem})
	toBroker := c.broker.TLSConfig(ca2.leaf(t, "front", false))
	serverCert := ca2.leaf(t, "localhost", true)
	c.front, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12,
		VerifyConnection: c.admit,
	})
	if err != nil {
		t.Fatal(err)
	}
	go c.serveFront(toBroker)
	t.Cleanup(func() { c.front.Close() })

	c.client = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(c.broker.URL()).SetClientID("harness").
		SetTLSConfig(c.broker.TLSConfig(ca2.leaf(t, "harness", false))).SetOrderMatters(false))
	if tok := c.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("harness connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.client.Disconnect(100) })
	if tok := c.client.SubscribeMultiple(map[string]byte{"$aws/things/+/jobs/start-next": 1, "$aws/things/+/jobs/+/update": 1}, c.jobsAPI); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("harness subscribe: %v", tok.Error())
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go c.pump(stop, finished)
	t.Cleanup(func() { close(stop); <-finished; c.invocations.Wait() })
	return c
}

// admit is the front's certificate check, the way AWS IoT judges a client certificate.
func (c *cloud) admit(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	id := pki.CertificateID(leaf.Raw)
	cert, ok := c.srv.IoT.Certificate(id)
	accepted := ok && cert.Status == "ACTIVE"
	others := 0
	for _, p := range c.srv.IoT.ThingPrincipals(leaf.Subject.CommonName) {
		if o := p[strings.LastIndex(p, "/")+1:]; o != id {
			if oc, ok := c.srv.IoT.Certificate(o); ok && oc.Status == "ACTIVE" {
				others++
			}
		}
	}
	c.mu.Lock()
	c.connections = append(c.connections, connection{at: time.Now(), certID: id, accepted: accepted, othersActive: others})
	c.mu.Unlock()
	if accepted {
		return nil
	}
	if !ok {
		var chain []byte
		for _, pc := range cs.PeerCertificates {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pc.Raw})...)
		}
		if reg, err := c.srv.IoT.AutoRegister(chain); err == nil {
			c.invocations.Add(1)
			go func() { defer c.invocations.Done(); c.jitr(reg.CertificateID, leaf.Subject.CommonName) }()
		}
	}
	return fmt.Errorf("certificate %s refused", id)
}

// jitr does what the JITR function does for a certificate of our CA (lambdas/jitr): thing, attachment, policy,
// activation last.
func (c *cloud) jitr(id, thing string) {
	ctx := context.Background()
	if _, ok := c.srv.IoT.Thing(thing); !ok {
		_, _ = c.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(thing)})
	}
	cert, _ := c.srv.IoT.Certificate(id)
	_, _ = c.iot.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(cert.ARN)})
	_, _ = c.iot.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(policyName), Target: aws.String(cert.ARN)})
	_, _ = c.iot.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusActive})
}

func (c *cloud) serveFront(toBroker *tls.Config) {
	for {
		conn, err := c.front.Accept()
		if err != nil {
			return
		}
		go c.proxy(conn.(*tls.Conn), toBroker)
	}
}

// proxy pipes one device connection to mosquitto, reading the device's packets on the way.
func (c *cloud) proxy(dev *tls.Conn, toBroker *tls.Config) {
	defer dev.Close()
	if err := dev.Handshake(); err != nil {
		return
	}
	principal := pki.CertificateID(dev.ConnectionState().PeerCertificates[0].Raw)
	up, err := tls.Dial("tcp", c.broker.Addr, toBroker)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(dev, up); dev.Close() }()
	r := bufio.NewReader(dev)
	for {
		pkt, err := readPacket(r)
		if err != nil {
			return
		}
		if pkt[0]>>4 == 3 { // PUBLISH
			if topic, payload, ok := parsePublish(pkt); ok {
				c.rule(principal, topic, payload)
			}
		}
		if _, err := up.Write(pkt); err != nil {
			return
		}
	}
}

// rule invokes the function whose rule matches the topic, asynchronously, with the rule's SQL applied.
func (c *cloud) rule(principal, topic string, payload []byte) {
	parts := strings.Split(topic, "/")
	if len(parts) != 4 || parts[0] != "iotcert" || parts[2] != "rotation" {
		return
	}
	var body struct {
		JobID string `json:"jobId"`
		CSR   string `json:"csr"`
	}
	_ = json.Unmarshal(payload, &body)
	switch parts[3] {
	case "csr":
		ev := devrot.CSREvent{Principal: principal, ThingName: parts[1], JobID: body.JobID, CSR: body.CSR}
		c.invoke(func(ctx context.Context) error { _, err := c.signer.Handle(ctx, ev); return err })
	case "confirm":
		if c.holdConfirm.Load() {
			return
		}
		raw, _ := json.Marshal(devrot.ConfirmEvent{Principal: principal, ThingName: parts[1], JobID: body.JobID})
		c.invoke(func(ctx context.Context) error { _, err := c.done.Handle(ctx, raw); return err })
	}
}

// invoke runs a function as an asynchronous Lambda invocation: up to three attempts.
func (c *cloud) invoke(f func(context.Context) error) {
	c.invocations.Add(1)
	go func() {
		defer c.invocations.Done()
		for range 3 {
			if f(context.Background()) == nil {
				return
			}
		}
	}()
}

// pump forwards data-plane messages to mosquitto and delivers job events to the completion function.
func (c *cloud) pump(stop <-chan struct{}, finished chan<- struct{}) {
	defer close(finished)
	sent, events := 0, 0
	for {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		pub := c.srv.IoT.Published()
		for ; sent < len(pub); sent++ {
			m := pub[sent]
			if strings.HasSuffix(m.Topic, "/rotation/certificate") && strings.Contains(string(m.Payload), `"issued"`) && c.dropCertificates.Load() > 0 {
				c.dropCertificates.Add(-1)
				continue
			}
			c.client.Publish(m.Topic, 1, false, m.Payload).WaitTimeout(5 * time.Second)
			c.forwarded.Add(1)
		}
		evs := c.srv.IoT.JobEvents()
		for ; events < len(evs); events++ {
			raw := json.RawMessage(evs[events].Payload)
			for range 2 {
				c.invoke(func(ctx context.Context) error { _, err := c.done.Handle(ctx, raw); return err })
			}
			c.eventsDelivered.Add(1)
		}
	}
}

// jobsAPI answers start-next and update as AWS IoT's Jobs service does over MQTT.
func (c *cloud) jobsAPI(cl mqtt.Client, m mqtt.Message) {
	parts := strings.Split(m.Topic(), "/")
	thing := parts[2]
	var req struct {
		ClientToken     string            `json:"clientToken"`
		Status          string            `json:"status"`
		StatusDetails   map[string]string `json:"statusDetails"`
		ExpectedVersion *int64            `json:"expectedVersion"`
	}
	_ = json.Unmarshal(m.Payload(), &req)
	now := time.Now().Unix()
	reply := func(suffix string, body map[string]any) {
		body["clientToken"], body["timestamp"] = req.ClientToken, now
		b, _ := json.Marshal(body)
		cl.Publish(m.Topic()+"/"+suffix, 1, false, b)
	}
	rejected := func(err error) {
		var je *awsfake.JobsError
		code := "InternalError"
		if errors.As(err, &je) {
			code = je.Code
		}
		reply("rejected", map[string]any{"code": code, "message": err.Error()})
	}
	if parts[4] == "start-next" {
		x, ok, err := c.srv.IoT.StartNextPendingJobExecution(thing, req.StatusDetails)
		if err != nil {
			rejected(err)
			return
		}
		if !ok {
			reply("accepted", map[string]any{})
			return
		}
		reply("accepted", map[string]any{"execution": map[string]any{
			"jobId": x.JobID, "thingName": thing, "status": x.Status, "jobDocument": json.RawMessage(x.Document),
			"queuedAt": x.QueuedAt, "startedAt": x.StartedAt, "lastUpdatedAt": x.LastUpdatedAt,
			"versionNumber": x.VersionNumber, "executionNumber": x.ExecutionNumber,
		}})
		return
	}
	if c.holdUpdates.Load() {
		return
	}
	x, err := c.srv.IoT.UpdateJobExecution(thing, parts[4], req.Status, req.StatusDetails, req.ExpectedVersion)
	if err != nil {
		rejected(err)
		return
	}
	reply("accepted", map[string]any{"executionState": map[string]any{"status": x.Status, "statusDetails": x.StatusDetails, "versionNumber": x.VersionNumber}})
}

// readPacket reads one MQTT control packet: fixed header, remaining length, body.
func readPacket(r *bufio.Reader) ([]byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	pkt := []byte{h}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		pkt = append(pkt, b)
		n += int(b&127) * mult
		mult *= 128
		if b&128 == 0 {
			break
		}
		if i == 3 {
			return nil, errors.New("malformed remaining length")
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(pkt, body...), nil
}

// parsePublish reads the topic and payload of a PUBLISH packet.
func parsePublish(pkt []byte) (string, []byte, bool) {
	qos := (pkt[0] >> 1) & 3
	i := 1
	for pkt[i]&128 != 0 {
		i++
	}
	body := pkt[i+1:]
	if len(body) < 2 {
		return "", nil, false
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+tl {
		return "", nil, false
	}
	topic, rest := string(body[2:2+tl]), body[2+tl:]
	if qos > 0 {
		if len(rest) < 2 {
			return "", nil, false
		}
		rest = rest[2:]
	}
	return topic, rest, true
}

// A throw-away CA for the front and the broker.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) leaf(t testing.TB, cn string, server bool) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type pkiSigner = crypto.Signer

func newPool(pemData []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemData)
	return p
}
