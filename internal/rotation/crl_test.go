package rotation_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

const crlBucket = "certrotation-crl"

// createCRLTable makes the CRL table as the stack defines it: one item per trust anchor, key trustAnchorArn.
func createCRLTable(t testing.TB, ddb *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("crl-state-%d", tableSeq.Add(1))
	_, err := ddb.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(rotation.AttrCRLAnchor), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(rotation.AttrCRLAnchor), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable() error = %v", err)
	}
	return name
}

// newCRLProcessor is CRLProcessor as the function builds it, against the fake (Private CA, Roles Anywhere with a
// trust anchor of the Private CA, S3, SNS) and DynamoDB Local.
func newCRLProcessor(t testing.TB, srv *awsfake.Server) *rotation.CRLProcessor {
	t.Helper()
	testsvc.DynamoDB(t)
	cfg := fastConfig(t)
	ddb := dynamodb.NewFromConfig(cfg)
	srv.S3.CreateBucket(crlBucket)
	return &rotation.CRLProcessor{
		Objects: s3.NewFromConfig(cfg), CRLs: rolesanywhere.NewFromConfig(cfg), CA: acmpca.NewFromConfig(cfg),
		State: ddb, Topic: sns.NewFromConfig(cfg),
		Config: rotation.Config{
			CRLBucket: crlBucket, CRLName: "IAMRA-CRL", TrustAnchorARN: srv.RolesAnywhere.AddTrustAnchor(srv.PCA.CACertPEM()),
			TopicARN: topicARN, PCAARN: srv.PCA.CAARN(), CRLTable: createCRLTable(t, ddb),
		},
		// Real waits: a waiter's budget (LockWait, 20 s) is then real time, which no holder here comes near, however
		// loaded the machine.
		Sleep: func(_ context.Context, d time.Duration) error { time.Sleep(d); return nil },
	}
}

// deliver puts a CRL into the bucket under key and hands its event to the processor.
func deliver(srv *awsfake.Server, p *rotation.CRLProcessor, key string, der []byte) (rotation.CRLResult, error) {
	srv.S3.Put(crlBucket, key, der)
	return p.Handle(context.Background(), s3Event(crlBucket, key, len(der)))
}

func TestCRLProcessor(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	p := newCRLProcessor(t, srv)
	week := time.Now().AddDate(0, 0, 7)

	res, err := deliver(srv, p, "crl/abc.crl", srv.PCA.SignCRL(1, week))
	if err != nil || res.Action != "imported" {
		t.Fatalf("first CRL: %+v, %v; want imported", res, err)
	}
	res2, err := deliver(srv, p, "crl/abc.crl", srv.PCA.SignCRL(2, week, big.NewInt(7)))
	if err != nil || res2.Action != "updated" || res2.CRLID != res.CRLID || res2.Number != "2" {
		t.Fatalf("second CRL: %+v, %v; want the same CRL %s updated to number 2", res2, err, res.CRLID)
	}
	crls := srv.RolesAnywhere.CRLs()
	if len(crls) != 1 || crls[0].Updates != 1 || !strings.HasPrefix(string(crls[0].Data), "-----BEGIN X509 CRL-----") {
		t.Fatalf("Roles Anywhere CRLs = %d (updates %v), want one PEM CRL updated once", len(crls), crls)
	}
	if res, err := p.Handle(context.Background(), s3Event(crlBucket, "crl/readme.txt", 10)); err != nil || res.Action != "skipped" {
		t.Errorf("non-CRL object: %+v, %v; want skipped", res, err)
	}
	if len(srv.SNS.Messages()) != 0 {
		t.Fatalf("SNS messages = %v before any failure", srv.SNS.Messages())
	}
	srv.S3.Put(crlBucket, "crl/bad.crl", []byte("not a CRL"))
	srv.S3.Put(crlBucket, "crl/huge.crl", make([]byte, 300000))
	for name, ev := range map[string]events.EventBridgeEvent{
		"other bucket":               s3Event("someone-elses", "crl/abc.crl", 100),
		"garbage":                    s3Event(crlBucket, "crl/bad.crl", 9),
		"too large":                  s3Event(crlBucket, "crl/abc.crl", 400000),
		"missing":                    s3Event(crlBucket, "crl/none.crl", 100),
		"larger than the event says": s3Event(crlBucket, "crl/huge.crl", 100),
	} {
		if _, err := p.Handle(context.Background(), ev); err == nil || errors.Is(err, rotation.ErrCRLRefused) {
			t.Errorf("%s: Handle() = %v, want a failure (retried), not a refusal", name, err)
		}
	}
	msgs := srv.SNS.Messages()
	if len(msgs) != 5 {
		t.Fatalf("SNS messages = %d, want 5", len(msgs))
	}
	for _, m := range msgs {
		if !strings.Contains(m.Message, "Failed to import CRL: ") {
			t.Errorf("SNS message %q lacks the sample's prefix", m.Message)
		}
	}
	if n := len(srv.RolesAnywhere.CRLs()); n != 1 {
		t.Errorf("CRLs = %d after the failures, want still 1", n)
	}
}

// TestCRLRefusals: a CRL of another CA, one no newer than the installed CRL, or one whose nextUpdate has passed
// never reaches IAM Roles Anywhere (any of them could un-revoke a host certificate). Each is published, logged with
// event=CRLRefused for the stack's alarm, and not retried.
func TestCRLRefusals(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	p := newCRLProcessor(t, srv)
	week := time.Now().AddDate(0, 0, 7)
	if res, err := deliver(srv, p, "crl/a.crl", srv.PCA.SignCRL(5, week, big.NewInt(99))); err != nil || res.Action != "imported" {
		t.Fatalf("first CRL: %+v, %v", res, err)
	}
	foreign, foreignKey := testCA(t)
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	for _, tc := range []struct {
		name   string
		der    []byte
		want   string
		reason metrics.Reason
	}{
		{"signed by another CA", crlDER(t, foreign, foreignKey, 6), "not by our CA", metrics.ReasonUntrustedIssuer},
		{"the installed number again", srv.PCA.SignCRL(5, week), "not greater than the installed CRL's 5", metrics.ReasonValidity},
		{"an older number, which un-revokes", srv.PCA.SignCRL(4, week), "not greater than the installed CRL's 5", metrics.ReasonValidity},
		{"nextUpdate passed", srv.PCA.SignCRL(6, time.Now().Add(-time.Minute)), "is not in the future", metrics.ReasonValidity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			before := len(srv.SNS.Messages())
			res, err := deliver(srv, p, "crl/a.crl", tc.der)
			if err != nil || res.Action != "refused" || res.Reason != tc.reason {
				t.Fatalf("Handle() = %+v, %v; want refused for %s without an error (no retry)", res, err, tc.reason)
			}
			msgs := srv.SNS.Messages()
			if len(msgs) != before+1 || !strings.Contains(msgs[len(msgs)-1].Message, tc.want) {
				t.Errorf("SNS messages %v, want one naming %q", msgs[before:], tc.want)
			}
			if !strings.Contains(logs.String(), `"event":"`+rotation.CRLRefusedEvent+`"`) {
				t.Errorf("log %s lacks event=%s", logs.String(), rotation.CRLRefusedEvent)
			}
		})
	}
	crls := srv.RolesAnywhere.CRLs()
	if len(crls) != 1 || crls[0].Updates != 0 || numberOf(t, crls[0].Data) != "5" {
		t.Fatalf("Roles Anywhere holds %d CRLs (updates %d), want the first, number 5, untouched", len(crls), crls[0].Updates)
	}
	// The lock was released after each refusal: a newer CRL goes through at once.
	if res, err := deliver(srv, p, "crl/a.crl", srv.PCA.SignCRL(6, week)); err != nil || res.Action != "updated" {
		t.Fatalf("newer CRL after the refusals: %+v, %v; want updated", res, err)
	}
}

func numberOf(t *testing.T, crlPEM []byte) string {
	t.Helper()
	b, _ := pem.Decode(crlPEM)
	if b == nil {
		t.Fatal("CRL is not PEM")
	}
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return crl.Number.String()
}

// TestCRLConcurrentFirstDeliveries: eight first deliveries at once (Private CA rewriting its CRL while EventBridge
// retries an earlier one), with ListCrls not yet showing fresh imports (no page says it reads its own writes): IAM
// Roles Anywhere ends with exactly one CRL for the trust anchor, imported once, holding the highest number.
func TestCRLConcurrentFirstDeliveries(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	srv.RolesAnywhere.SetListLag(time.Hour)
	p := newCRLProcessor(t, srv)
	// A waiter's pause lasts until the holder it found has let go, not a span of real time: its budget (LockWait,
	// counted in the pauses it asked for) then never runs out behind the other seven, however slow the machine.
	ddb := dynamodb.NewFromConfig(fastConfig(t))
	p.Sleep = func(ctx context.Context, _ time.Duration) error {
		holder := ""
		for i := 0; ; i++ {
			out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.Config.CRLTable), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{rotation.AttrCRLAnchor: &types.AttributeValueMemberS{Value: p.Config.TrustAnchorARN}}})
			if err != nil {
				return err
			}
			owner, _ := out.Item[rotation.AttrCRLLockOwner].(*types.AttributeValueMemberS)
			switch {
			case owner == nil, i > 0 && owner.Value != holder:
				return nil
			case i == 0:
				holder = owner.Value
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	week := time.Now().AddDate(0, 0, 7)
	const n = 8
	ders := make([][]byte, n)
	for i := range ders {
		ders[i] = srv.PCA.SignCRL(int64(i+1), week, big.NewInt(int64(100+i)))
		srv.S3.Put(crlBucket, fmt.Sprintf("crl/%d.crl", i), ders[i])
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		actions = map[string]int{}
		start   = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := p.Handle(context.Background(), s3Event(crlBucket, fmt.Sprintf("crl/%d.crl", i), len(ders[i])))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
			actions[res.Action]++
		}()
	}
	close(start)
	wg.Wait()
	crls := srv.RolesAnywhere.CRLs()
	if len(crls) != 1 || actions["imported"] != 1 {
		t.Fatalf("Roles Anywhere holds %d CRLs after %v; want exactly one, imported once", len(crls), actions)
	}
	if got := numberOf(t, crls[0].Data); got != fmt.Sprint(n) {
		t.Errorf("installed CRL number = %s, want the highest, %d", got, n)
	}
	if actions["imported"]+actions["updated"]+actions["refused"] != n {
		t.Errorf("actions = %v, want every delivery imported, updated or refused as older", actions)
	}
}

// TestCRLAdoptsDuplicates: a trust anchor left with two CRLs of our name (the race of the sample and of earlier
// versions) and no record keeps the older one, updated, and loses the other.
func TestCRLAdoptsDuplicates(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	p := newCRLProcessor(t, srv)
	week := time.Now().AddDate(0, 0, 7)
	ra := rolesanywhere.NewFromConfig(fastConfig(t))
	var ids []string
	t0 := time.Now()
	for i := range 2 {
		srv.RolesAnywhere.SetNow(func() time.Time { return t0.Add(time.Duration(i) * time.Minute) })
		out, err := ra.ImportCrl(context.Background(), &rolesanywhere.ImportCrlInput{
			CrlData: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: srv.PCA.SignCRL(int64(i+1), week)}),
			Name:    aws.String(p.Config.CRLName), TrustAnchorArn: aws.String(p.Config.TrustAnchorARN), Enabled: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *out.Crl.CrlId)
	}
	if len(srv.RolesAnywhere.CRLs()) != 2 {
		t.Fatal("the fake refused a second CRL of the same name; ImportCrl documents no such rule")
	}
	res, err := deliver(srv, p, "crl/a.crl", srv.PCA.SignCRL(3, week))
	if err != nil || res.Action != "updated" || res.CRLID != ids[0] || len(res.Removed) != 1 || res.Removed[0] != ids[1] {
		t.Fatalf("delivery: %+v, %v; want %s updated and %s removed", res, err, ids[0], ids[1])
	}
	if crls := srv.RolesAnywhere.CRLs(); len(crls) != 1 || crls[0].ID != ids[0] || numberOf(t, crls[0].Data) != "3" {
		t.Fatalf("Roles Anywhere CRLs = %+v, want only %s with number 3", crls, ids[0])
	}
}

// TestCRLLock: a delivery waits for another's lock and gives up (an error, so EventBridge retries) when it stays
// held; a lock past its term (its holder certainly stopped) is taken over; a CRL deleted behind the record is
// imported anew.
func TestCRLLock(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	p := newCRLProcessor(t, srv)
	p.LockWait = 20 * time.Millisecond
	week := time.Now().AddDate(0, 0, 7)
	ddb := dynamodb.NewFromConfig(fastConfig(t))
	hold := func(until time.Time) {
		t.Helper()
		_, err := ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(p.Config.CRLTable), Item: map[string]types.AttributeValue{
			rotation.AttrCRLAnchor:    &types.AttributeValueMemberS{Value: p.Config.TrustAnchorARN},
			rotation.AttrCRLLockOwner: &types.AttributeValueMemberS{Value: "another-delivery"},
			rotation.AttrCRLLockUntil: &types.AttributeValueMemberN{Value: fmt.Sprint(until.Unix())},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	hold(time.Now().Add(time.Minute))
	if res, err := deliver(srv, p, "crl/a.crl", srv.PCA.SignCRL(1, week)); err == nil || !strings.Contains(err.Error(), "held the lock") {
		t.Fatalf("delivery under another's lock: %+v, %v; want an error naming the lock", res, err)
	}
	if n := len(srv.RolesAnywhere.CRLs()); n != 0 {
		t.Fatalf("%d CRLs imported under another's lock", n)
	}
	hold(time.Now().Add(-time.Second))
	res, err := deliver(srv, p, "crl/a.crl", srv.PCA.SignCRL(1, week))
	if err != nil || res.Action != "imported" {
		t.Fatalf("delivery after the lock's term: %+v, %v; want imported", res, err)
	}
	ra := rolesanywhere.NewFromConfig(fastConfig(t))
	if _, err := ra.DeleteCrl(context.Background(), &rolesanywhere.DeleteCrlInput{CrlId: aws.String(res.CRLID)}); err != nil {
		t.Fatal(err)
	}
	res2, err := deliver(srv, p, "crl/a.crl", srv.PCA.SignCRL(2, week))
	if crls := srv.RolesAnywhere.CRLs(); err != nil || res2.Action != "imported" || len(crls) != 1 || crls[0].ID != res2.CRLID {
		t.Fatalf("delivery after the CRL was deleted: %+v, %v, CRLs %+v; want one new CRL", res2, err, crls)
	}
	if _, err := ra.DeleteCrl(context.Background(), &rolesanywhere.DeleteCrlInput{CrlId: aws.String("no-such-crl")}); err == nil ||
		!strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("DeleteCrl(unknown) = %v, want ResourceNotFoundException", err)
	}
}

// TestCheckCRL: the checks on their own, each refusal marked ErrCRLRefused.
func TestCheckCRL(t *testing.T) {
	ours, ourKey := testCA(t)
	twin, twinKey := testCA(t) // the same subject, another key: a forger naming our CA
	other, _ := testCA(t)
	other.cert.RawSubject = []byte("another subject") // only the name differs from ours
	asPEM := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }
	now := time.Now()
	if crl, err := rotation.CheckCRL(asPEM(crlDER(t, ours, ourKey, 3)), ours.cert, now); err != nil || crl.Number.Int64() != 3 {
		t.Fatalf("CheckCRL(ours) = %v, %v; want number 3", crl, err)
	}
	for name, tc := range map[string]struct {
		data   []byte
		ca     caCert
		at     time.Time
		want   string
		reason metrics.Reason
	}{
		"not PEM":                     {[]byte("garbage"), ours, now, "not PEM", metrics.ReasonMalformed},
		"not a CRL":                   {asPEM([]byte{0x30, 0x03, 0x02, 0x01, 0x01}), ours, now, "CRL refused", metrics.ReasonMalformed},
		"same issuer name, other key": {asPEM(crlDER(t, twin, twinKey, 4)), ours, now, "not signed by our CA", metrics.ReasonUntrustedIssuer},
		"another issuer":              {asPEM(crlDER(t, ours, ourKey, 4)), other, now, "issued by", metrics.ReasonUntrustedIssuer},
		"past nextUpdate":             {asPEM(crlDER(t, ours, ourKey, 4)), ours, now.AddDate(0, 0, 8), "is not in the future", metrics.ReasonValidity},
	} {
		_, err := rotation.CheckCRL(tc.data, tc.ca.cert, tc.at)
		var refusal *rotation.CRLRefusal
		if !errors.Is(err, rotation.ErrCRLRefused) || !errors.As(err, &refusal) || refusal.Reason != tc.reason || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckCRL() = %v, want a %s refusal naming %q", name, err, tc.reason, tc.want)
		}
	}
}
