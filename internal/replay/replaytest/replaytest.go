// Package replaytest supports the tests of the registry replication: a replica region (the AWS IoT fake and a
// Versions table in DynamoDB Local), a simulated primary region whose operations, made through the real SDK against
// its own fake, yield the registry events AWS IoT publishes, the items the primary's rule writes from them, and a
// comparison of the two registries.
package replaytest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/replay"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// PrimaryRegion is the simulated primary's region; the replica is awsfake.Region.
const PrimaryRegion = "us-west-2"

// Env is a replica region ready to apply events.
type Env struct {
	Replica  *awsfake.Server
	DynamoDB *dynamodb.Client
	Table    string // the Versions table
	Applier  *replay.Applier
	// Clock is the replica's time: the fake's registry rules and the Applier read it.
	Clock *Clock
}

// Clock is a simulated clock: it starts at the wall clock's time and moves only when told, so that a test lets five
// minutes pass at once.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at the wall clock's time.
func NewClock() *Clock { return &Clock{t: time.Now().UTC()} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var tableSeq atomic.Int64

// New starts the replica's fake (the test's AWS environment points at it), DynamoDB Local and a fresh Versions table.
// The test must not be parallel.
func New(t testing.TB) *Env {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	t.Setenv("AWS_CA_BUNDLE", "")
	endpoint := testsvc.DynamoDB(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", endpoint)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Replica: srv, DynamoDB: dynamodb.NewFromConfig(cfg), Clock: NewClock()}
	srv.IoT.SetClock(e.Clock.Now)
	e.Table = fmt.Sprintf("versions-%d", tableSeq.Add(1))
	if err := CreateVersionsTable(ctx, e.DynamoDB, e.Table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.Table)})
	})
	t.Setenv("VERSIONS_TABLE", e.Table)
	t.Setenv("ORIGIN_REGIONS", PrimaryRegion)
	e.Applier = &replay.Applier{IoT: iot.NewFromConfig(cfg), Versions: &replay.Versions{DB: e.DynamoDB, Table: e.Table},
		PolicyName: "jitr-mr-policy", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.Clock.Now,
		Admission: replay.Admission{Origins: []string{PrimaryRegion}, Now: e.Clock.Now}}
	return e
}

// WithOrigin lets the replica's Applier read-repair from the primary (its registry is PrimaryRegion's).
func (e *Env) WithOrigin(p *Primary) {
	e.Applier.Origin = func(region string) (replay.OriginAPI, error) {
		if region != PrimaryRegion {
			return nil, fmt.Errorf("%s is not an origin region", region)
		}
		return p.IoT, nil
	}
}

// CreateVersionsTable defines the Versions table as the stack does: partition key pk (S), on demand.
func CreateVersionsTable(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}

// Primary is the simulated primary region: each operation goes through the SDK to its own fake, and the registry
// events AWS IoT would publish for it are recorded, in order, with increasing timestamps.
type Primary struct {
	Srv    *awsfake.Server
	IoT    *iot.Client
	Events []map[string]any
	// Step is how many milliseconds pass between two events (default 1000); 0 stamps every following event with the
	// same millisecond.
	Step  int64
	clock int64
	seq   int
}

// NewPrimary starts the primary's fake.
func NewPrimary(t testing.TB) *Primary {
	t.Helper()
	srv := awsfake.New(t)
	p := &Primary{Srv: srv, IoT: iot.NewFromConfig(srv.Config(context.Background())), clock: 1_767_000_000_000, Step: 1000}
	srv.IoT.SetClock(func() time.Time { return time.UnixMilli(p.clock) })
	return p
}

func (p *Primary) emit(t testing.TB, typ, op string, fields map[string]any) {
	t.Helper()
	p.clock += p.Step
	p.seq++
	// AWS IoT's eventIds are UUIDs (https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html).
	id := fmt.Sprintf("%032x", p.seq)
	id = id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
	ev := map[string]any{"eventType": typ, "eventId": id, "timestamp": p.clock,
		"operation": op, "accountId": awsfake.AccountID}
	maps.Copy(ev, fields)
	p.Events = append(p.Events, ev)
}

func (p *Primary) thingEvent(t testing.TB, op, name string) {
	t.Helper()
	th, ok := p.Srv.IoT.Thing(name)
	if !ok {
		t.Fatalf("primary: thing %s not found", name)
	}
	var typ any
	if th.TypeName != "" {
		typ = th.TypeName
	}
	attrs := map[string]any{}
	for k, v := range th.Attributes {
		attrs[k] = v
	}
	p.emit(t, replay.ThingEvent, op, map[string]any{"thingId": th.ID, "thingName": name, "versionNumber": th.Version,
		"thingTypeName": typ, "attributes": attrs})
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("primary: %s: %v", what, err)
	}
}

// CreateThing creates a thing.
func (p *Primary) CreateThing(t testing.TB, name, typ string, attrs map[string]string) {
	t.Helper()
	in := &iot.CreateThingInput{ThingName: aws.String(name), AttributePayload: &types.AttributePayload{Attributes: attrs}}
	if typ != "" {
		in.ThingTypeName = aws.String(typ)
	}
	_, err := p.IoT.CreateThing(context.Background(), in)
	must(t, "create thing "+name, err)
	p.thingEvent(t, "CREATED", name)
	if typ != "" {
		th, _ := p.Srv.IoT.Thing(name)
		p.emit(t, replay.ThingTypeAssocEvent, "ADDED", map[string]any{"thingId": th.ID, "thingName": name, "thingTypeName": typ})
	}
}

// UpdateAttributes updates a thing's attributes (merge as UpdateThing's).
func (p *Primary) UpdateAttributes(t testing.TB, name string, attrs map[string]string, merge bool) {
	t.Helper()
	_, err := p.IoT.UpdateThing(context.Background(), &iot.UpdateThingInput{ThingName: aws.String(name),
		AttributePayload: &types.AttributePayload{Attributes: attrs, Merge: merge}})
	must(t, "update thing "+name, err)
	p.thingEvent(t, "UPDATED", name)
}

// SetType changes a thing's type ("" removes it): a thing event and the association events.
func (p *Primary) SetType(t testing.TB, name, typ string) {
	t.Helper()
	before, _ := p.Srv.IoT.Thing(name)
	in := &iot.UpdateThingInput{ThingName: aws.String(name)}
	if typ == "" {
		in.RemoveThingType = true
	} else {
		in.ThingTypeName = aws.String(typ)
	}
	_, err := p.IoT.UpdateThing(context.Background(), in)
	must(t, "set the type of "+name, err)
	p.thingEvent(t, "UPDATED", name)
	if before.TypeName != "" {
		p.emit(t, replay.ThingTypeAssocEvent, "REMOVED", map[string]any{"thingId": before.ID, "thingName": name, "thingTypeName": before.TypeName})
	}
	if typ != "" {
		p.emit(t, replay.ThingTypeAssocEvent, "ADDED", map[string]any{"thingId": before.ID, "thingName": name, "thingTypeName": typ})
	}
}

// DeleteThing deletes a thing (its memberships go with it, as AWS IoT publishes).
func (p *Primary) DeleteThing(t testing.TB, name string) {
	t.Helper()
	th, _ := p.Srv.IoT.Thing(name)
	for _, g := range p.Srv.IoT.ThingGroups() {
		if slices.Contains(p.Srv.IoT.GroupMembers(g.Name), name) {
			p.RemoveFromGroup(t, g.Name, name)
		}
	}
	p.thingEvent(t, "DELETED", name)
	_, err := p.IoT.DeleteThing(context.Background(), &iot.DeleteThingInput{ThingName: aws.String(name)})
	must(t, "delete thing "+name, err)
	_ = th
}

func (p *Primary) typeEvent(t testing.TB, op, name string) {
	t.Helper()
	d, err := p.IoT.DescribeThingType(context.Background(), &iot.DescribeThingTypeInput{ThingTypeName: aws.String(name)})
	must(t, "describe thing type "+name, err)
	var desc any
	searchable := []any{}
	if d.ThingTypeProperties != nil {
		if d.ThingTypeProperties.ThingTypeDescription != nil {
			desc = *d.ThingTypeProperties.ThingTypeDescription
		}
		for _, s := range d.ThingTypeProperties.SearchableAttributes {
			searchable = append(searchable, s)
		}
	}
	deprecated := d.ThingTypeMetadata != nil && d.ThingTypeMetadata.Deprecated
	p.emit(t, replay.ThingTypeEvent, op, map[string]any{"thingTypeId": aws.ToString(d.ThingTypeId), "thingTypeName": name,
		"isDeprecated": deprecated, "deprecationDate": nil, "searchableAttributes": searchable, "description": desc})
}

// CreateThingType creates a thing type.
func (p *Primary) CreateThingType(t testing.TB, name, description string, searchable ...string) {
	t.Helper()
	props := &types.ThingTypeProperties{SearchableAttributes: searchable}
	if description != "" {
		props.ThingTypeDescription = aws.String(description)
	}
	_, err := p.IoT.CreateThingType(context.Background(), &iot.CreateThingTypeInput{ThingTypeName: aws.String(name),
		ThingTypeProperties: props})
	must(t, "create thing type "+name, err)
	p.typeEvent(t, "CREATED", name)
}

// DeprecateThingType deprecates a type, or undoes it.
func (p *Primary) DeprecateThingType(t testing.TB, name string, undo bool) {
	t.Helper()
	_, err := p.IoT.DeprecateThingType(context.Background(), &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(name),
		UndoDeprecate: undo})
	must(t, "deprecate thing type "+name, err)
	p.typeEvent(t, "UPDATED", name)
}

// DeleteThingType deletes a thing type (deprecated first, as AWS IoT requires), once five minutes have passed since.
func (p *Primary) DeleteThingType(t testing.TB, name string) {
	t.Helper()
	p.clock += awsfake.ThingTypeDeleteDelay.Milliseconds()
	p.typeEvent(t, "DELETED", name)
	_, err := p.IoT.DeleteThingType(context.Background(), &iot.DeleteThingTypeInput{ThingTypeName: aws.String(name)})
	must(t, "delete thing type "+name, err)
}

func (p *Primary) groupEvent(t testing.TB, op, name string) {
	t.Helper()
	g, ok := p.Srv.IoT.ThingGroup(name)
	if !ok {
		t.Fatalf("primary: group %s not found", name)
	}
	attrs := map[string]any{}
	for k, v := range g.Attributes {
		attrs[k] = v
	}
	var parent, desc any
	if g.Parent != "" {
		parent = g.Parent
	}
	if g.Description != "" {
		desc = g.Description
	}
	p.emit(t, replay.ThingGroupEvent, op, map[string]any{"thingGroupId": g.ID, "thingGroupName": name,
		"versionNumber": g.Version, "parentGroupName": parent, "description": desc, "attributes": attrs,
		"rootToParentThingGroups": []any{}, "dynamicGroupMappingId": nil})
}

// CreateGroup creates a thing group under parent ("" for a root group).
func (p *Primary) CreateGroup(t testing.TB, name, parent, description string, attrs map[string]string) {
	t.Helper()
	in := &iot.CreateThingGroupInput{ThingGroupName: aws.String(name), ThingGroupProperties: &types.ThingGroupProperties{
		AttributePayload: &types.AttributePayload{Attributes: attrs}}}
	if description != "" {
		in.ThingGroupProperties.ThingGroupDescription = aws.String(description)
	}
	if parent != "" {
		in.ParentGroupName = aws.String(parent)
	}
	_, err := p.IoT.CreateThingGroup(context.Background(), in)
	must(t, "create group "+name, err)
	p.groupEvent(t, "CREATED", name)
	if parent != "" {
		pg, _ := p.Srv.IoT.ThingGroup(parent)
		g, _ := p.Srv.IoT.ThingGroup(name)
		p.emit(t, replay.GroupHierarchyEvent, "ADDED", map[string]any{
			"thingGroup": map[string]any{"id": pg.ID, "name": pg.Name, "arn": pg.ARN},
			"childGroup": map[string]any{"id": g.ID, "name": g.Name, "arn": g.ARN}})
	}
}

// UpdateGroup updates a group's properties (merge as UpdateThingGroup's).
func (p *Primary) UpdateGroup(t testing.TB, name, description string, attrs map[string]string, merge bool) {
	t.Helper()
	_, err := p.IoT.UpdateThingGroup(context.Background(), &iot.UpdateThingGroupInput{ThingGroupName: aws.String(name),
		ThingGroupProperties: &types.ThingGroupProperties{ThingGroupDescription: aws.String(description),
			AttributePayload: &types.AttributePayload{Attributes: attrs, Merge: merge}}})
	must(t, "update group "+name, err)
	p.groupEvent(t, "UPDATED", name)
}

// DeleteGroup deletes a group.
func (p *Primary) DeleteGroup(t testing.TB, name string) {
	t.Helper()
	g, _ := p.Srv.IoT.ThingGroup(name)
	for _, m := range p.Srv.IoT.GroupMembers(name) {
		p.RemoveFromGroup(t, name, m)
	}
	p.groupEvent(t, "DELETED", name)
	if g.Parent != "" {
		pg, _ := p.Srv.IoT.ThingGroup(g.Parent)
		p.emit(t, replay.GroupHierarchyEvent, "REMOVED", map[string]any{
			"thingGroup": map[string]any{"id": pg.ID, "name": pg.Name, "arn": pg.ARN},
			"childGroup": map[string]any{"id": g.ID, "name": g.Name, "arn": g.ARN}})
	}
	_, err := p.IoT.DeleteThingGroup(context.Background(), &iot.DeleteThingGroupInput{ThingGroupName: aws.String(name)})
	must(t, "delete group "+name, err)
}

func (p *Primary) membership(t testing.TB, op, group, thing string) {
	t.Helper()
	g, _ := p.Srv.IoT.ThingGroup(group)
	th, _ := p.Srv.IoT.Thing(thing)
	p.emit(t, replay.GroupMembershipEvent, op, map[string]any{"groupArn": g.ARN, "groupId": g.ID, "thingArn": th.ARN,
		"thingId": th.ID, "membershipId": fmt.Sprintf("m-%d", p.seq)})
}

// AddToGroup adds a thing to a group.
func (p *Primary) AddToGroup(t testing.TB, group, thing string) {
	t.Helper()
	_, err := p.IoT.AddThingToThingGroup(context.Background(), &iot.AddThingToThingGroupInput{
		ThingGroupName: aws.String(group), ThingName: aws.String(thing)})
	must(t, "add "+thing+" to "+group, err)
	p.membership(t, "ADDED", group, thing)
}

// RemoveFromGroup removes a thing from a group.
func (p *Primary) RemoveFromGroup(t testing.TB, group, thing string) {
	t.Helper()
	p.membership(t, "REMOVED", group, thing)
	_, err := p.IoT.RemoveThingFromThingGroup(context.Background(), &iot.RemoveThingFromThingGroupInput{
		ThingGroupName: aws.String(group), ThingName: aws.String(thing)})
	must(t, "remove "+thing+" from "+group, err)
}

// Item is the IoTMRProvisioning item the primary's rule writes for an event: every field as a top-level attribute
// (the DynamoDBv2 action's mapping of JSON), uuid = eventId, and the origin region.
func Item(ev map[string]any, origin string) map[string]ddbtypes.AttributeValue {
	item := map[string]ddbtypes.AttributeValue{}
	for k, v := range ev {
		item[k] = AttributeValue(v)
	}
	item["uuid"] = &ddbtypes.AttributeValueMemberS{Value: ev["eventId"].(string)}
	item["originRegion"] = &ddbtypes.AttributeValueMemberS{Value: origin}
	return item
}

// AttributeValue maps a JSON value as DynamoDB's JSON mapping does.
func AttributeValue(v any) ddbtypes.AttributeValue {
	switch x := v.(type) {
	case nil:
		return &ddbtypes.AttributeValueMemberNULL{Value: true}
	case string:
		return &ddbtypes.AttributeValueMemberS{Value: x}
	case bool:
		return &ddbtypes.AttributeValueMemberBOOL{Value: x}
	case int:
		return &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(x)}
	case int64:
		return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(x, 10)}
	case map[string]any:
		m := map[string]ddbtypes.AttributeValue{}
		for k, e := range x {
			m[k] = AttributeValue(e)
		}
		return &ddbtypes.AttributeValueMemberM{Value: m}
	case []any:
		l := []ddbtypes.AttributeValue{}
		for _, e := range x {
			l = append(l, AttributeValue(e))
		}
		return &ddbtypes.AttributeValueMemberL{Value: l}
	}
	panic(fmt.Sprintf("replaytest: no attribute value for %T", v))
}

// Record is the replay execution input for an event, as the trigger builds it from the stream record.
func Record(ev map[string]any, origin string) replay.Record {
	img := map[string]events.DynamoDBAttributeValue{}
	for k, v := range Item(ev, origin) {
		img[k] = LambdaValue(v)
	}
	return replay.Record{Keys: map[string]events.DynamoDBAttributeValue{"uuid": img["uuid"]}, NewImage: img}
}

// LambdaValue converts an SDK attribute value (DynamoDB or DynamoDB Streams shapes share the member types' names
// through this interface) into the Lambda event's.
func LambdaValue(v ddbtypes.AttributeValue) events.DynamoDBAttributeValue {
	switch x := v.(type) {
	case *ddbtypes.AttributeValueMemberS:
		return events.NewStringAttribute(x.Value)
	case *ddbtypes.AttributeValueMemberN:
		return events.NewNumberAttribute(x.Value)
	case *ddbtypes.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(x.Value)
	case *ddbtypes.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *ddbtypes.AttributeValueMemberM:
		m := map[string]events.DynamoDBAttributeValue{}
		for k, e := range x.Value {
			m[k] = LambdaValue(e)
		}
		return events.NewMapAttribute(m)
	case *ddbtypes.AttributeValueMemberL:
		l := []events.DynamoDBAttributeValue{}
		for _, e := range x.Value {
			l = append(l, LambdaValue(e))
		}
		return events.NewListAttribute(l)
	}
	panic(fmt.Sprintf("replaytest: unsupported attribute value %T", v))
}

// Diff lists how the replica's registry differs from the primary's: things (type, attributes), thing types
// (deprecation), groups (parent, description, attributes) and memberships. Empty when they match.
func Diff(primary, replica *awsfake.Server) []string {
	var diffs []string
	pt, rt := thingsOf(primary), thingsOf(replica)
	for _, n := range union(pt, rt) {
		a, aok := pt[n]
		b, bok := rt[n]
		switch {
		case !bok:
			diffs = append(diffs, "thing "+n+" missing")
		case !aok:
			diffs = append(diffs, "thing "+n+" extra")
		case a.TypeName != b.TypeName || !maps.Equal(a.Attributes, b.Attributes):
			diffs = append(diffs, fmt.Sprintf("thing %s: %s %v, want %s %v", n, b.TypeName, b.Attributes, a.TypeName, a.Attributes))
		}
	}
	ptt, rtt := typesOf(primary), typesOf(replica)
	for _, n := range union(ptt, rtt) {
		a, aok := ptt[n]
		b, bok := rtt[n]
		switch {
		case !bok:
			diffs = append(diffs, "thing type "+n+" missing")
		case !aok:
			diffs = append(diffs, "thing type "+n+" extra")
		case a != b:
			diffs = append(diffs, fmt.Sprintf("thing type %s deprecated %v, want %v", n, b, a))
		}
	}
	pg, rg := groupsOf(primary), groupsOf(replica)
	for _, n := range union(pg, rg) {
		a, aok := pg[n]
		b, bok := rg[n]
		switch {
		case !bok:
			diffs = append(diffs, "group "+n+" missing")
		case !aok:
			diffs = append(diffs, "group "+n+" extra")
		case a.Parent != b.Parent || a.Description != b.Description || !maps.Equal(a.Attributes, b.Attributes):
			diffs = append(diffs, fmt.Sprintf("group %s: %+v, want %+v", n, b, a))
		}
		if aok && bok {
			if am, bm := primary.IoT.GroupMembers(n), replica.IoT.GroupMembers(n); !slices.Equal(am, bm) {
				diffs = append(diffs, fmt.Sprintf("group %s members %v, want %v", n, bm, am))
			}
		}
	}
	return diffs
}

func thingsOf(s *awsfake.Server) map[string]awsfake.Thing {
	m := map[string]awsfake.Thing{}
	for _, t := range s.IoT.Things() {
		m[t.Name] = t
	}
	return m
}

func typesOf(s *awsfake.Server) map[string]bool {
	m := map[string]bool{}
	c := iot.NewFromConfig(s.Config(context.Background()))
	p := iot.NewListThingTypesPaginator(c, &iot.ListThingTypesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			panic(err)
		}
		for _, t := range out.ThingTypes {
			m[aws.ToString(t.ThingTypeName)] = t.ThingTypeMetadata != nil && t.ThingTypeMetadata.Deprecated
		}
	}
	return m
}

func groupsOf(s *awsfake.Server) map[string]awsfake.ThingGroup {
	m := map[string]awsfake.ThingGroup{}
	for _, g := range s.IoT.ThingGroups() {
		g.ARN, g.ID, g.Version = "", "", 0
		m[g.Name] = g
	}
	return m
}

func union[V any](a, b map[string]V) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return slices.Sorted(maps.Keys(keys))
}

// Scenario runs a day of registry changes on the primary that touches every replayed operation: thing types created,
// deprecated, undeprecated and deleted; a three-level group hierarchy, updated and partly deleted; things created with
// and without types, attributes updated with and without merge, types changed and removed, things deleted and one
// created again under the same name; memberships added and removed; a type deprecated while a thing keeps it.
func Scenario(t testing.TB, p *Primary) {
	t.Helper()
	p.CreateThingType(t, "sensor", "temperature sensors", "site")
	p.CreateThingType(t, "gateway", "")
	p.CreateThingType(t, "legacy", "to be retired")
	p.CreateGroup(t, "fleet", "", "all devices", map[string]string{"owner": "ops"})
	p.CreateGroup(t, "berlin", "fleet", "", map[string]string{"site": "ber"})
	p.CreateGroup(t, "floor-1", "berlin", "first floor", nil)
	p.CreateGroup(t, "paris", "fleet", "", nil)
	p.CreateThing(t, "sensor-1", "sensor", map[string]string{"site": "ber", "fw": "1.0"})
	p.CreateThing(t, "sensor-2", "sensor", map[string]string{"site": "ber"})
	p.CreateThing(t, "gw-1", "", map[string]string{"a": "1", "b": "2"})
	p.CreateThing(t, "old-1", "legacy", nil)
	p.AddToGroup(t, "floor-1", "sensor-1")
	p.AddToGroup(t, "berlin", "sensor-2")
	p.AddToGroup(t, "fleet", "gw-1")
	p.AddToGroup(t, "paris", "gw-1")
	p.UpdateAttributes(t, "sensor-1", map[string]string{"fw": "1.1", "site": ""}, true)
	p.UpdateAttributes(t, "gw-1", map[string]string{"c": "3"}, false)
	p.SetType(t, "gw-1", "gateway")
	p.UpdateAttributes(t, "gw-1", map[string]string{"d": "4", "e": "5", "f": "6"}, true)
	p.SetType(t, "sensor-2", "")
	p.UpdateGroup(t, "berlin", "Berlin office", map[string]string{"site": "ber", "tz": "CET"}, false)
	p.RemoveFromGroup(t, "paris", "gw-1")
	p.DeprecateThingType(t, "sensor", false)
	p.DeprecateThingType(t, "sensor", true)
	p.SetType(t, "old-1", "")
	p.DeprecateThingType(t, "legacy", false)
	p.DeleteThingType(t, "legacy")
	p.DeleteThing(t, "sensor-2")
	p.DeleteGroup(t, "floor-1")
	p.CreateThing(t, "sensor-2", "gateway", map[string]string{"reborn": "yes"})
	p.AddToGroup(t, "berlin", "sensor-2")
	p.AddToGroup(t, "berlin", "sensor-1")
	p.DeleteGroup(t, "paris")
	// A type deprecated while a thing still has it: the thing keeps it.
	p.CreateThingType(t, "meter", "")
	p.CreateThing(t, "meter-1", "meter", map[string]string{"unit": "kWh"})
	p.DeprecateThingType(t, "meter", false)
}

// Route picks the CRUD function as the state machine's ChoiceEventType does.
func Route(r replay.Record) replay.Function {
	typ := ""
	if v, ok := r.NewImage["eventType"]; ok && v.DataType() == events.DataTypeString {
		typ = v.String()
	}
	switch typ {
	case replay.ThingTypeEvent, replay.ThingTypeAssocEvent:
		return replay.ThingTypeCrud
	case replay.ThingGroupEvent, replay.GroupMembershipEvent, replay.GroupHierarchyEvent:
		return replay.ThingGroupCrud
	}
	return replay.ThingCrud
}

// The state machine's retries, as the synthesized definition has them (the stack test keeps the two equal): the
// CRUD functions' own exceptions after 3, 6 and 12 s; ReplayNotReadyException after 80 s, then 1.5 times longer, six
// times.
var (
	crudRetries     = []time.Duration{3 * time.Second, 6 * time.Second, 12 * time.Second}
	notReadyRetries = []time.Duration{80 * time.Second, 120 * time.Second, 180 * time.Second, 270 * time.Second,
		405 * time.Second, 607500 * time.Millisecond}
)

// Drive applies records as executions of the state machine that start together would: every record is tried, and a
// retryable failure is tried again in a later round, after the clock has moved by the state machine's retry interval
// (the CRUD exceptions' or ReplayNotReadyException's, whichever the record failed with), as long as the state
// machine's attempts last.
func Drive(t testing.TB, a *replay.Applier, clock *Clock, records []replay.Record) DriveResult {
	t.Helper()
	var res DriveResult
	ctx := context.Background()
	type pending struct {
		rec            replay.Record
		crud, notReady int           // retries used
		due            time.Duration // when its next attempt runs, from the start
	}
	queue := make([]pending, len(records))
	for i, r := range records {
		queue[i] = pending{rec: r}
	}
	for len(queue) > 0 {
		now := slices.MinFunc(queue, func(x, y pending) int { return cmp.Compare(x.due, y.due) }).due
		clock.Advance(now - res.Took)
		res.Took = now
		var later []pending
		for _, p := range queue {
			if p.due > now {
				later = append(later, p)
				continue
			}
			_, err := Route(p.rec).Handle(ctx, a, p.rec)
			var inv *replay.InvalidEventException
			var nr *replay.ReplayNotReadyException
			switch {
			case err == nil:
				continue
			case errors.As(err, &inv):
				res.DLQ = append(res.DLQ, p.rec)
				continue
			case errors.As(err, &nr):
				if p.notReady == len(notReadyRetries) {
					res.DLQ = append(res.DLQ, p.rec)
					continue
				}
				p.due = now + notReadyRetries[p.notReady]
				p.notReady++
				res.NotReadyRetries++
			default:
				if p.crud == len(crudRetries) {
					res.DLQ = append(res.DLQ, p.rec)
					continue
				}
				p.due = now + crudRetries[p.crud]
				p.crud++
				res.CrudRetries++
				res.Errors = append(res.Errors, err.Error())
			}
			later = append(later, p)
		}
		queue = later
	}
	return res
}

// DriveResult is what Drive saw.
type DriveResult struct {
	// DLQ holds what would reach the dead-letter queue.
	DLQ []replay.Record
	// Took is the simulated time from the first attempt to the last.
	Took time.Duration
	// CrudRetries counts retries of the CRUD exceptions (Errors holds their messages); NotReadyRetries of
	// ReplayNotReadyException.
	CrudRetries, NotReadyRetries int
	Errors                       []string
}

// ScenarioSameMillisecond runs changes whose events carry one timestamp per pair, so that only what the events
// themselves say can order them: a thing deleted and created again (a new thingId, its version back at 1, below the
// deleted one's), a thing updated and deleted (one thingId, one version), and a thing removed from a group and added
// again.
func ScenarioSameMillisecond(t testing.TB, p *Primary) {
	t.Helper()
	step := p.Step
	defer func() { p.Step = step }()
	p.CreateThing(t, "twin", "", map[string]string{"gen": "1"})
	p.UpdateAttributes(t, "twin", map[string]string{"gen": "1", "color": "red"}, false)
	p.CreateThing(t, "brief", "", nil)
	p.CreateThing(t, "member", "", nil)
	p.CreateGroup(t, "flip", "", "", nil)
	p.AddToGroup(t, "flip", "member")

	p.clock += 1000
	p.Step = 0
	p.DeleteThing(t, "twin")
	p.CreateThing(t, "twin", "", map[string]string{"gen": "2"})

	p.clock += 1000
	p.UpdateAttributes(t, "brief", map[string]string{"a": "1"}, true)
	p.DeleteThing(t, "brief")

	p.clock += 1000
	p.RemoveFromGroup(t, "flip", "member")
	p.AddToGroup(t, "flip", "member")
}
