package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/smithy-go/middleware"
)

// ReadAPI is what the reconciler reads of a region's registry.
type ReadAPI interface {
	ListThings(ctx context.Context, in *iot.ListThingsInput, opts ...func(*iot.Options)) (*iot.ListThingsOutput, error)
	ListThingTypes(ctx context.Context, in *iot.ListThingTypesInput, opts ...func(*iot.Options)) (*iot.ListThingTypesOutput, error)
	ListThingGroups(ctx context.Context, in *iot.ListThingGroupsInput, opts ...func(*iot.Options)) (*iot.ListThingGroupsOutput, error)
	DescribeThingGroup(ctx context.Context, in *iot.DescribeThingGroupInput, opts ...func(*iot.Options)) (*iot.DescribeThingGroupOutput, error)
	ListThingsInThingGroup(ctx context.Context, in *iot.ListThingsInThingGroupInput, opts ...func(*iot.Options)) (*iot.ListThingsInThingGroupOutput, error)
	ListThingPrincipals(ctx context.Context, in *iot.ListThingPrincipalsInput, opts ...func(*iot.Options)) (*iot.ListThingPrincipalsOutput, error)
}

// Reconciler compares the primary region's things, thing types and thing groups (with memberships) with this
// region's and repairs this region through the Applier, so that every repair is ordered against replayed events like
// an event observed at the moment the run began: an event applied after that moment wins over the repair.
type Reconciler struct {
	Primary ReadAPI
	Replica ReadAPI
	Applier *Applier
	// DryRun counts the drift without repairing it.
	DryRun bool
	Now    func() time.Time
	Log    *slog.Logger
}

// Report is a run's result.
type Report struct {
	// Drift is the number of entities that differed (repaired, or to repair in a dry run).
	Drift   int `json:"drift"`
	Created int `json:"created"`
	Updated int `json:"updated"`
	Deleted int `json:"deleted"`
	// Local counts things found only in this region that carry a certificate and were never replicated: things that
	// JIT registration created here for devices that never connected to the primary. They are kept.
	Local int `json:"local"`
	// Superseded counts repairs skipped because an event newer than the run was applied meanwhile.
	Superseded int `json:"superseded"`
	// Pending counts repairs that can happen only later (a thing type deprecated by this run is deleted by a later
	// one: AWS IoT deletes a type five minutes after its deprecation).
	Pending int `json:"pending"`
	Failed  int `json:"failed"`
	// Incomplete is set when the run stopped at its deadline: the next run continues (a first backfill of a large
	// fleet takes several runs at the rate limit).
	Incomplete bool `json:"incomplete,omitempty"`
	// Errors holds the first failures.
	Errors     []string `json:"errors,omitempty"`
	Things     int      `json:"things"`
	ThingTypes int      `json:"thingTypes"`
	Groups     int      `json:"groups"`
	Seconds    float64  `json:"seconds"`
}

type regThing struct {
	typ     string
	attrs   map[string]string
	version int64
}

type regType struct {
	description string
	searchable  []string
	deprecated  bool
}

type regGroup struct {
	parent, description string
	attrs               map[string]string
	version             int64
	depth               int
	dynamic             bool
	members             map[string]bool
}

type registry struct {
	things map[string]regThing
	types  map[string]regType
	groups map[string]*regGroup
}

func (r *Reconciler) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Run reconciles once. It returns an error only when a registry cannot be read; a repair that fails is counted in the
// report and left to the next run.
func (r *Reconciler) Run(ctx context.Context) (Report, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	began := now()
	var rep Report
	primary, err := readRegistry(ctx, r.Primary)
	if err != nil {
		return rep, fmt.Errorf("read the primary registry: %w", err)
	}
	replica, err := readRegistry(ctx, r.Replica)
	if err != nil {
		return rep, fmt.Errorf("read this region's registry: %w", err)
	}
	rep.Things, rep.ThingTypes, rep.Groups = len(primary.things), len(primary.types), len(primary.groups)
	ts := began.UnixMilli()
	id := "reconcile-" + strconv.FormatInt(ts, 10)
	apply := func(ev *Event, kind *int) {
		rep.Drift++
		if r.DryRun || rep.Incomplete {
			return
		}
		if ctx.Err() != nil {
			rep.Incomplete = true
			return
		}
		ev.ID, ev.Timestamp = id, ts
		out, err := r.Applier.Apply(ctx, ev)
		var nr *NotReadyError
		switch {
		case err != nil && ctx.Err() != nil:
			rep.Incomplete = true
		case errors.As(err, &nr):
			rep.Pending++
			r.log().Info("repair pending", "entity", ev.Entity(), "reason", err.Error())
		case err != nil:
			rep.Failed++
			if len(rep.Errors) < 20 {
				rep.Errors = append(rep.Errors, ev.Entity()+": "+err.Error())
			}
			r.log().Warn("repair failed", "entity", ev.Entity(), "error", err.Error())
		case out.Result == "stale":
			rep.Superseded++
		default:
			*kind++
		}
	}

	// Creates and updates, dependencies first: types, groups (parents first), things, memberships.
	for _, name := range slices.Sorted(maps.Keys(primary.types)) {
		p := primary.types[name]
		cur, ok := replica.types[name]
		if ok && cur.deprecated == p.deprecated {
			continue
		}
		ev := &Event{Type: ThingTypeEvent, Operation: opUpdated, ThingTypeName: name, Deprecated: p.deprecated,
			Description: p.description, Searchable: p.searchable}
		if !ok {
			ev.Operation = opCreated
			apply(ev, &rep.Created)
		} else {
			apply(ev, &rep.Updated)
		}
	}
	for _, name := range groupsByDepth(primary.groups, false) {
		p := primary.groups[name]
		if p.dynamic {
			continue
		}
		cur, ok := replica.groups[name]
		if ok && cur.parent == p.parent && cur.description == p.description && sameAttributes(cur.attrs, p.attrs) {
			continue
		}
		ev := &Event{Type: ThingGroupEvent, Operation: opUpdated, GroupName: name, ParentName: p.parent,
			Description: p.description, Attributes: p.attrs, Version: p.version}
		if !ok {
			ev.Operation = opCreated
			apply(ev, &rep.Created)
		} else {
			apply(ev, &rep.Updated)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(primary.things)) {
		p := primary.things[name]
		cur, ok := replica.things[name]
		if ok && cur.typ == p.typ && sameAttributes(cur.attrs, p.attrs) {
			continue
		}
		ev := &Event{Type: ThingEvent, Operation: opUpdated, ThingName: name, ThingTypeName: p.typ,
			Attributes: p.attrs, Version: p.version}
		if !ok {
			ev.Operation = opCreated
			apply(ev, &rep.Created)
		} else {
			apply(ev, &rep.Updated)
		}
	}
	for _, gname := range slices.Sorted(maps.Keys(primary.groups)) {
		p := primary.groups[gname]
		if p.dynamic {
			continue
		}
		var have map[string]bool
		if cur, ok := replica.groups[gname]; ok {
			have = cur.members
		}
		for _, t := range slices.Sorted(maps.Keys(p.members)) {
			if !have[t] {
				apply(&Event{Type: GroupMembershipEvent, Operation: opAdded, GroupName: gname, ThingName: t}, &rep.Created)
			}
		}
		for _, t := range slices.Sorted(maps.Keys(have)) {
			if !p.members[t] {
				apply(&Event{Type: GroupMembershipEvent, Operation: opRemoved, GroupName: gname, ThingName: t}, &rep.Deleted)
			}
		}
	}

	// Deletes, dependents first: things, groups (children first), types.
	for _, name := range slices.Sorted(maps.Keys(replica.things)) {
		if _, ok := primary.things[name]; ok {
			continue
		}
		local, err := r.localThing(ctx, name)
		if err != nil {
			rep.Failed++
			if len(rep.Errors) < 20 {
				rep.Errors = append(rep.Errors, "thing/"+name+": "+err.Error())
			}
			continue
		}
		if local {
			rep.Local++
			continue
		}
		apply(&Event{Type: ThingEvent, Operation: opDeleted, ThingName: name}, &rep.Deleted)
	}
	for _, name := range groupsByDepth(replica.groups, true) {
		if _, ok := primary.groups[name]; ok || replica.groups[name].dynamic {
			continue
		}
		apply(&Event{Type: ThingGroupEvent, Operation: opDeleted, GroupName: name}, &rep.Deleted)
	}
	for _, name := range slices.Sorted(maps.Keys(replica.types)) {
		if _, ok := primary.types[name]; ok {
			continue
		}
		apply(&Event{Type: ThingTypeEvent, Operation: opDeleted, ThingTypeName: name}, &rep.Deleted)
	}
	rep.Seconds = now().Sub(began).Seconds()
	r.log().Info("reconciled", "drift", rep.Drift, "created", rep.Created, "updated", rep.Updated, "deleted", rep.Deleted,
		"local", rep.Local, "superseded", rep.Superseded, "pending", rep.Pending, "failed", rep.Failed, "dryRun", r.DryRun)
	return rep, nil
}

// localThing reports whether a thing found only in this region is this region's own: never replicated (no version
// record) and carrying a certificate (JIT registration attaches one). A thing that was replicated and whose delete
// was lost, or a thing with nothing attached, is not.
func (r *Reconciler) localThing(ctx context.Context, name string) (bool, error) {
	rec, err := r.Applier.Versions.Get(ctx, "thing/"+name)
	if err != nil {
		return false, err
	}
	if rec != nil {
		return false, nil
	}
	out, err := r.Replica.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(name), MaxResults: aws.Int32(1)})
	if err != nil {
		if notFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("list principals of %s: %w", name, err)
	}
	return len(out.Principals) > 0, nil
}

func groupsByDepth(groups map[string]*regGroup, deepestFirst bool) []string {
	names := slices.Sorted(maps.Keys(groups))
	slices.SortStableFunc(names, func(a, b string) int {
		if deepestFirst {
			return cmp.Compare(groups[b].depth, groups[a].depth)
		}
		return cmp.Compare(groups[a].depth, groups[b].depth)
	})
	return names
}

func readRegistry(ctx context.Context, c ReadAPI) (*registry, error) {
	reg := &registry{things: map[string]regThing{}, types: map[string]regType{}, groups: map[string]*regGroup{}}
	tp := iot.NewListThingTypesPaginator(c, &iot.ListThingTypesInput{MaxResults: aws.Int32(250)})
	for tp.HasMorePages() {
		out, err := tp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list thing types: %w", err)
		}
		for _, t := range out.ThingTypes {
			rt := regType{}
			if t.ThingTypeProperties != nil {
				rt.description = aws.ToString(t.ThingTypeProperties.ThingTypeDescription)
				rt.searchable = t.ThingTypeProperties.SearchableAttributes
			}
			if t.ThingTypeMetadata != nil {
				rt.deprecated = t.ThingTypeMetadata.Deprecated
			}
			reg.types[aws.ToString(t.ThingTypeName)] = rt
		}
	}
	thp := iot.NewListThingsPaginator(c, &iot.ListThingsInput{MaxResults: aws.Int32(250)})
	for thp.HasMorePages() {
		out, err := thp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list things: %w", err)
		}
		for _, t := range out.Things {
			reg.things[aws.ToString(t.ThingName)] = regThing{typ: aws.ToString(t.ThingTypeName), attrs: t.Attributes, version: t.Version}
		}
	}
	gp := iot.NewListThingGroupsPaginator(c, &iot.ListThingGroupsInput{MaxResults: aws.Int32(250)})
	for gp.HasMorePages() {
		out, err := gp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list thing groups: %w", err)
		}
		for _, g := range out.ThingGroups {
			name := aws.ToString(g.GroupName)
			d, err := c.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: g.GroupName})
			if notFound(err) {
				continue // deleted since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("describe thing group %s: %w", name, err)
			}
			rg := &regGroup{version: d.Version, dynamic: d.QueryString != nil, members: map[string]bool{}}
			if m := d.ThingGroupMetadata; m != nil {
				rg.parent = aws.ToString(m.ParentGroupName)
				rg.depth = len(m.RootToParentThingGroups)
			}
			if p := d.ThingGroupProperties; p != nil {
				rg.description = aws.ToString(p.ThingGroupDescription)
				if p.AttributePayload != nil {
					rg.attrs = p.AttributePayload.Attributes
				}
			}
			if !rg.dynamic {
				mp := iot.NewListThingsInThingGroupPaginator(c, &iot.ListThingsInThingGroupInput{ThingGroupName: g.GroupName,
					MaxResults: aws.Int32(250)})
				for mp.HasMorePages() {
					mout, err := mp.NextPage(ctx)
					if err != nil && !notFound(err) {
						return nil, fmt.Errorf("list things in group %s: %w", name, err)
					}
					if err != nil {
						break
					}
					for _, t := range mout.Things {
						rg.members[t] = true
					}
				}
			}
			reg.groups[name] = rg
		}
	}
	return reg, nil
}

// Limiter spaces calls evenly at a rate, to stay under AWS IoT's per-API control-plane quotas.
type Limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

// NewLimiter allows perSecond calls a second.
func NewLimiter(perSecond float64) *Limiter {
	return &Limiter{interval: time.Duration(float64(time.Second) / perSecond)}
}

// Wait blocks until the next call may go.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Middleware adds the limiter to an SDK client's stack, so that every attempt, retries included, waits its turn:
// iot.NewFromConfig(cfg, func(o *iot.Options) { o.APIOptions = append(o.APIOptions, l.Middleware) }).
func (l *Limiter) Middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("RateLimit",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if err := l.Wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// DriftEMF is the CloudWatch embedded-metric-format line that publishes a run's drift count as the metric
// <namespace>/RegistryDrift with the dimension Region.
func DriftEMF(namespace, region string, drift int, at time.Time) []byte {
	return emf(namespace, region, "RegistryDrift", drift, at)
}

// emf is one count metric with the dimension Region, in CloudWatch's embedded metric format.
func emf(namespace, region, metric string, n int, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"_aws": map[string]any{
			"Timestamp": at.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  namespace,
				"Dimensions": [][]string{{"Region"}},
				"Metrics":    []any{map[string]string{"Name": metric, "Unit": "Count"}},
			}},
		},
		"Region": region,
		metric:   n,
	})
	return b
}
