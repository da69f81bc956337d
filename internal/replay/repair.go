package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// Read-repair: where events cannot say what is true (two events of one entity in the same millisecond that nothing
// orders) or an event needs something not replayed yet (a thing before its type, a membership before its thing or
// group, a group before its parent), the origin region's registry is asked what is true now, and that state is applied
// as an event stamped with the moment of the read. An event stamped earlier is then stale (the read already holds its
// effect); an event stamped later still wins. This is the ordering argument of the reconciler, for one entity.

// OriginAPI is what read-repair reads of an origin region's registry.
type OriginAPI interface {
	DescribeThing(ctx context.Context, in *iot.DescribeThingInput, opts ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
	DescribeThingType(ctx context.Context, in *iot.DescribeThingTypeInput, opts ...func(*iot.Options)) (*iot.DescribeThingTypeOutput, error)
	DescribeThingGroup(ctx context.Context, in *iot.DescribeThingGroupInput, opts ...func(*iot.Options)) (*iot.DescribeThingGroupOutput, error)
	ListThingGroupsForThing(ctx context.Context, in *iot.ListThingGroupsForThingInput, opts ...func(*iot.Options)) (*iot.ListThingGroupsForThingOutput, error)
}

// maxRepairDepth bounds nested repairs: a membership's thing, its type, a group's parents (AWS IoT allows 7 levels).
const maxRepairDepth = 10

var repairSeq atomic.Int64

// repairPrefix starts the eventId of every read-repair.
const repairPrefix = "readrepair-"

// NotReadyError is an event that cannot apply yet and will later without anything else happening (a thing type
// deprecated less than five minutes ago): the state machine retries it with a long interval (ReplayNotReadyException).
type NotReadyError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("%s: retry in %v", e.Reason, e.RetryAfter.Round(time.Second))
}

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Applier) origin(ev *Event) (OriginAPI, bool, error) {
	if a.Origin == nil || ev.Origin == "" {
		return nil, false, nil
	}
	if ev.depth >= maxRepairDepth {
		return nil, false, fmt.Errorf("read-repair of %s nested more than %d deep", ev.Entity(), maxRepairDepth)
	}
	o, err := a.Origin(ev.Origin)
	if err != nil {
		return nil, false, fmt.Errorf("registry of %s: %w", ev.Origin, err)
	}
	return o, true, nil
}

// repairEvent is an event of the state just read from ev's origin, stamped now.
func (a *Applier) repairEvent(ev *Event, typ, op string) *Event {
	ts := a.now().UnixMilli()
	return &Event{Type: typ, Operation: op, Origin: ev.Origin, Timestamp: ts, depth: ev.depth + 1, repair: true,
		ID: repairPrefix + strconv.FormatInt(ts, 10) + "-" + strconv.FormatInt(repairSeq.Add(1), 10)}
}

// applyRepair applies a repair event; a newer event applied meanwhile wins over it.
func (a *Applier) applyRepair(ctx context.Context, rev *Event) error {
	out, err := a.Apply(ctx, rev)
	if err != nil {
		return fmt.Errorf("read-repair of %s from %s: %w", rev.Entity(), rev.Origin, err)
	}
	a.log().Info("read-repair from the origin region", "entity", rev.Entity(), "origin", rev.Origin,
		"operation", rev.Operation, "result", out.Result)
	return nil
}

// originThing is the repair event of a thing: UPDATED with the origin's state, or DELETED.
func (a *Applier) originThing(ctx context.Context, o OriginAPI, ev *Event, name string) (*Event, error) {
	d, err := o.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)})
	rev := a.repairEvent(ev, ThingEvent, opUpdated)
	rev.ThingName = name
	if notFound(err) {
		rev.Operation = opDeleted
		return rev, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe thing %s in %s: %w", name, ev.Origin, err)
	}
	rev.Inc, rev.ThingTypeName, rev.Version = aws.ToString(d.ThingId), aws.ToString(d.ThingTypeName), d.Version
	rev.Attributes = d.Attributes
	if rev.Attributes == nil {
		rev.Attributes = map[string]string{}
	}
	return rev, nil
}

// originType is the repair event of a thing type.
func (a *Applier) originType(ctx context.Context, o OriginAPI, ev *Event, name string) (*Event, error) {
	d, err := o.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String(name)})
	rev := a.repairEvent(ev, ThingTypeEvent, opUpdated)
	rev.ThingTypeName = name
	if notFound(err) {
		rev.Operation = opDeleted
		return rev, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe thing type %s in %s: %w", name, ev.Origin, err)
	}
	rev.Inc = aws.ToString(d.ThingTypeId)
	if p := d.ThingTypeProperties; p != nil {
		rev.Description, rev.Searchable = aws.ToString(p.ThingTypeDescription), p.SearchableAttributes
	}
	rev.Deprecated = d.ThingTypeMetadata != nil && d.ThingTypeMetadata.Deprecated
	return rev, nil
}

// originGroup is the repair event of a thing group; dynamic reports a dynamic group (never replicated).
func (a *Applier) originGroup(ctx context.Context, o OriginAPI, ev *Event, name string) (*Event, error) {
	d, err := o.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(name)})
	rev := a.repairEvent(ev, ThingGroupEvent, opUpdated)
	rev.GroupName = name
	if notFound(err) {
		rev.Operation = opDeleted
		return rev, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe thing group %s in %s: %w", name, ev.Origin, err)
	}
	rev.Inc, rev.Version, rev.Dynamic = aws.ToString(d.ThingGroupId), d.Version, d.QueryString != nil
	rev.Attributes = map[string]string{}
	if m := d.ThingGroupMetadata; m != nil {
		rev.ParentName = aws.ToString(m.ParentGroupName)
	}
	if p := d.ThingGroupProperties; p != nil {
		rev.Description = aws.ToString(p.ThingGroupDescription)
		if p.AttributePayload != nil && p.AttributePayload.Attributes != nil {
			rev.Attributes = p.AttributePayload.Attributes
		}
	}
	return rev, nil
}

// readRepair settles an ambiguous event: what the origin holds now is applied to the event's entity, and the event
// itself is not applied.
func (a *Applier) readRepair(ctx context.Context, ev *Event) (string, error) {
	o, ok, err := a.origin(ev)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("event %s and the one applied to %s carry the same timestamp and nothing orders them; "+
			"no origin region to ask", ev.ID, ev.Entity())
	}
	var rev *Event
	switch ev.Type {
	case ThingEvent:
		rev, err = a.originThing(ctx, o, ev, ev.ThingName)
	case ThingTypeEvent:
		rev, err = a.originType(ctx, o, ev, ev.ThingTypeName)
	case ThingGroupEvent:
		rev, err = a.originGroup(ctx, o, ev, ev.GroupName)
	case ThingTypeAssocEvent:
		// The type is a field of the thing: the thing's state is repaired, and the association's own order is moved
		// past the read so that no association event older than it applies afterwards.
		// A thing gone in the origin is left to its own delete event (this function deletes no thing).
		if rev, err = a.originThing(ctx, o, ev, ev.ThingName); err == nil {
			if rev.Operation != opDeleted {
				err = a.applyRepair(ctx, rev)
			}
			if err == nil {
				err = a.fence(ctx, ev.Entity(), rev)
			}
			rev = nil
		}
	case GroupMembershipEvent:
		rev, err = a.originMembership(ctx, o, ev)
	default:
		return "the link goes with the child group's create and delete", nil
	}
	if err == nil && rev != nil {
		err = a.applyRepair(ctx, rev)
	}
	if err != nil {
		return "", err
	}
	return "read-repaired from " + ev.Origin + ": another event of the same millisecond left the order open", nil
}

// originMembership is the repair event of a membership: ADDED when the origin's thing is in the group, else REMOVED.
func (a *Applier) originMembership(ctx context.Context, o OriginAPI, ev *Event) (*Event, error) {
	rev := a.repairEvent(ev, GroupMembershipEvent, opRemoved)
	rev.GroupName, rev.ThingName = ev.GroupName, ev.ThingName
	p := iot.NewListThingGroupsForThingPaginator(o, &iot.ListThingGroupsForThingInput{ThingName: aws.String(ev.ThingName)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if notFound(err) {
			return rev, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list the groups of thing %s in %s: %w", ev.ThingName, ev.Origin, err)
		}
		if slices.ContainsFunc(out.ThingGroups, func(g types.GroupNameAndArn) bool { return aws.ToString(g.GroupName) == ev.GroupName }) {
			rev.Operation = opAdded
			return rev, nil
		}
	}
	return rev, nil
}

// fence records that entity holds the state read by rev, without applying anything to it.
func (a *Applier) fence(ctx context.Context, entity string, rev *Event) error {
	claim, err := a.Versions.Claim(ctx, entity, Order{TS: rev.Timestamp}, "", rev.ID)
	if err != nil || claim != Apply {
		return err
	}
	return a.Versions.Done(ctx, entity, rev.ID, false)
}

// errGone says a dependency does not exist in the origin region either: the event is outdated there.
var errGone = errors.New("gone in the origin region")

// ensureThing makes sure the thing exists here, repairing it from the origin when it does not. errGone: the origin has
// no such thing, or (thingID given) only another incarnation of it.
func (a *Applier) ensureThing(ctx context.Context, ev *Event, name, thingID string) error {
	o, ok, err := a.origin(ev)
	if err != nil || !ok {
		return err
	}
	if _, err := a.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)}); err == nil || !notFound(err) {
		return err
	}
	rev, err := a.originThing(ctx, o, ev, name)
	if err != nil {
		return err
	}
	if rev.Operation == opDeleted || (thingID != "" && rev.Inc != thingID) {
		return errGone
	}
	return a.applyRepair(ctx, rev)
}

// ensureType makes sure the thing type exists here, repairing it from the origin when it does not.
func (a *Applier) ensureType(ctx context.Context, ev *Event, name string) error {
	o, ok, err := a.origin(ev)
	if err != nil || !ok {
		return err
	}
	if _, err := a.IoT.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String(name)}); err == nil || !notFound(err) {
		return err
	}
	rev, err := a.originType(ctx, o, ev, name)
	if err != nil {
		return err
	}
	if rev.Operation == opDeleted {
		return errGone
	}
	return a.applyRepair(ctx, rev)
}

// ensureGroup makes sure the thing group exists here, repairing it (and its missing ancestors) from the origin.
func (a *Applier) ensureGroup(ctx context.Context, ev *Event, name string) error {
	o, ok, err := a.origin(ev)
	if err != nil || !ok {
		return err
	}
	if _, err := a.IoT.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(name)}); err == nil || !notFound(err) {
		return err
	}
	rev, err := a.originGroup(ctx, o, ev, name)
	if err != nil {
		return err
	}
	if rev.Operation == opDeleted || rev.Dynamic {
		return errGone
	}
	return a.applyRepair(ctx, rev)
}
