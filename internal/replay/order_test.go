package replay_test

import (
	"context"
	"errors"
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

// apply runs one record through its CRUD function.
func apply(t *testing.T, env *replaytest.Env, r replay.Record) (replay.Outcome, error) {
	t.Helper()
	return replaytest.Route(r).Handle(context.Background(), env.Applier, r)
}

// AWS IoT deletes a thing type only five minutes after its deprecation: the replayed delete deprecates the type and
// asks to be retried later (ReplayNotReadyException), and deletes it once the five minutes have passed.
func TestThingTypeDeleteWaitsFiveMinutes(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThingType(t, "old", "")
	p.DeprecateThingType(t, "old", false)
	p.DeleteThingType(t, "old")
	recs := records(p)
	recs = []replay.Record{recs[0], recs[2]} // the deprecation's event is late: the replica deprecates the type itself
	if _, err := apply(t, env, recs[0]); err != nil {
		t.Fatal(err)
	}
	_, err := apply(t, env, recs[1])
	var later *replay.ReplayNotReadyException
	var nr *replay.NotReadyError
	if !errors.As(err, &later) || !errors.As(err, &nr) || nr.RetryAfter != replay.ThingTypeDeleteDelay {
		t.Fatalf("delete = %v, want ReplayNotReadyException asking for %v", err, replay.ThingTypeDeleteDelay)
	}
	if n := env.Replica.Calls(awsfake.ServiceIoT, "DeleteThingType"); n != 0 {
		t.Errorf("DeleteThingType called %d times within the five minutes, want 0", n)
	}
	c := iot.NewFromConfig(env.Replica.Config(context.Background()))
	d, err := c.DescribeThingType(context.Background(), &iot.DescribeThingTypeInput{ThingTypeName: aws.String("old")})
	if err != nil || !d.ThingTypeMetadata.Deprecated {
		t.Fatalf("type after the first attempt = %+v, %v, want it deprecated", d, err)
	}
	env.Clock.Advance(2 * time.Minute)
	// The deprecation date AWS returns has a resolution of a second or finer.
	if _, err := apply(t, env, recs[1]); !errors.As(err, &nr) || (nr.RetryAfter-(replay.ThingTypeDeleteDelay-2*time.Minute)).Abs() > time.Second {
		t.Fatalf("delete two minutes later = %v, want ReplayNotReadyException for the rest", err)
	}
	env.Clock.Advance(replay.ThingTypeDeleteDelay - 2*time.Minute)
	if out, err := apply(t, env, recs[1]); err != nil || out.Result != "applied" {
		t.Fatalf("delete five minutes later = %+v, %v, want applied", out, err)
	}
	if names := env.Replica.IoT.ThingTypeNames(); len(names) != 0 {
		t.Errorf("thing types = %v, want none", names)
	}

	// An InvalidRequestException of the delete after the wait (AWS's clock behind ours, or a thing whose own event has
	// not removed the type yet) is a wait too, not a failure.
	p.CreateThingType(t, "busy", "")
	p.DeprecateThingType(t, "busy", false)
	p.DeleteThingType(t, "busy")
	recs = records(p)[3:]
	for _, r := range recs[:2] {
		if _, err := apply(t, env, r); err != nil {
			t.Fatal(err)
		}
	}
	env.Clock.Advance(replay.ThingTypeDeleteDelay)
	env.Replica.Inject(awsfake.ServiceIoT, "DeleteThingType", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	if _, err := apply(t, env, recs[2]); !errors.As(err, &later) {
		t.Fatalf("delete refused by AWS = %v, want ReplayNotReadyException", err)
	}
	if out, err := apply(t, env, recs[2]); err != nil || out.Result != "applied" {
		t.Fatalf("its retry = %+v, %v, want applied", out, err)
	}
}

// Two events of one thing in the same millisecond: a delete and the create of a new thing with that name (new
// thingId, version 1 again), in either arrival order, leave the new thing; without an origin to ask, the second event
// fails (retried, then the dead-letter queue) instead of guessing.
func TestSameMillisecondDeleteAndCreate(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		name := "delete first"
		if reverse {
			name = "create first"
		}
		t.Run(name, func(t *testing.T) {
			env := replaytest.New(t)
			env.WithOrigin(replaytest.NewPrimary(t)) // replaced below: the origin is the primary that made the events
			p := replaytest.NewPrimary(t)
			env.WithOrigin(p)
			replaytest.ScenarioSameMillisecond(t, p)
			recs := records(p)
			setup, same := recs[:6], recs[6:]
			if res := replaytest.Drive(t, env.Applier, env.Clock, setup); len(res.DLQ) != 0 || res.CrudRetries != 0 {
				t.Fatalf("setup: %+v", res)
			}
			if reverse {
				slices.Reverse(same)
			}
			repaired := 0
			for _, r := range same {
				out, err := apply(t, env, r)
				if err != nil {
					t.Fatalf("%s: %v", r.NewImage["eventId"].String(), err)
				}
				if out.Result == "repaired" {
					repaired++
				}
			}
			// The update and delete of one thingId are ordered by the delete's rank; the other two pairs are not.
			if repaired != 2 {
				t.Errorf("%d events read-repaired, want 2 (the second of the re-created thing's pair and of the membership's)", repaired)
			}
			if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
				t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
			}
			if th, ok := env.Replica.IoT.Thing("twin"); !ok || th.Attributes["gen"] != "2" {
				t.Errorf("twin = %+v, %v, want the thing created again (gen=2)", th, ok)
			}
		})
	}

	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.ScenarioSameMillisecond(t, p)
	recs := records(p)
	for _, r := range recs[:7] { // setup, then twin's delete
		if _, err := apply(t, env, r); err != nil {
			t.Fatal(err)
		}
	}
	var retry *replay.ThingCrudException
	if _, err := apply(t, env, recs[7]); !errors.As(err, &retry) || !strings.Contains(err.Error(), "same timestamp") {
		t.Errorf("create in the delete's millisecond, no origin = %v, want a ThingCrudException about the order", err)
	}
}

// Events of one thing with one thingId and one timestamp are ordered by what they say: a delete is the last thing
// that happens to a thingId, whatever version it carries.
func TestSameMillisecondSameIncarnation(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThing(t, "t1", "", map[string]string{"v": "1"})
	p.Step = 0
	p.UpdateAttributes(t, "t1", map[string]string{"v": "2"}, true)
	p.DeleteThing(t, "t1")
	recs := records(p)
	for _, r := range []replay.Record{recs[0], recs[2], recs[1]} {
		out, err := apply(t, env, r)
		if err != nil || out.Result == "repaired" {
			t.Fatalf("%s = %+v, %v, want ordered without asking the origin", r.NewImage["eventId"].String(), out, err)
		}
	}
	if _, ok := env.Replica.IoT.Thing("t1"); ok {
		t.Error("t1 exists: the update in the delete's millisecond resurrected it")
	}
}

// Events that arrive before what they depend on apply at once: the thing's type, the membership's thing and group,
// the group's parent and the association's thing are read from the origin region and applied first. Reversed and
// shuffled orders need no retry of the CRUD exceptions; only the thing type's five minutes are waited for.
func TestEventsBeforeTheirDependencies(t *testing.T) {
	for _, o := range []struct {
		name    string
		reorder func([]replay.Record) []replay.Record
	}{
		{"reversed", func(r []replay.Record) []replay.Record { r = slices.Clone(r); slices.Reverse(r); return r }},
		{"shuffled with duplicates, seed 5", func(r []replay.Record) []replay.Record { return shuffleWithDuplicates(r, 5) }},
		// A type association before its thing, whose read-repair already gave the thing its current type.
		{"shuffled with duplicates, seed 24", func(r []replay.Record) []replay.Record { return shuffleWithDuplicates(r, 24) }},
		// A membership of a thing created again while the old thing, not yet deleted here, is still in place.
		{"shuffled with duplicates, seed 26", func(r []replay.Record) []replay.Record { return shuffleWithDuplicates(r, 26) }},
	} {
		t.Run(o.name, func(t *testing.T) {
			env := replaytest.New(t)
			p := replaytest.NewPrimary(t)
			env.WithOrigin(p)
			replaytest.Scenario(t, p)
			replaytest.ScenarioSameMillisecond(t, p)
			res := replaytest.Drive(t, env.Applier, env.Clock, o.reorder(records(p)))
			if len(res.DLQ) != 0 || res.CrudRetries != 0 {
				t.Errorf("drive = %d dead letters, %d retries (%v), want none", len(res.DLQ), res.CrudRetries, res.Errors)
			}
			if res.Took > 10*time.Minute {
				t.Errorf("converged after %v, want within the thing type's wait", res.Took)
			}
			if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
				t.Errorf("replica differs from the primary:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// A dependency that the origin no longer has makes the event moot: it is skipped, not retried for ever.
func TestDependencyGoneInOrigin(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	env.WithOrigin(p)
	p.CreateGroup(t, "g", "", "", nil)
	p.CreateThing(t, "t1", "", nil)
	p.AddToGroup(t, "g", "t1")
	p.CreateGroup(t, "child", "g", "", nil)
	p.DeleteGroup(t, "child")
	p.DeleteThing(t, "t1")
	p.CreateGroup(t, "p2", "", "", nil)
	p.CreateGroup(t, "c2", "p2", "", nil)
	p.DeleteGroup(t, "c2")
	p.DeleteGroup(t, "p2")
	recs := records(p)
	// 2: t1 joins g (t1 is gone); 4: child under g (child is gone); 11: c2 created under p2 (p2 is gone).
	for _, i := range []int{2, 4, 11} {
		out, err := apply(t, env, recs[i])
		if err != nil || out.Result != "skipped" || !strings.Contains(out.Reason, "no longer exists in the origin") {
			t.Errorf("%s = %+v, %v, want skipped: its dependency is gone", recs[i].NewImage["eventType"].String(), out, err)
		}
	}
	if groups := env.Replica.IoT.ThingGroups(); len(groups) != 1 || groups[0].Name != "g" {
		t.Errorf("groups = %+v, want g (read-repaired for the membership) only", groups)
	}
	if _, ok := env.Replica.IoT.Thing("t1"); ok {
		t.Error("t1 was created from an event of a thing the origin deleted")
	}
}

// Replay refuses an event of no origin, of a region outside the configured set, or stamped beyond the clock-skew
// bound in the future; a timestamp within the bound is replayed.
func TestAdmission(t *testing.T) {
	env := replaytest.New(t)
	now := env.Clock.Now()
	ev := func(id, origin string, ts time.Time) replay.Record {
		return replaytest.Record(map[string]any{"eventType": replay.ThingEvent, "eventId": id, "timestamp": ts.UnixMilli(),
			"operation": "CREATED", "thingName": "t-" + id, "versionNumber": int64(1), "attributes": map[string]any{}}, origin)
	}
	for _, r := range []replay.Record{
		ev("none", "", now), ev("foreign", "eu-west-1", now), ev("future", replaytest.PrimaryRegion, now.Add(replay.DefaultMaxClockSkew+time.Second)),
	} {
		_, err := apply(t, env, r)
		var inv *replay.InvalidEventException
		var refused *replay.RefusedError
		if !errors.As(err, &inv) || !errors.As(err, &refused) {
			t.Errorf("%s = %v, want refused (InvalidEventException)", r.NewImage["eventId"].String(), err)
		}
	}
	if out, err := apply(t, env, ev("skewed", replaytest.PrimaryRegion, now.Add(time.Minute))); err != nil || out.Result != "applied" {
		t.Errorf("event a minute ahead = %+v, %v, want applied", out, err)
	}
	if things := env.Replica.IoT.Things(); len(things) != 1 || things[0].Name != "t-skewed" {
		t.Errorf("things = %+v, want only t-skewed", things)
	}
	if _, err := replay.ParseOrigins("us-west-2, eu-central-1"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", " , ", "us-west-2,mars"} {
		if _, err := replay.ParseOrigins(bad); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
}
