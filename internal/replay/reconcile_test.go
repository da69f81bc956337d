package replay_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

func newReconciler(env *replaytest.Env, p *replaytest.Primary) *replay.Reconciler {
	ctx := context.Background()
	return &replay.Reconciler{Primary: p.IoT, Replica: iot.NewFromConfig(env.Replica.Config(ctx)), Applier: env.Applier,
		Now: env.Clock.Now}
}

func TestReconcileRepairsAndBackfills(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)
	ctx := context.Background()
	c := iot.NewFromConfig(env.Replica.Config(ctx))

	// The replica saw only the first third of the events (the rest were lost, or predate replication) and drifted:
	// a thing nobody replicated, a group that is gone in the primary, and a JIT-registered device of its own.
	recs := records(p)
	if dlq := drive(t, env, recs[:len(recs)/3]); len(dlq) != 0 {
		t.Fatalf("setup: %d records failed", len(dlq))
	}
	for _, name := range []string{"ghost", "local-dev"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("local-dev"), Principal: cert.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("stale-group")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("stale-child"),
		ParentGroupName: aws.String("stale-group")}); err != nil {
		t.Fatal(err)
	}

	r := newReconciler(env, p)
	r.DryRun = true
	dry, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Drift == 0 || dry.Created+dry.Updated+dry.Deleted != 0 {
		t.Fatalf("dry run = %+v, want drift counted and nothing repaired", dry)
	}
	if _, ok := env.Replica.IoT.Thing("ghost"); !ok {
		t.Fatal("the dry run deleted a thing")
	}

	r.DryRun = false
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The type the primary deleted is deprecated by this run and deleted by a later one: AWS IoT deletes a type five
	// minutes after its deprecation.
	if rep.Drift != dry.Drift || rep.Failed != 0 || rep.Local != 1 || rep.Created == 0 || rep.Deleted < 3 || rep.Pending != 1 {
		t.Errorf("run = %+v, want the dry run's drift (%d) repaired, one local thing kept, one type delete pending, no failure", rep, dry.Drift)
	}
	var diffs []string
	for _, d := range replaytest.Diff(p.Srv, env.Replica) {
		if d != "thing local-dev extra" && d != "thing type legacy extra" {
			diffs = append(diffs, d)
		}
	}
	if len(diffs) != 0 {
		t.Errorf("after the run the replica differs:\n%s", strings.Join(diffs, "\n"))
	}
	if _, ok := env.Replica.IoT.Thing("local-dev"); !ok {
		t.Error("the JIT-registered local thing was deleted")
	}
	if again, err := r.Run(ctx); err != nil || again.Pending != 1 || again.Deleted != 0 {
		t.Errorf("run within five minutes of the deprecation = %+v, %v, want the type delete still pending", again, err)
	}
	env.Clock.Advance(replay.ThingTypeDeleteDelay)
	if later, err := r.Run(ctx); err != nil || later.Deleted != 1 || later.Pending != 0 {
		t.Errorf("run five minutes later = %+v, %v, want the type deleted", later, err)
	}

	again, err := r.Run(ctx)
	if err != nil || again.Drift != 0 || again.Local != 1 {
		t.Errorf("last run = %+v, %v, want no drift", again, err)
	}

	// Events older than a repair do not undo it; a newer one wins.
	stale := records(p)[:len(recs)/3]
	if dlq := drive(t, env, stale); len(dlq) != 0 {
		t.Fatalf("old events: %d failed", len(dlq))
	}
	if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 1 {
		t.Errorf("old events replayed after the repair changed the replica:\n%s", strings.Join(d, "\n"))
	}
}

func TestReconcileRepairSupersededByNewerEvent(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThing(t, "t1", "", map[string]string{"v": "1"})
	ctx := context.Background()
	// An event of t1 from after the run began was already applied: the run must not overwrite it.
	future := env.Clock.Now().Add(time.Minute).UnixMilli()
	ev := map[string]any{"eventType": replay.ThingEvent, "eventId": "future-1", "timestamp": future, "operation": "CREATED",
		"thingName": "t1", "versionNumber": int64(5), "attributes": map[string]any{"v": "future"}}
	if _, err := replay.ThingCrud.Handle(ctx, env.Applier, replaytest.Record(ev, replaytest.PrimaryRegion)); err != nil {
		t.Fatal(err)
	}
	rep, err := newReconciler(env, p).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Superseded != 1 {
		t.Errorf("report = %+v, want the repair of t1 superseded", rep)
	}
	if th, _ := env.Replica.IoT.Thing("t1"); th.Attributes["v"] != "future" {
		t.Errorf("t1 = %v, want the newer event's attributes kept", th.Attributes)
	}
}

func TestReconcileReadFailureIsAnError(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.Srv.Inject("iot", "ListThings", awsfake.Fault{Status: 400, Code: "InvalidRequestException"})
	if _, err := newReconciler(env, p).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "primary") {
		t.Errorf("Run with the primary unreadable = %v, want an error naming the primary", err)
	}
}

func TestLimiterSpacesCalls(t *testing.T) {
	l := replay.NewLimiter(50) // 20 ms apart
	began := time.Now()
	for range 11 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(began); took < 190*time.Millisecond {
		t.Errorf("11 calls at 50/s took %v, want at least 200 ms", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l2 := replay.NewLimiter(0.1)
	_ = l2.Wait(context.Background())
	if err := l2.Wait(ctx); err == nil {
		t.Error("Wait with a cancelled context succeeded")
	}
}

func TestDriftEMF(t *testing.T) {
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Region        string
		RegistryDrift int
	}
	at := time.UnixMilli(1_767_000_000_000)
	if err := json.Unmarshal(replay.DriftEMF("IotMultiRegion", "us-east-1", 7, at), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.AWS.CloudWatchMetrics
	if doc.AWS.Timestamp != at.UnixMilli() || len(m) != 1 || m[0].Namespace != "IotMultiRegion" ||
		!slices.Equal(m[0].Dimensions[0], []string{"Region"}) || m[0].Metrics[0].Name != "RegistryDrift" ||
		doc.Region != "us-east-1" || doc.RegistryDrift != 7 {
		t.Errorf("DriftEMF = %+v", doc)
	}
}

// cancelAfter ends the run's context after n creates.
type cancelAfter struct {
	replay.IoTAPI
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) CreateThing(ctx context.Context, in *iot.CreateThingInput, opts ...func(*iot.Options)) (*iot.CreateThingOutput, error) {
	out, err := c.IoTAPI.CreateThing(ctx, in, opts...)
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return out, err
}

// A run that reaches its deadline stops repairing and says so; the next run finishes the job.
func TestReconcileStopsAtDeadline(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		p.CreateThing(t, n, "", nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	real := env.Applier.IoT
	env.Applier.IoT = &cancelAfter{IoTAPI: real, n: 2, cancel: cancel}
	rep, err := newReconciler(env, p).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Incomplete || rep.Created != 2 || rep.Failed != 0 {
		t.Errorf("run cut short = %+v, want incomplete after 2 creates, no failure counted", rep)
	}
	env.Applier.IoT = real
	rep, err = newReconciler(env, p).Run(context.Background())
	if err != nil || rep.Incomplete || rep.Created != 3 || len(replaytest.Diff(p.Srv, env.Replica)) != 0 {
		t.Errorf("next run = %+v, %v, want the other 3 created", rep, err)
	}
}
