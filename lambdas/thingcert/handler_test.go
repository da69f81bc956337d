package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

const thingName = "poolcontroller1"

type fixture struct {
	t      *testing.T
	srv    *awsfake.Server
	h      *Handler
	logs   *bytes.Buffer
	secret string // ARN
	iot    *iot.Client
}

// setup starts the fakes, defines the secret the stack would define (random placeholder value), and builds
// the handler the way main does, with its log captured.
func setup(t *testing.T) *fixture {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	h, err := newHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	h.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.ConflictRetryDelay = 10 * time.Millisecond
	arn := srv.Secrets.Put("poolcontroller1-key", "Xq9!placeholder-from-cloudformation-4f2a")
	return &fixture{t: t, srv: srv, h: h, logs: logs, secret: arn, iot: iot.NewFromConfig(srv.Config(ctx))}
}

// event loads a fixture from testdata and points it at the fixture's secret.
func (f *fixture) event(name, physicalID string) Event {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	ev.ResourceProperties.SecretID = f.secret
	if ev.OldResourceProperties != nil {
		ev.OldResourceProperties.SecretID = f.secret
	}
	if physicalID != "" {
		ev.PhysicalResourceID = physicalID
	}
	return ev
}

func (f *fixture) handle(ev Event) (Response, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return f.h.Handle(ctx, ev)
}

func (f *fixture) mustHandle(ev Event) Response {
	f.t.Helper()
	resp, err := f.handle(ev)
	if err != nil {
		f.t.Fatalf("Handle(%s) error = %v", ev.RequestType, err)
	}
	return resp
}

func (f *fixture) secretValue() SecretValue {
	f.t.Helper()
	s, ok := f.srv.Secrets.Secret(f.secret)
	if !ok {
		f.t.Fatal("secret is gone")
	}
	var sv SecretValue
	if err := json.Unmarshal([]byte(s.String), &sv); err != nil {
		f.t.Fatalf("secret value is not JSON: %v", err)
	}
	return sv
}

func (f *fixture) cert(id string) awsfake.Certificate {
	f.t.Helper()
	c, ok := f.srv.IoT.Certificate(id)
	if !ok {
		f.t.Fatalf("certificate %s does not exist", id)
	}
	return c
}

// activeCerts lists the ids of ACTIVE certificates in the fake.
func (f *fixture) activeCerts() []string {
	var ids []string
	for _, c := range f.srv.IoT.Certificates() {
		if c.Status == "ACTIVE" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

func parseCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		t.Fatalf("no PEM certificate in %q", p)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkStored asserts the secret holds the key of certificate id, of the given algorithm, and returns the key.
func checkStored(t *testing.T, f *fixture, id string, wantKey func(crypto.PublicKey) bool) SecretValue {
	t.Helper()
	raw, _ := f.srv.Secrets.Secret(f.secret)
	var keys map[string]any
	if err := json.Unmarshal([]byte(raw.String), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"certificateId", "certificatePem", "csr", "privateKey"} {
		if s, _ := keys[k].(string); s == "" {
			t.Errorf("secret key %q missing or empty", k)
		}
	}
	if len(keys) != 4 {
		t.Errorf("secret has %d keys, want 4", len(keys))
	}
	sv := f.secretValue()
	if sv.CertificateID != id {
		t.Errorf("secret certificateId = %s, want %s", sv.CertificateID, id)
	}
	c := f.cert(id)
	if sv.CertificatePEM != c.PEM {
		t.Error("secret certificatePem differs from the certificate in AWS IoT")
	}
	key, err := pki.ParsePrivateKey([]byte(sv.PrivateKey))
	if err != nil {
		t.Fatalf("privateKey does not parse: %v", err)
	}
	cert := parseCert(t, c.PEM)
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Error("privateKey does not match the certificate's public key")
	}
	if !wantKey(key.Public()) {
		t.Errorf("key type = %T, want another", key.Public())
	}
	if cert.Subject.CommonName != thingName {
		t.Errorf("certificate CN = %q, want %q", cert.Subject.CommonName, thingName)
	}
	return sv
}

func isEC(k crypto.PublicKey) bool  { _, ok := k.(*ecdsa.PublicKey); return ok }
func isRSA(k crypto.PublicKey) bool { _, ok := k.(*rsa.PublicKey); return ok }

func TestCreate(t *testing.T) {
	f := setup(t)
	resp := f.mustHandle(f.event("create.json", ""))
	id := resp.PhysicalResourceID
	if !certIDRE.MatchString(id) {
		t.Fatalf("PhysicalResourceId = %q, want a certificate id", id)
	}
	c := f.cert(id)
	if c.Status != "ACTIVE" {
		t.Errorf("certificate status = %s, want ACTIVE", c.Status)
	}
	want := map[string]string{"CertificateId": id, "CertificateArn": c.ARN}
	if fmt.Sprint(resp.Data) != fmt.Sprint(want) {
		t.Errorf("Data = %v, want %v", resp.Data, want)
	}
	checkStored(t, f, id, isEC)
	if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 1 {
		t.Errorf("CreateCertificateFromCsr calls = %d, want 1", n)
	}
}

func TestCreateKeyAlgorithms(t *testing.T) {
	tests := []struct {
		alg  string
		want func(crypto.PublicKey) bool
		bits int
	}{
		{"", isEC, 256},
		{"EC_P384", isEC, 384},
		{"RSA_2048", isRSA, 2048},
	}
	for _, tt := range tests {
		t.Run("alg="+tt.alg, func(t *testing.T) {
			f := setup(t)
			ev := f.event("create.json", "")
			ev.ResourceProperties.KeyAlgorithm = tt.alg
			resp := f.mustHandle(ev)
			sv := checkStored(t, f, resp.PhysicalResourceID, tt.want)
			key, _ := pki.ParsePrivateKey([]byte(sv.PrivateKey))
			var bits int
			switch k := key.Public().(type) {
			case *ecdsa.PublicKey:
				bits = k.Curve.Params().BitSize
			case *rsa.PublicKey:
				bits = k.N.BitLen()
			}
			if bits != tt.bits {
				t.Errorf("key size = %d, want %d", bits, tt.bits)
			}
		})
	}
}

func TestCreateResent(t *testing.T) {
	f := setup(t)
	ev := f.event("create.json", "")
	first := f.mustHandle(ev)
	second := f.mustHandle(ev)
	if second.PhysicalResourceID != first.PhysicalResourceID {
		t.Errorf("resent Create PhysicalResourceId = %s, want %s", second.PhysicalResourceID, first.PhysicalResourceID)
	}
	if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 1 {
		t.Errorf("CreateCertificateFromCsr calls = %d, want 1", n)
	}
	if n := len(f.srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
	checkStored(t, f, first.PhysicalResourceID, isEC)
}

// An earlier attempt stored the key but died before activating: the resend activates, and creates nothing.
func TestCreateResentAfterDeathBeforeActivation(t *testing.T) {
	f := setup(t)
	ev := f.event("create.json", "")
	first := f.mustHandle(ev)
	if _, err := f.iot.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{
		CertificateId: aws.String(first.PhysicalResourceID), NewStatus: iottypes.CertificateStatusInactive,
	}); err != nil {
		t.Fatal(err)
	}
	second := f.mustHandle(ev)
	if second.PhysicalResourceID != first.PhysicalResourceID {
		t.Errorf("PhysicalResourceId = %s, want %s", second.PhysicalResourceID, first.PhysicalResourceID)
	}
	if got := f.cert(first.PhysicalResourceID).Status; got != "ACTIVE" {
		t.Errorf("status = %s, want ACTIVE", got)
	}
	if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 1 {
		t.Errorf("CreateCertificateFromCsr calls = %d, want 1", n)
	}
}

// The secret holds a certificate that no longer exists (or another thing's): a new one is issued.
func TestCreateIgnoresStaleSecret(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *fixture, ev *Event, id string)
	}{
		{"certificate deleted", func(f *fixture, ev *Event, id string) {
			ctx := context.Background()
			_, _ = f.iot.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusInactive})
			if _, err := f.iot.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)}); err != nil {
				f.t.Fatal(err)
			}
		}},
		{"other thing", func(f *fixture, ev *Event, id string) { ev.ResourceProperties.ThingName = "otherthing" }},
		{"other algorithm", func(f *fixture, ev *Event, id string) { ev.ResourceProperties.KeyAlgorithm = "EC_P384" }},
		{"revoked", func(f *fixture, ev *Event, id string) {
			if _, err := f.iot.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusRevoked}); err != nil {
				f.t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			ev := f.event("create.json", "")
			first := f.mustHandle(ev)
			tt.mutate(f, &ev, first.PhysicalResourceID)
			second := f.mustHandle(ev)
			if second.PhysicalResourceID == first.PhysicalResourceID {
				t.Errorf("PhysicalResourceId = %s, want a new certificate", second.PhysicalResourceID)
			}
			if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 2 {
				t.Errorf("CreateCertificateFromCsr calls = %d, want 2", n)
			}
			if sv := f.secretValue(); sv.CertificateID != second.PhysicalResourceID {
				t.Errorf("secret certificateId = %s, want %s", sv.CertificateID, second.PhysicalResourceID)
			}
		})
	}
}

func TestUpdateUnchanged(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	before := f.secretValue()
	resp := f.mustHandle(f.event("update-unchanged.json", created.PhysicalResourceID))
	if resp.PhysicalResourceID != created.PhysicalResourceID {
		t.Errorf("PhysicalResourceId = %s, want %s (kept)", resp.PhysicalResourceID, created.PhysicalResourceID)
	}
	if fmt.Sprint(resp.Data) != fmt.Sprint(created.Data) {
		t.Errorf("Data = %v, want %v", resp.Data, created.Data)
	}
	if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 1 {
		t.Errorf("CreateCertificateFromCsr calls = %d, want 1", n)
	}
	if after := f.secretValue(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("secret changed on an unchanged update")
	}
}

// The secret was overwritten: the certificate is kept (devices may hold the key) and a warning logged.
func TestUpdateSecretLostKeepsCertificate(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	f.srv.Secrets.Put(f.secret, `{"somebody":"else"}`)
	resp := f.mustHandle(f.event("update-unchanged.json", created.PhysicalResourceID))
	if resp.PhysicalResourceID != created.PhysicalResourceID {
		t.Errorf("PhysicalResourceId = %s, want %s (kept)", resp.PhysicalResourceID, created.PhysicalResourceID)
	}
	if !strings.Contains(f.logs.String(), "secret does not hold the key of this certificate") {
		t.Errorf("log = %s, want a warning about the secret", f.logs)
	}
}

// The certificate was deleted out of band: Update issues a new one.
func TestUpdateCertificateGone(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	f.mustHandle(f.event("delete.json", created.PhysicalResourceID))
	resp := f.mustHandle(f.event("update-unchanged.json", created.PhysicalResourceID))
	if resp.PhysicalResourceID == created.PhysicalResourceID {
		t.Fatal("Update kept a deleted certificate")
	}
	checkStored(t, f, resp.PhysicalResourceID, isEC)
}

func TestUpdateKeyAlgorithm(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	oldID := created.PhysicalResourceID
	updated := f.mustHandle(f.event("update-rsa.json", oldID))
	newID := updated.PhysicalResourceID
	if newID == oldID {
		t.Fatalf("PhysicalResourceId = %s, want a new certificate", newID)
	}
	checkStored(t, f, newID, isRSA)
	if got := f.cert(newID).Status; got != "ACTIVE" {
		t.Errorf("new certificate status = %s, want ACTIVE", got)
	}
	// The framework sends Delete for the old physical id after the update.
	f.mustHandle(f.event("delete.json", oldID))
	if _, ok := f.srv.IoT.Certificate(oldID); ok {
		t.Error("old certificate still exists after Delete")
	}
	if got := f.cert(newID).Status; got != "ACTIVE" {
		t.Errorf("new certificate status after old Delete = %s, want ACTIVE", got)
	}
}

// An update rollback (Update back to the old properties, physical id of the new certificate) restores the
// previous certificate and key instead of issuing a third one.
func TestUpdateRollbackRestoresPrevious(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	original := f.secretValue()
	updated := f.mustHandle(f.event("update-rsa.json", created.PhysicalResourceID))

	rollback := f.event("update-rsa.json", updated.PhysicalResourceID)
	rollback.RequestID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b66"
	rollback.ResourceProperties, *rollback.OldResourceProperties = *rollback.OldResourceProperties, rollback.ResourceProperties
	resp := f.mustHandle(rollback)
	if resp.PhysicalResourceID != created.PhysicalResourceID {
		t.Errorf("rollback PhysicalResourceId = %s, want the original %s", resp.PhysicalResourceID, created.PhysicalResourceID)
	}
	if got := f.secretValue(); fmt.Sprint(got) != fmt.Sprint(original) {
		t.Error("rollback did not restore the original key and certificate in the secret")
	}
	if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 2 {
		t.Errorf("CreateCertificateFromCsr calls = %d, want 2", n)
	}
	// Cleanup after the rollback deletes the certificate of the failed update.
	f.mustHandle(f.event("delete.json", updated.PhysicalResourceID))
	if ids := f.activeCerts(); len(ids) != 1 || ids[0] != created.PhysicalResourceID {
		t.Errorf("active certificates = %v, want only %s", ids, created.PhysicalResourceID)
	}
}

func TestUpdateThingName(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	ev := f.event("update-unchanged.json", created.PhysicalResourceID)
	ev.ResourceProperties.ThingName = "poolcontroller2"
	resp := f.mustHandle(ev)
	if resp.PhysicalResourceID == created.PhysicalResourceID {
		t.Fatal("ThingName change kept the certificate")
	}
	if cn := parseCert(t, f.cert(resp.PhysicalResourceID).PEM).Subject.CommonName; cn != "poolcontroller2" {
		t.Errorf("new certificate CN = %q, want poolcontroller2", cn)
	}
}

func TestDelete(t *testing.T) {
	f := setup(t)
	created := f.mustHandle(f.event("create.json", ""))
	id := created.PhysicalResourceID
	resp := f.mustHandle(f.event("delete.json", id))
	if resp.PhysicalResourceID != id {
		t.Errorf("PhysicalResourceId = %s, want %s", resp.PhysicalResourceID, id)
	}
	if _, ok := f.srv.IoT.Certificate(id); ok {
		t.Error("certificate still exists after Delete")
	}
	if n := f.srv.Calls("iot", "UpdateCertificate"); n != 2 { // activate, deactivate
		t.Errorf("UpdateCertificate calls = %d, want 2", n)
	}
}

// Attachments left behind (the stack's attachments normally go first) are detached, then the delete succeeds.
func TestDeleteDetachesLeftovers(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	created := f.mustHandle(f.event("create.json", ""))
	arn := created.Data["CertificateArn"]
	f.srv.IoT.PutPolicy("thing-policy", string(mustRender(t)))
	if _, err := f.iot.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("thing-policy"), Target: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(thingName)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.iot.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(thingName), Principal: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	f.mustHandle(f.event("delete.json", created.PhysicalResourceID))
	if _, ok := f.srv.IoT.Certificate(created.PhysicalResourceID); ok {
		t.Error("certificate still exists after Delete")
	}
	for _, op := range []string{"DetachPolicy", "DetachThingPrincipal"} {
		if n := f.srv.Calls("iot", op); n != 1 {
			t.Errorf("%s calls = %d, want 1", op, n)
		}
	}
	if ps := f.srv.IoT.ThingPrincipals(thingName); len(ps) != 0 {
		t.Errorf("thing principals = %v, want none", ps)
	}
}

func mustRender(t *testing.T) []byte {
	t.Helper()
	return []byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}}`)
}

func TestDeleteNothingToDo(t *testing.T) {
	tests := []struct {
		name, physicalID string
	}{
		{"missing certificate", strings.Repeat("ab", 32)},
		{"failed create default id", ""}, // from the fixture
		{"empty", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			ev := f.event("delete-after-failed-create.json", tt.physicalID)
			if tt.physicalID == "-" {
				ev.PhysicalResourceID = ""
			}
			resp, err := f.handle(ev)
			if err != nil {
				t.Fatalf("Handle(Delete %q) = %v, want success", ev.PhysicalResourceID, err)
			}
			if resp.PhysicalResourceID != ev.PhysicalResourceID {
				t.Errorf("PhysicalResourceId = %q, want %q", resp.PhysicalResourceID, ev.PhysicalResourceID)
			}
			if !certIDRE.MatchString(ev.PhysicalResourceID) {
				for _, op := range []string{"UpdateCertificate", "DeleteCertificate", "DescribeCertificate"} {
					if n := f.srv.Calls("iot", op); n != 0 {
						t.Errorf("%s calls = %d, want 0 for a non-certificate id", op, n)
					}
				}
			}
		})
	}
}

func TestThrottlingRetried(t *testing.T) {
	f := setup(t)
	f.srv.Inject("iot", "CreateCertificateFromCsr", awsfake.Fault{Status: 400, Code: "ThrottlingException", Times: 2})
	resp := f.mustHandle(f.event("create.json", ""))
	if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 3 {
		t.Errorf("CreateCertificateFromCsr calls = %d, want 3 (2 throttled + 1)", n)
	}
	checkStored(t, f, resp.PhysicalResourceID, isEC)
}

// A failure once the certificate exists leaves no certificate behind, let alone an active one.
func TestCreateFailureLeavesNoCertificate(t *testing.T) {
	tests := []struct {
		name    string
		service string
		op      string
		fault   awsfake.Fault
		want    string // in the error
	}{
		{"store key fails", "secretsmanager", "PutSecretValue", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Message: "secret is scheduled for deletion"}, "store key in secret"},
		{"activation fails once", "iot", "UpdateCertificate", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1}, "activate certificate"},
		{"every status change fails", "iot", "UpdateCertificate", awsfake.Fault{Status: 400, Code: "InvalidRequestException"}, "activate certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			f.srv.Inject(tt.service, tt.op, tt.fault)
			_, err := f.handle(f.event("create.json", ""))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Handle(Create) = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 1 {
				t.Errorf("CreateCertificateFromCsr calls = %d, want 1", n)
			}
			if cs := f.srv.IoT.Certificates(); len(cs) != 0 {
				t.Errorf("certificates left = %d (%+v), want none", len(cs), cs[0].Status)
			}
			// The framework's retry of the same request then succeeds with one new certificate.
			f.srv.ClearFaults()
			resp := f.mustHandle(f.event("create.json", ""))
			checkStored(t, f, resp.PhysicalResourceID, isEC)
			if ids := f.activeCerts(); len(ids) != 1 {
				t.Errorf("active certificates = %v, want one", ids)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Event)
		want   string
	}{
		{"bad thing name", func(e *Event) { e.ResourceProperties.ThingName = "pool controller/1" }, `ThingName "pool controller/1" is not valid`},
		{"empty thing name", func(e *Event) { e.ResourceProperties.ThingName = "" }, `ThingName "" is not valid`},
		{"bad algorithm", func(e *Event) { e.ResourceProperties.KeyAlgorithm = "DSA_1024" }, `KeyAlgorithm "DSA_1024" is not valid`},
		{"no secret", func(e *Event) { e.ResourceProperties.SecretID = "" }, "SecretId is required"},
		{"other resource type", func(e *Event) { e.ResourceType = "Custom::Other" }, `resource type "Custom::Other"`},
		{"unknown request type", func(e *Event) { e.RequestType = "Import" }, `unknown request type "Import"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			ev := f.event("create.json", "")
			tt.mutate(&ev)
			_, err := f.handle(ev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Handle() = %v, want an error containing %q", err, tt.want)
			}
			if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 0 {
				t.Errorf("CreateCertificateFromCsr calls = %d, want 0", n)
			}
		})
	}
}

// Neither logs, responses nor errors ever carry the private key or the secret value.
func TestNoKeyInLogsOrResponses(t *testing.T) {
	f := setup(t)
	var all bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&all, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	f.h.Log = nil // log through the default logger, as in Lambda

	var outputs []string
	record := func(resp Response, err error) {
		b, _ := json.Marshal(resp)
		outputs = append(outputs, string(b))
		if err != nil {
			outputs = append(outputs, err.Error())
		}
	}
	create := f.event("create.json", "")
	resp, err := f.handle(create)
	record(resp, err)
	record(f.handle(create))
	secrets := []SecretValue{f.secretValue()}
	record(f.handle(f.event("update-unchanged.json", resp.PhysicalResourceID)))
	upd, err := f.handle(f.event("update-rsa.json", resp.PhysicalResourceID))
	record(upd, err)
	secrets = append(secrets, f.secretValue())
	f.srv.Inject("iot", "UpdateCertificate", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	failing := f.event("create.json", "")
	failing.RequestID = "11111111-2222-4333-8444-555555555555"
	failing.ResourceProperties.KeyAlgorithm = "EC_P384"
	record(f.handle(failing))
	record(f.handle(f.event("delete.json", resp.PhysicalResourceID)))
	record(f.handle(f.event("delete.json", upd.PhysicalResourceID)))

	if all.Len() == 0 || !strings.Contains(all.String(), "certificate activated") {
		t.Fatalf("captured log = %q, want the handler's records", all.String())
	}
	haystacks := map[string]string{"log": all.String(), "responses": strings.Join(outputs, "\n")}
	for _, sv := range secrets {
		raw, _ := json.Marshal(sv)
		needles := map[string]string{"secret JSON": string(raw), "private key PEM": sv.PrivateKey}
		// Any single line of the key's base64 body would be a leak too.
		for i, line := range strings.Split(strings.TrimSpace(sv.PrivateKey), "\n") {
			if !strings.HasPrefix(line, "-----") {
				needles[fmt.Sprintf("key line %d", i)] = line
			}
		}
		for hn, h := range haystacks {
			if strings.Contains(h, "PRIVATE KEY") {
				t.Errorf("%s contains a PEM private key marker", hn)
			}
			for nn, n := range needles {
				if strings.Contains(h, n) {
					t.Errorf("%s contains the %s", hn, nn)
				}
			}
		}
	}
	// The records are JSON with the certificate id.
	first, _, _ := strings.Cut(all.String(), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(first), &rec); err != nil {
		t.Errorf("log record %q is not JSON: %v", first, err)
	}
	if !strings.Contains(all.String(), `"certificateId":"`+resp.PhysicalResourceID+`"`) {
		t.Error("log does not name the certificate id")
	}
}

// The key and certificate stored in the secret work together: a device connects with them over mTLS to a
// broker that trusts the (fake) AWS IoT CA, publishes and receives its own message.
func TestStoredKeyConnectsToBroker(t *testing.T) {
	f := setup(t)
	broker := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: f.srv.IoT.CAPEM()})
	f.mustHandle(f.event("create.json", ""))
	sv := f.secretValue()
	cert, err := tls.X509KeyPair([]byte(sv.CertificatePEM), []byte(sv.PrivateKey))
	if err != nil {
		t.Fatalf("tls.X509KeyPair(secret) = %v", err)
	}

	opts := mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID(thingName).
		SetTLSConfig(broker.TLSConfig(cert)).SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	client := mqtt.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("connect with the stored key: %v\n%s", tok.Error(), broker.Log())
	}
	defer client.Disconnect(250)

	topic := "things/" + thingName + "/temperature"
	got := make(chan string, 1)
	if tok := client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := client.Publish(topic, 1, false, `{"celsius":27.5}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != `{"celsius":27.5}` {
			t.Errorf("received %q, want the published message", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message received")
	}
}

// Without the certificate the broker refuses the device: the test above can fail.
func TestBrokerRefusesOtherKey(t *testing.T) {
	f := setup(t)
	broker := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: f.srv.IoT.CAPEM()})
	f.mustHandle(f.event("create.json", ""))
	sv := f.secretValue()
	other, err := pki.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _ := pki.EncodePrivateKey(other)
	if _, err := tls.X509KeyPair([]byte(sv.CertificatePEM), otherPEM); err == nil {
		t.Fatal("tls.X509KeyPair accepted a key that is not the certificate's")
	}
	self := selfSigned(t, other)
	opts := mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID(thingName).
		SetTLSConfig(broker.TLSConfig(self)).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false)
	client := mqtt.NewClient(opts)
	if tok := client.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		client.Disconnect(0)
		t.Fatal("broker accepted a certificate not issued by the AWS IoT CA")
	}
}

func selfSigned(t *testing.T, key crypto.Signer) tls.Certificate {
	t.Helper()
	csrPEM, err := pki.NewCSR(key, thingName)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
