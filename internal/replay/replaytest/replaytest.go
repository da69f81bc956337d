// Package replaytest supports the tests of the registry replication: a replica region (the AWS IoT fake and a
// Versions table in DynamoDB Local), a simulated primary region whose operations, made through the real SDK against
// its own fake, yield the registry events AWS IoT publishes, the items the primary's rule writes from them, and a
// comparison of the two registries.
package replaytest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

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
	e := &Env{Replica: srv, DynamoDB: dynamodb.NewFromConfig(cfg)}
	e.Table = fmt.Sprintf("versions-%d", tableSeq.Add(1))
	if err := CreateVersionsTable(ctx, e.DynamoDB, e.Table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.Table)})
	})
	t.Setenv("VERSIONS_TABLE", e.Table)
	e.Applier = &replay.Applier{IoT: iot.NewFromConfig(cfg), Versions: &replay.Versions{DB: e.DynamoDB, Table: e.Table},
		PolicyName: "jitr-mr-policy", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return e
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
	clock  int64
	seq    int
}

// NewPrimary starts the primary's fake.
func NewPrimary(t testing.TB) *Primary {
	t.Helper()
	srv := awsfake.New(t)
	return &Primary{Srv: srv, IoT: iot.NewFromConfig(srv.Config(context.Background())), clock: 1_767_000_000_000}
}

func (p *Primary) emit(t testing.TB, typ, op string, fields map[string]any) {
	t.Helper()
	p.clock += 1000
	p.seq++
	ev := map[string]any{"eventType": typ, "eventId": fmt.Sprintf("%032x", p.seq), "timestamp": p.clock,
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

// DeleteThingType deletes a thing type (deprecated first, as AWS IoT requires).
func (p *Primary) DeleteThingType(t testing.TB, name string) {
	t.Helper()
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
