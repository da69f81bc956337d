package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/capability"
)

// caSubject is the seed's CA subject.
var caSubject = pkix.Name{
	Country: []string{"DE"}, Organization: []string{"AWS"}, OrganizationalUnit: []string{"IoT"},
	Province: []string{"Berlin"}, Locality: []string{"Berlin"}, CommonName: "Multi Region CA",
}

type testCA struct {
	key  crypto.Signer
	cert *x509.Certificate
	pem  []byte
}

func newTestCA(t testing.TB, subject pkix.Name) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// deviceTemplate is what the Private CA's EndEntityClientAuthCertificate template issues.
func deviceTemplate(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// issue signs tmpl for a new P-256 key (or pub, when given) and returns the PEM.
func (ca *testCA) issue(t testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) []byte {
	t.Helper()
	if pub == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = k.Public()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

type fixture struct {
	t    testing.TB
	srv  *awsfake.Server
	iot  *iot.Client
	ca   *testCA
	caID string
	h    *Handler
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const policyDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],` +
	`"Resource":["arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"]}]}`

// setup starts the IoT fake, registers our CA (SNI_ONLY, active, auto-registration on) the way the stack does,
// defines the policy, and builds the handler on the real SDK with a retryer that backs off briefly.
func setup(t testing.TB) *fixture {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}))
	if err != nil {
		t.Fatal(err)
	}
	client := iot.NewFromConfig(cfg)
	ca := newTestCA(t, caSubject)
	out, err := client.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(string(ca.pem)), CertificateMode: iottypes.CertificateModeSniOnly,
		SetAsActive: true, AllowAutoRegistration: true,
	})
	if err != nil {
		t.Fatalf("RegisterCACertificate() error = %v", err)
	}
	srv.IoT.PutPolicy(DefaultPolicyName, policyDoc)
	logs := &syncBuffer{}
	f := &fixture{t: t, srv: srv, iot: client, ca: ca, caID: aws.ToString(out.CertificateId), logs: logs}
	f.h = &Handler{
		IoT:    client,
		Config: Config{CACertificateID: f.caID, PolicyName: DefaultPolicyName, MinRSABits: 2048},
		Now:    time.Now,
		Log:    slog.New(slog.NewJSONHandler(logs, nil)),
	}
	return f
}

// connect is a device presenting certPEM: AWS IoT auto-registers it and publishes the event, which reaches the
// function as JSON.
func (f *fixture) connect(certPEM []byte) Event {
	f.t.Helper()
	reg, err := f.srv.IoT.AutoRegister(certPEM)
	if err != nil {
		f.t.Fatalf("AutoRegister() error = %v", err)
	}
	return f.asEvent(reg)
}

func (f *fixture) asEvent(reg awsfake.Registration) Event {
	f.t.Helper()
	b, err := json.Marshal(reg)
	if err != nil {
		f.t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		f.t.Fatal(err)
	}
	return ev
}

// forced registers certPEM under our CA without AWS's own checks, for certificates that should never get this far.
func (f *fixture) forced(certPEM []byte) Event {
	f.t.Helper()
	reg, err := f.srv.IoT.PutCertificateUnderCA(certPEM, f.caID)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.asEvent(reg)
}

func (f *fixture) status(id string) string {
	f.t.Helper()
	c, ok := f.srv.IoT.Certificate(id)
	if !ok {
		f.t.Fatalf("certificate %s does not exist", id)
	}
	return c.Status
}

// assertRegistered checks the end state of a good certificate: thing, attachment, policy, ACTIVE.
func (f *fixture) assertRegistered(id, thing string) {
	f.t.Helper()
	c, _ := f.srv.IoT.Certificate(id)
	if c.Status != "ACTIVE" {
		f.t.Errorf("certificate status = %s, want ACTIVE", c.Status)
	}
	if _, ok := f.srv.IoT.Thing(thing); !ok {
		f.t.Errorf("thing %s does not exist", thing)
	}
	if got := f.srv.IoT.ThingPrincipals(thing); !slices.Equal(got, []string{c.ARN}) {
		f.t.Errorf("ThingPrincipals(%s) = %v, want [%s]", thing, got, c.ARN)
	}
	if got := f.srv.IoT.PrincipalPolicies(c.ARN); !slices.Equal(got, []string{DefaultPolicyName}) {
		f.t.Errorf("PrincipalPolicies = %v, want [%s]", got, DefaultPolicyName)
	}
}

// assertUntouched checks that nothing was created or activated for a certificate.
func (f *fixture) assertUntouched(id, wantStatus string) {
	f.t.Helper()
	c, _ := f.srv.IoT.Certificate(id)
	if c.Status != wantStatus {
		f.t.Errorf("certificate status = %s, want %s", c.Status, wantStatus)
	}
	if things := f.srv.IoT.Things(); len(things) != 0 {
		f.t.Errorf("Things() = %v, want none", things)
	}
	if got := f.srv.IoT.PrincipalPolicies(c.ARN); len(got) != 0 {
		f.t.Errorf("PrincipalPolicies = %v, want none", got)
	}
}

func TestGoodCertificate(t *testing.T) {
	f := setup(t)
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-mr04"), nil))
	if ev.CertificateStatus != "PENDING_ACTIVATION" {
		t.Fatalf("event status = %s, want PENDING_ACTIVATION", ev.CertificateStatus)
	}
	res, err := f.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	want := Result{Status: "activated", CertificateID: ev.CertificateID, ThingName: "thing-mr04"}
	if res != want {
		t.Errorf("Handle() = %+v, want %+v", res, want)
	}
	f.assertRegistered(ev.CertificateID, "thing-mr04")
	if strings.Contains(f.logs.String(), "BEGIN CERTIFICATE") {
		t.Errorf("log holds a certificate PEM: %s", f.logs.String())
	}
}

func TestRSAAndChainedCertificates(t *testing.T) {
	f := setup(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// The device sends its certificate followed by the CA's, as the seed's notebook writes it.
	chained := append(f.ca.issue(t, deviceTemplate("rsa-device"), key.Public()), f.ca.pem...)
	ev := f.connect(chained)
	if _, err := f.h.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	f.assertRegistered(ev.CertificateID, "rsa-device")
}

func TestOtherCAIgnored(t *testing.T) {
	f := setup(t)
	other := newTestCA(t, pkix.Name{CommonName: "Another CA"})
	if _, err := f.iot.RegisterCACertificate(context.Background(), &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(string(other.pem)), CertificateMode: iottypes.CertificateModeSniOnly,
		SetAsActive: true, AllowAutoRegistration: true,
	}); err != nil {
		t.Fatal(err)
	}
	ev := f.connect(other.issue(t, deviceTemplate("intruder"), nil))
	if ev.CACertificateID == f.caID {
		t.Fatal("test setup: the other CA has our CA's id")
	}
	res, err := f.h.Handle(context.Background(), ev)
	if err != nil || res.Status != "ignored" {
		t.Fatalf("Handle() = %+v, %v; want ignored, nil", res, err)
	}
	f.assertUntouched(ev.CertificateID, "PENDING_ACTIVATION")
	if n := f.srv.Calls(awsfake.ServiceIoT, "DescribeCertificate"); n != 0 {
		t.Errorf("DescribeCertificate calls = %d, want 0", n)
	}
}

// TestEventMisattributed: an event names our CA, AWS IoT says the certificate belongs to another: left alone.
func TestEventMisattributed(t *testing.T) {
	f := setup(t)
	other := newTestCA(t, pkix.Name{CommonName: "Another CA"})
	reg, err := f.srv.IoT.PutCertificateUnderCA(other.issue(t, deviceTemplate("intruder"), nil), strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	ev := f.asEvent(reg)
	ev.CACertificateID = f.caID
	res, err := f.h.Handle(context.Background(), ev)
	if err != nil || res.Status != "ignored" {
		t.Fatalf("Handle() = %+v, %v; want ignored, nil", res, err)
	}
	f.assertUntouched(ev.CertificateID, "PENDING_ACTIVATION")
}

// TestRefused covers every certificate that must be revoked and reported, never activated.
func TestRefused(t *testing.T) {
	forger := newTestCA(t, caSubject) // our subject, another key
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cert   func(f *fixture) []byte
		reason string
		config func(c *Config)
	}{
		{"forgery", func(f *fixture) []byte { return forger.issue(t, deviceTemplate("thing-mr04"), nil) },
			"not signed by the CA's key", nil},
		{"other issuer", func(f *fixture) []byte {
			return newTestCA(t, pkix.Name{CommonName: "Elsewhere"}).issue(t, deviceTemplate("thing-mr04"), nil)
		}, "is not the CA", nil},
		{"bad CN", func(f *fixture) []byte { return f.ca.issue(t, deviceTemplate("thing/../admin"), nil) },
			"thing name", nil},
		{"empty CN", func(f *fixture) []byte { return f.ca.issue(t, deviceTemplate(""), nil) },
			"must not be empty", nil},
		{"CN too long", func(f *fixture) []byte { return f.ca.issue(t, deviceTemplate(strings.Repeat("a", 129)), nil) },
			"at most 128", nil},
		{"pattern", func(f *fixture) []byte { return f.ca.issue(t, deviceTemplate("admin"), nil) },
			"does not match", func(c *Config) { c.ThingNamePattern = mustPattern(t, `thing-[a-z0-9]+`) }},
		{"expired", func(f *fixture) []byte {
			tm := deviceTemplate("thing-old")
			tm.NotBefore, tm.NotAfter = time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0)
			return f.ca.issue(t, tm, nil)
		}, "not valid now", nil},
		{"not yet valid", func(f *fixture) []byte {
			tm := deviceTemplate("thing-new")
			tm.NotBefore = time.Now().Add(24 * time.Hour)
			return f.ca.issue(t, tm, nil)
		}, "not valid now", nil},
		{"two CNs", func(f *fixture) []byte {
			tm := deviceTemplate("")
			tm.Subject = pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "thing-mr04"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "admin"}}}
			return f.ca.issue(t, tm, nil)
		}, "2 CN attributes", nil},
		{"organization", func(f *fixture) []byte {
			tm := deviceTemplate("thing-mr04")
			tm.Subject.Organization = []string{"Operators"}
			return f.ca.issue(t, tm, nil)
		}, "attributes besides the CN", nil},
		{"beyond the clock skew", func(f *fixture) []byte {
			tm := deviceTemplate("thing-soon")
			tm.NotBefore = time.Now().Add(MaxClockSkew + time.Minute)
			return f.ca.issue(t, tm, nil)
		}, "not valid now", nil},
		{"weak RSA", func(f *fixture) []byte { return f.ca.issue(t, deviceTemplate("weak"), weakKey.Public()) },
			"1024 bits", nil},
		{"P-224", func(f *fixture) []byte { return f.ca.issue(t, deviceTemplate("p224"), p224.Public()) },
			"P-224", nil},
		{"CA certificate", func(f *fixture) []byte {
			tm := deviceTemplate("sub-ca")
			tm.BasicConstraintsValid, tm.IsCA = true, true
			tm.KeyUsage |= x509.KeyUsageCertSign
			return f.ca.issue(t, tm, nil)
		}, "CA certificate", nil},
		{"server only", func(f *fixture) []byte {
			tm := deviceTemplate("web")
			tm.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			return f.ca.issue(t, tm, nil)
		}, "client authentication", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			if tt.config != nil {
				tt.config(&f.h.Config)
			}
			ev := f.forced(tt.cert(f))
			res, err := f.h.Handle(context.Background(), ev)
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Handle() = %+v, %v; want a RefusedError", res, err)
			}
			if !strings.Contains(refused.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", refused.Reason, tt.reason)
			}
			f.assertUntouched(ev.CertificateID, "REVOKED")
			if n := f.srv.Calls(awsfake.ServiceIoT, "CreateThing"); n != 0 {
				t.Errorf("CreateThing calls = %d, want 0", n)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, `"certificate refused"`) || !strings.Contains(logs, ev.CertificateID) {
				t.Errorf("log does not report the refusal of %s: %s", ev.CertificateID, logs)
			}
			// The event comes again while the device reconnects: the certificate stays revoked, no error.
			res, err = f.h.Handle(context.Background(), ev)
			if err != nil || res.Status != "revoked" {
				t.Errorf("second Handle() = %+v, %v; want revoked, nil", res, err)
			}
			f.assertUntouched(ev.CertificateID, "REVOKED")
		})
	}
}

func mustPattern(t *testing.T, p string) *regexp.Regexp {
	t.Helper()
	c, err := ConfigFromEnv(mapEnv(map[string]string{"CA_CERTIFICATE_ID": strings.Repeat("0", 64), "THING_NAME_PATTERN": p}))
	if err != nil {
		t.Fatal(err)
	}
	return c.ThingNamePattern
}

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDuplicateEvents(t *testing.T) {
	f := setup(t)
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-dup"), nil))
	for i := range 3 {
		res, err := f.h.Handle(context.Background(), ev)
		if err != nil || res.Status != "activated" {
			t.Fatalf("Handle() #%d = %+v, %v; want activated, nil", i+1, res, err)
		}
	}
	f.assertRegistered(ev.CertificateID, "thing-dup")
	if n := f.srv.Calls(awsfake.ServiceIoT, "CreateThing"); n != 1 {
		t.Errorf("CreateThing calls = %d, want 1", n)
	}
	if th, _ := f.srv.IoT.Thing("thing-dup"); th.Attributes[capability.ThingAttribute] != capability.MultiRegion {
		t.Errorf("thing attributes = %v, want %s=%s (cert-report attributes the certificate by it)", th.Attributes,
			capability.ThingAttribute, capability.MultiRegion)
	}
	if n := f.srv.Calls(awsfake.ServiceIoT, "DescribeCACertificate"); n != 1 {
		t.Errorf("DescribeCACertificate calls = %d, want 1 (the CA certificate is read once)", n)
	}
	// Activated already: the certificate is not updated again.
	if n := f.srv.Calls(awsfake.ServiceIoT, "UpdateCertificate"); n != 1 {
		t.Errorf("UpdateCertificate calls = %d, want 1", n)
	}
}

func TestConcurrentDuplicateEvents(t *testing.T) {
	f := setup(t)
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-race"), nil))
	// CreateThing answers slowly, so every copy reads "no thing" before any creates it.
	f.srv.Inject(awsfake.ServiceIoT, "CreateThing", awsfake.Fault{Latency: 200 * time.Millisecond})
	const copies = 8
	var wg sync.WaitGroup
	errs := make([]error, copies)
	for i := range copies {
		wg.Go(func() {
			res, err := f.h.Handle(context.Background(), ev)
			if err == nil && res.Status != "activated" {
				err = errors.New("status " + res.Status)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("copy %d: %v", i, err)
		}
	}
	f.assertRegistered(ev.CertificateID, "thing-race")
	if n := f.srv.Calls(awsfake.ServiceIoT, "CreateThing"); n < 2 {
		t.Errorf("CreateThing calls = %d, want several: the copies did not overlap", n)
	}
}

// TestThingReplayedFirst: the registry replay created the thing (with attributes) before the device connected
// here, and a racing DescribeThing missed it: CreateThing's conflict counts as existing.
func TestThingReplayedFirst(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, err := f.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("thing-replayed"),
		AttributePayload: &iottypes.AttributePayload{Attributes: map[string]string{"site": "berlin"}}}); err != nil {
		t.Fatal(err)
	}
	f.srv.Inject(awsfake.ServiceIoT, "DescribeThing", awsfake.Fault{Status: 404, Code: "ResourceNotFoundException", Times: 1})
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-replayed"), nil))
	if _, err := f.h.Handle(ctx, ev); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	f.assertRegistered(ev.CertificateID, "thing-replayed")
	if th, _ := f.srv.IoT.Thing("thing-replayed"); th.Attributes["site"] != "berlin" {
		t.Errorf("thing attributes = %v, want the replayed site=berlin kept", th.Attributes)
	}
}

func TestInactiveCertificateLeftAlone(t *testing.T) {
	f := setup(t)
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-off"), nil))
	if _, err := f.iot.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{
		CertificateId: aws.String(ev.CertificateID), NewStatus: iottypes.CertificateStatusInactive,
	}); err != nil {
		t.Fatal(err)
	}
	res, err := f.h.Handle(context.Background(), ev)
	if err != nil || res.Status != "ignored" {
		t.Fatalf("Handle() = %+v, %v; want ignored, nil", res, err)
	}
	f.assertUntouched(ev.CertificateID, "INACTIVE")
}

func TestMalformedEvent(t *testing.T) {
	f := setup(t)
	res, err := f.h.Handle(context.Background(), Event{CertificateID: "../../things/x", CACertificateID: f.caID})
	if err == nil || !strings.Contains(err.Error(), "not a certificate id") {
		t.Errorf("Handle() = %+v, %v; want an error naming the bad id", res, err)
	}
	if n := f.srv.Calls(awsfake.ServiceIoT, "DescribeCertificate"); n != 0 {
		t.Errorf("DescribeCertificate calls = %d, want 0", n)
	}
}

// TestFaultAtEachStep: a step that keeps failing fails the invocation and leaves the certificate not active; the
// next delivery of the event, once the fault is gone, reaches the full end state.
func TestFaultAtEachStep(t *testing.T) {
	steps := []string{"DescribeCACertificate", "DescribeCertificate", "DescribeThing", "CreateThing",
		"AttachThingPrincipal", "AttachPolicy", "UpdateCertificate"}
	for _, op := range steps {
		t.Run(op, func(t *testing.T) {
			f := setup(t)
			ev := f.connect(f.ca.issue(t, deviceTemplate("thing-fault"), nil))
			f.srv.Inject(awsfake.ServiceIoT, op, awsfake.Fault{Status: 500, Code: "InternalFailureException"})
			_, err := f.h.Handle(context.Background(), ev)
			if err == nil {
				t.Fatalf("Handle() with %s failing: error = nil", op)
			}
			if !strings.Contains(err.Error(), "InternalFailureException") {
				t.Errorf("Handle() error = %v, want the cause", err)
			}
			if got := f.status(ev.CertificateID); got != "PENDING_ACTIVATION" {
				t.Errorf("status after the fault = %s, want PENDING_ACTIVATION", got)
			}
			f.srv.ClearFaults()
			res, err := f.h.Handle(context.Background(), ev)
			if err != nil || res.Status != "activated" {
				t.Fatalf("retry Handle() = %+v, %v; want activated", res, err)
			}
			f.assertRegistered(ev.CertificateID, "thing-fault")
		})
	}
	t.Run("revocation", func(t *testing.T) {
		f := setup(t)
		forger := newTestCA(t, caSubject)
		ev := f.forced(forger.issue(t, deviceTemplate("thing-fault"), nil))
		f.srv.Inject(awsfake.ServiceIoT, "UpdateCertificate", awsfake.Fault{Status: 500, Code: "InternalFailureException"})
		_, err := f.h.Handle(context.Background(), ev)
		var refused *RefusedError
		if err == nil || errors.As(err, &refused) {
			t.Fatalf("Handle() = %v, want a revocation failure (not yet refused)", err)
		}
		if got := f.status(ev.CertificateID); got != "PENDING_ACTIVATION" {
			t.Errorf("status = %s, want PENDING_ACTIVATION", got)
		}
		f.srv.ClearFaults()
		if _, err := f.h.Handle(context.Background(), ev); !errors.As(err, &refused) {
			t.Fatalf("retry Handle() = %v, want a RefusedError", err)
		}
		f.assertUntouched(ev.CertificateID, "REVOKED")
	})
}

func TestEventFixture(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "registered.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.CertificateStatus != "PENDING_ACTIVATION" || !certIDRE.MatchString(ev.CertificateID) ||
		!certIDRE.MatchString(ev.CACertificateID) || ev.CertificateRegistrationTimestamp == nil {
		t.Errorf("registered.json decoded to %+v", ev)
	}
}

func TestConfigFromEnv(t *testing.T) {
	caID := strings.Repeat("a1", 32)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"defaults", map[string]string{"CA_CERTIFICATE_ID": caID}, "", func(t *testing.T, c Config) {
			if c.PolicyName != DefaultPolicyName || c.MinRSABits != 2048 || c.ThingNamePattern != nil {
				t.Errorf("config = %+v", c)
			}
		}},
		{"pattern anchored", map[string]string{"CA_CERTIFICATE_ID": caID, "THING_NAME_PATTERN": "dev-[0-9]+"}, "",
			func(t *testing.T, c Config) {
				if !c.ThingNamePattern.MatchString("dev-12") || c.ThingNamePattern.MatchString("xdev-12") ||
					c.ThingNamePattern.MatchString("dev-12x") {
					t.Errorf("pattern %s is not anchored", c.ThingNamePattern)
				}
			}},
		{"alternation anchored", map[string]string{"CA_CERTIFICATE_ID": caID, "THING_NAME_PATTERN": "a|b"}, "",
			func(t *testing.T, c Config) {
				if c.ThingNamePattern.MatchString("ab") || c.ThingNamePattern.MatchString("xa") {
					t.Errorf("pattern %s is not anchored around the alternation", c.ThingNamePattern)
				}
			}},
		{"policy", map[string]string{"CA_CERTIFICATE_ID": caID, "POLICY_NAME": "p1", "MIN_RSA_BITS": "3072"}, "",
			func(t *testing.T, c Config) {
				if c.PolicyName != "p1" || c.MinRSABits != 3072 {
					t.Errorf("config = %+v", c)
				}
			}},
		{"no CA", map[string]string{}, `CA_CERTIFICATE_ID ""`, nil},
		{"bad CA", map[string]string{"CA_CERTIFICATE_ID": "xyz"}, `CA_CERTIFICATE_ID "xyz"`, nil},
		{"bad pattern", map[string]string{"CA_CERTIFICATE_ID": caID, "THING_NAME_PATTERN": "("}, `THING_NAME_PATTERN "("`, nil},
		{"weak RSA", map[string]string{"CA_CERTIFICATE_ID": caID, "MIN_RSA_BITS": "1024"}, `MIN_RSA_BITS "1024"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(mapEnv(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ConfigFromEnv() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestNewHandler builds the handler as main does, from the environment, and registers a device through it.
func TestNewHandler(t *testing.T) {
	f := setup(t)
	t.Setenv("CA_CERTIFICATE_ID", f.caID)
	t.Setenv("THING_NAME_PATTERN", "")
	t.Setenv("POLICY_NAME", "")
	t.Setenv("MIN_RSA_BITS", "")
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatalf("newHandler() error = %v", err)
	}
	ev := f.connect(f.ca.issue(t, deviceTemplate("thing-main"), nil))
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	f.assertRegistered(ev.CertificateID, "thing-main")
	t.Setenv("CA_CERTIFICATE_ID", "")
	if _, err := newHandler(context.Background()); err == nil {
		t.Error("newHandler() without CA_CERTIFICATE_ID: error = nil")
	}
}

// TestNoStateBetweenInvocations: a refusal does not taint the next event on the same warm handler (the sample's
// module-global error list did).
func TestNoStateBetweenInvocations(t *testing.T) {
	f := setup(t)
	forger := newTestCA(t, caSubject)
	bad := f.forced(forger.issue(t, deviceTemplate("thing-bad"), nil))
	var refused *RefusedError
	if _, err := f.h.Handle(context.Background(), bad); !errors.As(err, &refused) {
		t.Fatalf("Handle(forgery) = %v, want a RefusedError", err)
	}
	good := f.connect(f.ca.issue(t, deviceTemplate("thing-good"), nil))
	res, err := f.h.Handle(context.Background(), good)
	if err != nil || res.Status != "activated" {
		t.Fatalf("Handle(good) after a refusal = %+v, %v; want activated, nil", res, err)
	}
	f.assertRegistered(good.CertificateID, "thing-good")
}

// A certificate valid from two seconds ahead of the function's clock is left pending and the invocation fails with a
// retryable error; the retry (Lambda's, a minute later) registers it. A forgery within the skew is still revoked.
func TestNotYetValidWithinSkew(t *testing.T) {
	f := setup(t)
	// AWS IoT's clock found the certificate valid when the device connected; the function's runs 3 s behind.
	now := time.Now().Add(-3 * time.Second)
	f.h.Now = func() time.Time { return now }
	tm := deviceTemplate("thing-early")
	tm.NotBefore = now.Add(2 * time.Second)
	ev := f.connect(f.ca.issue(t, tm, nil))
	_, err := f.h.Handle(context.Background(), ev)
	var early *NotYetValidError
	if !errors.As(err, &early) || !early.NotBefore.Equal(tm.NotBefore.Truncate(time.Second)) {
		t.Fatalf("Handle() error = %v, want a NotYetValidError", err)
	}
	f.assertUntouched(ev.CertificateID, "PENDING_ACTIVATION")
	now = now.Add(time.Minute) // Lambda's first retry of the asynchronous event
	if res, err := f.h.Handle(context.Background(), ev); err != nil || res.Status != "activated" {
		t.Fatalf("retried Handle() = %+v, %v; want activated", res, err)
	}
	f.assertRegistered(ev.CertificateID, "thing-early")

	g := setup(t)
	g.h.Now = func() time.Time { return now }
	forger := newTestCA(t, caSubject)
	tm = deviceTemplate("thing-forged")
	tm.NotBefore = now.Add(2 * time.Second)
	fev := g.forced(forger.issue(t, tm, nil))
	var refused *RefusedError
	if _, err := g.h.Handle(context.Background(), fev); !errors.As(err, &refused) {
		t.Fatalf("Handle(forgery within the skew) = %v, want a RefusedError", err)
	}
	g.assertUntouched(fev.CertificateID, "REVOKED")
}
