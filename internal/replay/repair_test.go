package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

// Same-millisecond pairs of thing types, thing groups and type associations that nothing orders are settled by what
// the origin holds, in either arrival order.
func TestSameMillisecondOtherEntities(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		env := replaytest.New(t)
		p := replaytest.NewPrimary(t)
		env.WithOrigin(p)
		p.CreateThingType(t, "a", "")
		p.CreateThingType(t, "b", "")
		p.CreateThing(t, "x", "a", nil)
		p.CreateGroup(t, "g", "", "first", nil)
		setup := len(p.Events)
		p.Step = 0
		p.CreateThingType(t, "tt", "")
		p.DeprecateThingType(t, "tt", false) // CREATED and UPDATED of one thingTypeId: neither rank nor version
		p.DeleteGroup(t, "g")
		p.CreateGroup(t, "g", "", "second", nil) // another thingGroupId
		p.SetType(t, "x", "b")                   // UPDATED, association REMOVED a, ADDED b
		recs := records(p)
		if res := replaytest.Drive(t, env.Applier, env.Clock, recs[:setup]); len(res.DLQ) != 0 {
			t.Fatalf("setup: %+v", res)
		}
		same := recs[setup:]
		if reverse {
			for i, j := 0, len(same)-1; i < j; i, j = i+1, j-1 {
				same[i], same[j] = same[j], same[i]
			}
		}
		repaired := map[string]bool{}
		for _, r := range same {
			out, err := apply(t, env, r)
			if err != nil {
				t.Fatalf("reverse %v: %s: %v", reverse, r.NewImage["eventType"].String(), err)
			}
			if out.Result == "repaired" {
				repaired[strings.SplitN(out.Entity, "/", 2)[0]] = true
			}
		}
		for _, kind := range []string{"thingtype", "thinggroup", "thing-type-of"} {
			if !repaired[kind] {
				t.Errorf("reverse %v: no %s event read-repaired (%v)", reverse, kind, repaired)
			}
		}
		if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
			t.Errorf("reverse %v: replica differs from the primary:\n%s", reverse, strings.Join(d, "\n"))
		}
		if g, _ := env.Replica.IoT.ThingGroup("g"); g.Description != "second" {
			t.Errorf("reverse %v: group g = %+v, want the second one", reverse, g)
		}
		// An association older than the read-repair no longer applies.
		out, err := apply(t, env, recs[3]) // x's ADDED a
		if err != nil || out.Result != "stale" {
			t.Errorf("reverse %v: old association after the repair = %+v, %v, want stale", reverse, out, err)
		}
	}
}

// A read-repair that cannot read the origin fails the event (retried), and an origin region outside the Applier's
// reach is an error, not a guess.
func TestReadRepairOriginFailure(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	env.WithOrigin(p)
	p.CreateThing(t, "m", "", nil)
	p.CreateGroup(t, "g", "", "", nil)
	p.AddToGroup(t, "g", "m")
	p.Srv.Inject(awsfake.ServiceIoT, "DescribeThingGroup", awsfake.Fault{Status: 500, Code: "InternalFailureException", Times: 10})
	_, err := apply(t, env, records(p)[2])
	var retry *replay.ThingGroupCrudException
	if err == nil || !strings.Contains(err.Error(), "describe thing group g in "+replaytest.PrimaryRegion) {
		t.Fatalf("membership with the origin failing = %v, want the origin's failure", err)
	} else if !asGroupCrud(err, &retry) {
		t.Errorf("error %T, want ThingGroupCrudException (retried)", err)
	}
	p.Srv.ClearFaults()
	env.Applier.Origin = func(string) (replay.OriginAPI, error) { return nil, context.DeadlineExceeded }
	if _, err := apply(t, env, records(p)[2]); err == nil || !strings.Contains(err.Error(), "registry of "+replaytest.PrimaryRegion) {
		t.Errorf("membership with no origin client = %v, want an error naming the region", err)
	}
}

func asGroupCrud(err error, target **replay.ThingGroupCrudException) bool {
	e, ok := err.(*replay.ThingGroupCrudException)
	*target = e
	return ok
}

// The CRUD functions' Applier from their environment: the table, the origin regions (required), a client per origin
// region for read-repair and none for any other.
func TestNewApplierFromEnv(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	t.Setenv("VERSIONS_TABLE", "")
	if _, err := replay.NewApplierFromEnv(ctx); err == nil || !strings.Contains(err.Error(), "VERSIONS_TABLE") {
		t.Errorf("without VERSIONS_TABLE = %v", err)
	}
	t.Setenv("VERSIONS_TABLE", "versions")
	t.Setenv("ORIGIN_REGIONS", "")
	if _, err := replay.NewApplierFromEnv(ctx); err == nil || !strings.Contains(err.Error(), "ORIGIN_REGIONS") {
		t.Errorf("without ORIGIN_REGIONS = %v", err)
	}
	t.Setenv("ORIGIN_REGIONS", "us-west-2,eu-central-1")
	t.Setenv("JITR_POLICY_NAME", "")
	a, err := replay.NewApplierFromEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.PolicyName != "jitr-mr-policy" || len(a.Admission.Origins) != 2 {
		t.Errorf("applier = %+v", a)
	}
	o, err := a.Origin("eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	srv.IoT.PutThingType("remote")
	if _, err := o.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("remote")}); err != nil {
		t.Errorf("origin client: %v", err)
	}
	if _, err := a.Origin("ap-south-1"); err == nil {
		t.Error("a client for a region that is not an origin")
	}
}

func TestRefusedEMF(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(replay.RefusedEMF("IotMultiRegion", "eu-west-1", 4, time.UnixMilli(1234)), &m); err != nil {
		t.Fatal(err)
	}
	if m["RefusedEvents"] != float64(4) || m["Region"] != "eu-west-1" {
		t.Errorf("EMF = %v", m)
	}
	if !strings.Contains(replay.Ambiguous.String()+replay.Busy.String(), "ambiguous") {
		t.Error("claim names")
	}
	a, b := replay.Order{TS: 1, Rank: 1}, replay.Order{TS: 1, Ver: 9}
	if !a.After(b) || b.After(a) || (replay.Order{TS: 2}).After(replay.Order{TS: 3}) {
		t.Error("a delete (rank 1) is after anything else of its millisecond; a later timestamp after an earlier one")
	}
}

// The limiter's middleware spaces an SDK client's calls.
func TestLimiterMiddleware(t *testing.T) {
	srv := awsfake.New(t)
	l := replay.NewLimiter(50)
	c := iot.NewFromConfig(srv.Config(context.Background()), func(o *iot.Options) { o.APIOptions = append(o.APIOptions, l.Middleware) })
	start := time.Now()
	for range 4 {
		if _, err := c.ListThings(context.Background(), &iot.ListThingsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 55*time.Millisecond {
		t.Errorf("4 calls at 50 a second took %v, want at least 60 ms", d)
	}
}

// Every event type's fields are checked: ids, names, flags, lists, the parent, the ARNs of a membership, the groups of
// a hierarchy link.
func TestParseImageFieldsRefused(t *testing.T) {
	tests := []struct {
		name string
		ev   map[string]any
		want string
	}{
		{"thingId", map[string]any{"eventType": replay.ThingEvent, "operation": "CREATED", "thingName": "t", "thingId": "a/b"}, "thingId"},
		{"thingId not a string", map[string]any{"eventType": replay.ThingEvent, "operation": "CREATED", "thingName": "t", "thingId": int64(1)}, "thingId"},
		{"thing type name", map[string]any{"eventType": replay.ThingEvent, "operation": "CREATED", "thingName": "t", "thingTypeName": "a b"}, "thingTypeName"},
		{"version not a number", map[string]any{"eventType": replay.ThingEvent, "operation": "CREATED", "thingName": "t", "versionNumber": "1"}, "versionNumber"},
		{"attributes not a map", map[string]any{"eventType": replay.ThingEvent, "operation": "CREATED", "thingName": "t", "attributes": "a=1"}, "attributes"},
		{"type operation", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "ADDED", "thingTypeName": "tt"}, "operation"},
		{"type name", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED"}, "thingTypeName"},
		{"thingTypeId", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt", "thingTypeId": "x y"}, "thingTypeId"},
		{"isDeprecated", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt", "isDeprecated": "yes"}, "isDeprecated"},
		{"description", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt", "description": "a\nb"}, "description"},
		{"description type", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt", "description": true}, "description"},
		{"searchable", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt", "searchableAttributes": "a"}, "searchable"},
		{"searchable count", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt",
			"searchableAttributes": []any{"a", "b", "c", "d"}}, "3 searchable"},
		{"searchable name", map[string]any{"eventType": replay.ThingTypeEvent, "operation": "CREATED", "thingTypeName": "tt",
			"searchableAttributes": []any{"a b"}}, "searchable"},
		{"association operation", map[string]any{"eventType": replay.ThingTypeAssocEvent, "operation": "CREATED", "thingName": "t", "thingTypeName": "tt"}, "operation"},
		{"association thing", map[string]any{"eventType": replay.ThingTypeAssocEvent, "operation": "ADDED", "thingTypeName": "tt"}, "thingName"},
		{"association thingId", map[string]any{"eventType": replay.ThingTypeAssocEvent, "operation": "ADDED", "thingName": "t", "thingId": "-/-"}, "thingId"},
		{"association type", map[string]any{"eventType": replay.ThingTypeAssocEvent, "operation": "ADDED", "thingName": "t"}, "thingTypeName"},
		{"group operation", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "ADDED", "thingGroupName": "g"}, "operation"},
		{"group name", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED"}, "thingGroupName"},
		{"thingGroupId", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "thingGroupId": "a.b"}, "thingGroupId"},
		{"parent", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "parentGroupName": "a b"}, "parentGroupName"},
		{"own parent", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "parentGroupName": "g"}, "own parent"},
		{"group version", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "versionNumber": true}, "versionNumber"},
		{"group description", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "description": int64(1)}, "description"},
		{"group description text", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g",
			"description": strings.Repeat("d", 2029)}, "description"},
		{"group attributes", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "attributes": []any{}}, "attributes"},
		{"dynamic mapping", map[string]any{"eventType": replay.ThingGroupEvent, "operation": "CREATED", "thingGroupName": "g", "dynamicGroupMappingId": true}, "dynamicGroupMappingId"},
		{"membership operation", map[string]any{"eventType": replay.GroupMembershipEvent, "operation": "CREATED"}, "operation"},
		{"membership group ARN", map[string]any{"eventType": replay.GroupMembershipEvent, "operation": "ADDED",
			"groupArn": "arn:aws:iot:us-west-2:123456789012:thing/t"}, "thinggroup ARN"},
		{"membership group ARN type", map[string]any{"eventType": replay.GroupMembershipEvent, "operation": "ADDED", "groupArn": int64(1)}, "groupArn"},
		{"membership thing ARN", map[string]any{"eventType": replay.GroupMembershipEvent, "operation": "ADDED",
			"groupArn": "arn:aws:iot:us-west-2:123456789012:thinggroup/g", "thingArn": "arn:aws:iot:us-west-2:123456789012:thing/a b"}, "thing ARN"},
		{"membership thing ARN type", map[string]any{"eventType": replay.GroupMembershipEvent, "operation": "ADDED",
			"groupArn": "arn:aws:iot:us-west-2:123456789012:thinggroup/g", "thingArn": false}, "thingArn"},
		{"membership thingId", map[string]any{"eventType": replay.GroupMembershipEvent, "operation": "ADDED",
			"groupArn": "arn:aws:iot:us-west-2:123456789012:thinggroup/g", "thingArn": "arn:aws:iot:us-west-2:123456789012:thing/t",
			"thingId": "?"}, "thingId"},
		{"hierarchy operation", map[string]any{"eventType": replay.GroupHierarchyEvent, "operation": "CREATED"}, "operation"},
		{"hierarchy parent", map[string]any{"eventType": replay.GroupHierarchyEvent, "operation": "ADDED"}, "name"},
		{"hierarchy child", map[string]any{"eventType": replay.GroupHierarchyEvent, "operation": "ADDED",
			"thingGroup": map[string]any{"name": "p"}}, "name"},
		{"hierarchy loop", map[string]any{"eventType": replay.GroupHierarchyEvent, "operation": "ADDED",
			"thingGroup": map[string]any{"name": "p"}, "childGroup": map[string]any{"name": "p"}}, "own child"},
		{"eventType not a string", map[string]any{"eventType": int64(3)}, "eventType"},
		{"operation not a string", map[string]any{"eventType": replay.ThingEvent, "operation": []any{"CREATED"}}, "operation"},
		{"timestamp not whole", map[string]any{"eventType": replay.ThingEvent, "timestamp": "1.5"}, "timestamp"},
		{"origin not a string", map[string]any{"eventType": replay.ThingEvent, "operation": "CREATED", "thingName": "t", "originRegion": int64(1)}, "originRegion"},
	}
	for _, tc := range tests {
		ev := map[string]any{"eventId": "e-1", "timestamp": int64(1000)}
		for k, v := range tc.ev {
			ev[k] = v
		}
		rec := replaytest.Record(ev, replaytest.PrimaryRegion)
		if o, ok := tc.ev["originRegion"]; ok {
			rec.NewImage["originRegion"] = replaytest.LambdaValue(replaytest.AttributeValue(o))
		}
		if ts, ok := tc.ev["timestamp"].(string); ok {
			rec.NewImage["timestamp"] = events.NewNumberAttribute(ts)
		}
		_, err := replay.ParseRecord(rec)
		if err == nil || !replay.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseRecord = %v, want an invalid-event error about %s", tc.name, err, tc.want)
		}
	}
	// Values of every DynamoDB type reach the parser; a set of strings is a list.
	rec := replaytest.Record(map[string]any{"eventType": replay.ThingTypeEvent, "eventId": "e-2", "timestamp": int64(1000),
		"operation": "CREATED", "thingTypeName": "tt"}, replaytest.PrimaryRegion)
	rec.NewImage["searchableAttributes"] = events.NewStringSetAttribute([]string{"site"})
	if ev, err := replay.ParseRecord(rec); err != nil || len(ev.Searchable) != 1 {
		t.Errorf("string set = %+v, %v", ev, err)
	}
	rec.NewImage["searchableAttributes"] = events.NewBinaryAttribute([]byte("x"))
	if _, err := replay.ParseRecord(rec); !replay.IsInvalid(err) {
		t.Errorf("binary attribute = %v, want invalid", err)
	}
}

// A read-repair that fails leaves the event to be retried, and the retry reads the origin again: the failed repair's
// claim does not make the event look stale.
func TestFailedReadRepairRetried(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	env.WithOrigin(p)
	replaytest.ScenarioSameMillisecond(t, p)
	recs := records(p)
	for _, r := range recs[:6] {
		if _, err := apply(t, env, r); err != nil {
			t.Fatal(err)
		}
	}
	removed, added := recs[10], recs[11] // flip/member: REMOVED and ADDED in one millisecond
	if out, err := apply(t, env, removed); err != nil || out.Result != "applied" {
		t.Fatalf("REMOVED = %+v, %v", out, err)
	}
	env.Replica.Inject(awsfake.ServiceIoT, "AddThingToThingGroup", awsfake.Fault{Status: 500, Code: "InternalFailureException", Times: 5})
	if _, err := apply(t, env, added); err == nil {
		t.Fatal("ADDED with its read-repair failing succeeded")
	}
	env.Replica.ClearFaults()
	if out, err := apply(t, env, added); err != nil || out.Result != "repaired" {
		t.Fatalf("retried ADDED = %+v, %v, want repaired", out, err)
	}
	if m := env.Replica.IoT.GroupMembers("flip"); len(m) != 1 || m[0] != "member" {
		t.Errorf("flip members = %v, want [member]", m)
	}
}

// A thing type's deprecation is changed under a lock: while a thing event lifts it for one call, the type's own events
// wait (BusyError, retried), so that putting the deprecation back never undoes theirs.
func TestThingTypeLock(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	p.CreateThingType(t, "sensor", "")
	recs := records(p)
	ctx := context.Background()
	if ok, err := env.Applier.Versions.Lock(ctx, "thingtype/sensor", "other"); err != nil || !ok {
		t.Fatalf("Lock = %v, %v", ok, err)
	}
	if ok, _ := env.Applier.Versions.Lock(ctx, "thingtype/sensor", "third"); ok {
		t.Fatal("a second owner took a held lock")
	}
	_, err := apply(t, env, recs[0])
	var retry *replay.ThingTypeCrudException
	var busy *replay.BusyError
	if !errors.As(err, &retry) || !errors.As(err, &busy) {
		t.Fatalf("type event under another's lock = %v, want a retried BusyError", err)
	}
	if err := env.Applier.Versions.Unlock(ctx, "thingtype/sensor", "other"); err != nil {
		t.Fatal(err)
	}
	if out, err := apply(t, env, recs[0]); err != nil || out.Result != "applied" {
		t.Fatalf("after the unlock = %+v, %v, want applied", out, err)
	}
	// A lock whose holder crashed is taken over after its lease.
	if ok, _ := env.Applier.Versions.Lock(ctx, "thingtype/sensor", "crashed"); !ok {
		t.Fatal("lock not taken")
	}
	env.Applier.Versions.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if ok, _ := env.Applier.Versions.Lock(ctx, "thingtype/sensor", "next"); !ok {
		t.Error("a lock past its lease was not taken over")
	}
}
