package replay_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

// drive applies records as executions of the state machine would, with its retries, on the replica's clock.
func drive(t *testing.T, env *replaytest.Env, records []replay.Record) (dlq []replay.Record) {
	t.Helper()
	return replaytest.Drive(t, env.Applier, env.Clock, records).DLQ
}

func records(p *replaytest.Primary) []replay.Record {
	var out []replay.Record
	for _, ev := range p.Events {
		out = append(out, replaytest.Record(ev, replaytest.PrimaryRegion))
	}
	return out
}

// shuffleWithDuplicates returns the records in a random order with about a third of them delivered twice.
func shuffleWithDuplicates(recs []replay.Record, seed uint64) []replay.Record {
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := slices.Clone(recs)
	for _, r := range recs {
		if rng.IntN(3) == 0 {
			out = append(out, r)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestReplayConverges(t *testing.T) {
	orders := []struct {
		name    string
		reorder func([]replay.Record) []replay.Record
	}{
		{"in order", func(r []replay.Record) []replay.Record { return r }},
		{"reversed", func(r []replay.Record) []replay.Record { r = slices.Clone(r); slices.Reverse(r); return r }},
		{"shuffled with duplicates, seed 1", func(r []replay.Record) []replay.Record { return shuffleWithDuplicates(r, 1) }},
		{"shuffled with duplicates, seed 2", func(r []replay.Record) []replay.Record { return shuffleWithDuplicates(r, 2) }},
		{"shuffled with duplicates, seed 3", func(r []replay.Record) []replay.Record { return shuffleWithDuplicates(r, 3) }},
		{"every event twice, in order", func(r []replay.Record) []replay.Record { return append(slices.Clone(r), r...) }},
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			env := replaytest.New(t)
			p := replaytest.NewPrimary(t)
			replaytest.Scenario(t, p)
			dlq := drive(t, env, o.reorder(records(p)))
			if len(dlq) != 0 {
				t.Errorf("%d records went to the dead-letter queue, want none", len(dlq))
			}
			if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
				t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

func TestReplayPoisonEventGoesToDeadLetters(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)
	recs := records(p)
	poisons := []map[string]any{
		{"eventType": replay.ThingEvent, "eventId": "poison-1", "timestamp": int64(1_767_000_000_500), "operation": "CREATED",
			"thingName": "bad name; rm -rf /", "versionNumber": int64(1), "attributes": map[string]any{}},
		{"eventType": replay.ThingGroupEvent, "eventId": "poison-2", "timestamp": int64(1_767_000_000_600), "operation": "CREATED",
			"thingGroupName": "g", "parentGroupName": "g", "attributes": map[string]any{}},
		{"eventType": "POLICY_EVENT", "eventId": "poison-3", "timestamp": int64(1_767_000_000_700), "operation": "CREATED"},
		{"eventType": replay.GroupMembershipEvent, "eventId": "poison-4", "timestamp": int64(1_767_000_000_800), "operation": "ADDED",
			"groupArn": "arn:aws:iot:us-west-2:123456789012:thing/not-a-group", "thingArn": "arn:aws:iot:us-west-2:123456789012:thing/sensor-1"},
	}
	for i, ev := range poisons {
		at := (i + 1) * len(recs) / (len(poisons) + 1)
		recs = slices.Insert(recs, at, replaytest.Record(ev, replaytest.PrimaryRegion))
	}
	dlq := drive(t, env, recs)
	var ids []string
	for _, r := range dlq {
		ids = append(ids, r.NewImage["eventId"].String())
	}
	slices.Sort(ids)
	if want := []string{"poison-1", "poison-2", "poison-3", "poison-4"}; !slices.Equal(ids, want) {
		t.Errorf("dead-letter queue = %v, want %v", ids, want)
	}
	if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
		t.Errorf("the rest did not proceed:\n%s", strings.Join(d, "\n"))
	}
	if _, ok := env.Replica.IoT.Thing("bad name; rm -rf /"); ok {
		t.Error("the poison thing was created")
	}
}

// An older event that arrives after a newer one was applied changes nothing.
func TestReplayStaleEventSkipped(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThing(t, "t1", "", map[string]string{"v": "1"})
	p.UpdateAttributes(t, "t1", map[string]string{"v": "2"}, true)
	recs := records(p)
	ctx := context.Background()
	if _, err := replay.ThingCrud.Handle(ctx, env.Applier, recs[1]); err != nil {
		t.Fatal(err)
	}
	out, err := replay.ThingCrud.Handle(ctx, env.Applier, recs[0])
	if err != nil || out.Result != "stale" {
		t.Fatalf("older CREATED after UPDATED = %+v, %v, want stale", out, err)
	}
	if th, _ := env.Replica.IoT.Thing("t1"); th.Attributes["v"] != "2" {
		t.Errorf("t1 attributes = %v, want v=2", th.Attributes)
	}
	// The same event again (a second delivery, or a retry after success) applies nothing either.
	calls := env.Replica.Calls("iot", "UpdateThing")
	out, err = replay.ThingCrud.Handle(ctx, env.Applier, recs[1])
	if err != nil || env.Replica.Calls("iot", "UpdateThing") != calls {
		t.Errorf("duplicate = %+v, %v with %d more UpdateThing calls, want no call", out, err, env.Replica.Calls("iot", "UpdateThing")-calls)
	}
}

// A failed apply does not make newer events of the entity wait for its lease.
func TestReplayFailedApplyReleasesEntity(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThingType(t, "sensor", "")
	p.CreateThing(t, "t1", "sensor", map[string]string{"v": "1"})
	p.UpdateAttributes(t, "t1", map[string]string{"v": "2"}, true)
	recs := records(p) // type CREATED, thing CREATED, association ADDED, thing UPDATED
	ctx := context.Background()
	// The thing's CREATED fails: its type has not been replayed yet.
	_, err := replay.ThingCrud.Handle(ctx, env.Applier, recs[1])
	var retry *replay.ThingCrudException
	if !errors.As(err, &retry) {
		t.Fatalf("CREATED before its type = %v, want ThingCrudException", err)
	}
	if _, err := replay.ThingTypeCrud.Handle(ctx, env.Applier, recs[0]); err != nil {
		t.Fatal(err)
	}
	out, err := replay.ThingCrud.Handle(ctx, env.Applier, recs[3])
	if err != nil || out.Result != "applied" {
		t.Fatalf("newer UPDATED after a failed CREATED = %+v, %v, want applied at once", out, err)
	}
	out, err = replay.ThingCrud.Handle(ctx, env.Applier, recs[1])
	if err != nil || out.Result != "stale" {
		t.Errorf("retry of the failed CREATED = %+v, %v, want stale", out, err)
	}
}

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// JITR in the replica and the replayed CreateThing meet in either order; the replayed delete detaches and deletes
// what JITR registered in this region, and leaves other certificates alone.
func TestReplayAndJITR(t *testing.T) {
	for _, jitrFirst := range []bool{true, false} {
		t.Run(map[bool]string{true: "JITR first", false: "replay first"}[jitrFirst], func(t *testing.T) {
			env := replaytest.New(t)
			env.Applier.CAID = "ca-of-this-region"
			p := replaytest.NewPrimary(t)
			p.CreateThing(t, "dev-1", "", map[string]string{"site": "ber"})
			recs := records(p)
			ctx := context.Background()
			c := iot.NewFromConfig(env.Replica.Config(ctx))
			env.Replica.IoT.PutPolicy("jitr-mr-policy", `{"Version":"2012-10-17","Statement":[]}`)
			other, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
			if err != nil {
				t.Fatal(err)
			}
			reg, err := env.Replica.IoT.PutCertificateUnderCA(selfSigned(t, "dev-1"), "ca-of-this-region")
			if err != nil {
				t.Fatal(err)
			}
			jitr := func() {
				// What the JITR function does: create the thing if missing, attach, activate.
				if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("dev-1")}); err != nil {
					var exists *types.ResourceAlreadyExistsException
					if !errors.As(err, &exists) {
						t.Fatal(err)
					}
				}
				arn := "arn:aws:iot:us-east-1:123456789012:cert/" + reg.CertificateID
				for _, principal := range []string{arn, aws.ToString(other.CertificateArn)} {
					if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("dev-1"), Principal: aws.String(principal)}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("jitr-mr-policy"), Target: aws.String(arn)}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(reg.CertificateID), NewStatus: types.CertificateStatusActive}); err != nil {
					t.Fatal(err)
				}
			}
			if jitrFirst {
				jitr()
			}
			if dlq := drive(t, env, recs); len(dlq) != 0 {
				t.Fatalf("replayed CREATED went to the dead-letter queue")
			}
			if !jitrFirst {
				jitr()
			}
			th, _ := env.Replica.IoT.Thing("dev-1")
			if !maps.Equal(th.Attributes, map[string]string{"site": "ber"}) || len(env.Replica.IoT.ThingPrincipals("dev-1")) != 2 {
				t.Fatalf("dev-1 = %+v with principals %v, want the replayed attributes and both certificates", th, env.Replica.IoT.ThingPrincipals("dev-1"))
			}

			p.DeleteThing(t, "dev-1")
			if dlq := drive(t, env, records(p)[len(recs):]); len(dlq) != 0 {
				t.Fatalf("replayed DELETED went to the dead-letter queue")
			}
			if _, ok := env.Replica.IoT.Thing("dev-1"); ok {
				t.Error("dev-1 still exists")
			}
			if _, ok := env.Replica.IoT.Certificate(reg.CertificateID); ok {
				t.Error("the JIT-registered certificate was not deleted")
			}
			if c, ok := env.Replica.IoT.Certificate(aws.ToString(other.CertificateId)); !ok || c.Status != "ACTIVE" {
				t.Errorf("the other certificate = %+v, %v, want it kept and active", c, ok)
			}
		})
	}
}

func TestParseRecordRefuses(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"eventType": replay.ThingEvent, "eventId": "e1", "timestamp": int64(1), "operation": "CREATED",
			"thingName": "t1", "versionNumber": int64(1), "attributes": map[string]any{"a": "1"}}
	}
	tests := []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"valid", func(map[string]any) {}, ""},
		{"eventId too long for an execution name", func(m map[string]any) { m["eventId"] = strings.Repeat("a", 81) }, "eventId"},
		{"eventId with a slash", func(m map[string]any) { m["eventId"] = "../x" }, "eventId"},
		{"thing name with a space", func(m map[string]any) { m["thingName"] = "a b" }, "thingName"},
		{"thing name too long", func(m map[string]any) { m["thingName"] = strings.Repeat("a", 129) }, "thingName"},
		{"attribute value with a quote", func(m map[string]any) { m["attributes"] = map[string]any{"a": `x"y`} }, "attribute"},
		{"attribute not a string", func(m map[string]any) { m["attributes"] = map[string]any{"a": int64(1)} }, "attribute"},
		{"four attributes without a type", func(m map[string]any) {
			m["attributes"] = map[string]any{"a": "1", "b": "2", "c": "3", "d": "4"}
		}, "3"},
		{"unknown operation", func(m map[string]any) { m["operation"] = "ADDED" }, "operation"},
		{"unknown event type", func(m map[string]any) { m["eventType"] = "CERTIFICATE_EVENT" }, "eventType"},
		{"no timestamp", func(m map[string]any) { delete(m, "timestamp") }, "timestamp"},
		{"negative version", func(m map[string]any) { m["versionNumber"] = int64(-1) }, "versionNumber"},
		{"origin not a region", func(m map[string]any) { m["eventId"] = "e2" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := base()
			tc.change(ev)
			_, err := replay.ParseRecord(replaytest.Record(ev, "us-west-2"))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ParseRecord = %v, want success", err)
			case tc.want != "" && (err == nil || !replay.IsInvalid(err) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ParseRecord = %v, want an invalid-event error about %s", err, tc.want)
			}
		})
	}
	if _, err := replay.ParseRecord(replay.Record{}); !replay.IsInvalid(err) {
		t.Errorf("ParseRecord(no NewImage) = %v, want invalid", err)
	}
	bad := replaytest.Record(base(), "us-west-2")
	bad.NewImage["originRegion"] = events.NewStringAttribute("us-west-2; drop")
	if _, err := replay.ParseRecord(bad); !replay.IsInvalid(err) {
		t.Errorf("ParseRecord(bad origin) = %v, want invalid", err)
	}
}

// Executions run side by side in Step Functions: eight workers apply a shuffled, duplicated sequence at once, each
// retrying a failed event later (as the state machine's retries do). Two events of one entity never apply at once
// (the claim's lease), and the result is the primary's state.
func TestReplayConcurrentConverges(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)
	recs := shuffleWithDuplicates(records(p), 42)
	type job struct {
		r        replay.Record
		attempts int
	}
	queue := make(chan job, len(recs)*10)
	for _, r := range recs {
		queue <- job{r: r}
	}
	var mu sync.Mutex
	pending := len(recs)
	var dlq []replay.Record
	var wg sync.WaitGroup
	ctx := context.Background()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				_, err := replaytest.Route(j.r).Handle(ctx, env.Applier, j.r)
				if nr := (*replay.ReplayNotReadyException)(nil); errors.As(err, &nr) {
					env.Clock.Advance(80 * time.Second) // the state machine's wait before retrying it
				}
				mu.Lock()
				switch {
				case err == nil:
					pending--
				case j.attempts >= 12:
					dlq = append(dlq, j.r)
					pending--
				default:
					j.attempts++
					queue <- j
				}
				if pending == 0 {
					close(queue)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if len(dlq) != 0 {
		t.Errorf("%d records exhausted their attempts", len(dlq))
	}
	if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
		t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
	}
}

// A type association that failed (its thing did not exist yet) does not keep the thing's own, older event from
// setting the type it carries.
func TestReplayFailedAssociationDoesNotHoldTypeBack(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThingType(t, "sensor", "")
	p.CreateThing(t, "t1", "sensor", nil) // CREATED (with the type), then the association ADDED
	recs := records(p)
	ctx := context.Background()
	if _, err := replay.ThingTypeCrud.Handle(ctx, env.Applier, recs[0]); err != nil {
		t.Fatal(err)
	}
	var retry *replay.ThingTypeCrudException
	if _, err := replay.ThingTypeCrud.Handle(ctx, env.Applier, recs[2]); !errors.As(err, &retry) {
		t.Fatalf("association before its thing = %v, want ThingTypeCrudException", err)
	}
	if _, err := replay.ThingCrud.Handle(ctx, env.Applier, recs[1]); err != nil {
		t.Fatal(err)
	}
	if th, _ := env.Replica.IoT.Thing("t1"); th.TypeName != "sensor" {
		t.Errorf("t1 type = %q, want sensor from its CREATED event", th.TypeName)
	}
}
