package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// IoTAPI is what replay needs of the replica region's AWS IoT.
type IoTAPI interface {
	DescribeThing(ctx context.Context, in *iot.DescribeThingInput, opts ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
	CreateThing(ctx context.Context, in *iot.CreateThingInput, opts ...func(*iot.Options)) (*iot.CreateThingOutput, error)
	UpdateThing(ctx context.Context, in *iot.UpdateThingInput, opts ...func(*iot.Options)) (*iot.UpdateThingOutput, error)
	DeleteThing(ctx context.Context, in *iot.DeleteThingInput, opts ...func(*iot.Options)) (*iot.DeleteThingOutput, error)
	ListThingPrincipals(ctx context.Context, in *iot.ListThingPrincipalsInput, opts ...func(*iot.Options)) (*iot.ListThingPrincipalsOutput, error)
	DetachThingPrincipal(ctx context.Context, in *iot.DetachThingPrincipalInput, opts ...func(*iot.Options)) (*iot.DetachThingPrincipalOutput, error)
	DescribeCertificate(ctx context.Context, in *iot.DescribeCertificateInput, opts ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	UpdateCertificate(ctx context.Context, in *iot.UpdateCertificateInput, opts ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	ListAttachedPolicies(ctx context.Context, in *iot.ListAttachedPoliciesInput, opts ...func(*iot.Options)) (*iot.ListAttachedPoliciesOutput, error)
	DetachPolicy(ctx context.Context, in *iot.DetachPolicyInput, opts ...func(*iot.Options)) (*iot.DetachPolicyOutput, error)
	DeleteCertificate(ctx context.Context, in *iot.DeleteCertificateInput, opts ...func(*iot.Options)) (*iot.DeleteCertificateOutput, error)

	DescribeThingType(ctx context.Context, in *iot.DescribeThingTypeInput, opts ...func(*iot.Options)) (*iot.DescribeThingTypeOutput, error)
	CreateThingType(ctx context.Context, in *iot.CreateThingTypeInput, opts ...func(*iot.Options)) (*iot.CreateThingTypeOutput, error)
	DeprecateThingType(ctx context.Context, in *iot.DeprecateThingTypeInput, opts ...func(*iot.Options)) (*iot.DeprecateThingTypeOutput, error)
	DeleteThingType(ctx context.Context, in *iot.DeleteThingTypeInput, opts ...func(*iot.Options)) (*iot.DeleteThingTypeOutput, error)

	DescribeThingGroup(ctx context.Context, in *iot.DescribeThingGroupInput, opts ...func(*iot.Options)) (*iot.DescribeThingGroupOutput, error)
	CreateThingGroup(ctx context.Context, in *iot.CreateThingGroupInput, opts ...func(*iot.Options)) (*iot.CreateThingGroupOutput, error)
	UpdateThingGroup(ctx context.Context, in *iot.UpdateThingGroupInput, opts ...func(*iot.Options)) (*iot.UpdateThingGroupOutput, error)
	DeleteThingGroup(ctx context.Context, in *iot.DeleteThingGroupInput, opts ...func(*iot.Options)) (*iot.DeleteThingGroupOutput, error)
	AddThingToThingGroup(ctx context.Context, in *iot.AddThingToThingGroupInput, opts ...func(*iot.Options)) (*iot.AddThingToThingGroupOutput, error)
	RemoveThingFromThingGroup(ctx context.Context, in *iot.RemoveThingFromThingGroupInput, opts ...func(*iot.Options)) (*iot.RemoveThingFromThingGroupOutput, error)
}

// Applier applies registry events to this region's registry.
type Applier struct {
	IoT      IoTAPI
	Versions *Versions
	// PolicyName is the policy the JIT registration attaches (jitr-mr-policy): detached before a thing's certificate is
	// deleted.
	PolicyName string
	// CAID is this region's registration of the device CA. A replayed thing delete deletes only certificates
	// registered under it (the ones JITR registered here); other certificates are detached from the thing, not deleted.
	// Empty: no certificate is deleted.
	CAID string
	// Origin returns the read client of an origin region's registry, for read-repair (see repair.go). Nil: no
	// read-repair; an ambiguous or early event fails and is retried.
	Origin func(region string) (OriginAPI, error)
	// Admission decides which events are replayed at all (origin region, clock skew).
	Admission Admission
	Now       func() time.Time
	Log       *slog.Logger
}

// ThingTypeDeleteDelay is how long after a thing type's deprecation the replay waits before deleting it. AWS IoT:
// "Before you can delete a thing type, wait for five minutes after you deprecate it"
// (https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html); 15 s more for the difference
// between AWS IoT's clock and ours.
const ThingTypeDeleteDelay = 5*time.Minute + 15*time.Second

// Outcome says what became of an event.
type Outcome struct {
	EventID string `json:"eventId"`
	Entity  string `json:"entity"`
	// Result is "applied", "stale" (a newer event of the entity was applied first), "repaired" (the origin region was
	// asked what is true, and that was applied instead; with Reason) or "skipped" (with Reason).
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// BusyError is returned while an older event of the same entity holds the lease; the state machine retries.
type BusyError struct{ Entity string }

func (e *BusyError) Error() string {
	return "another event of " + e.Entity + " is being applied; retry after its lease"
}

func (a *Applier) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// Apply applies ev if it is the newest event of its entity.
func (a *Applier) Apply(ctx context.Context, ev *Event) (Outcome, error) {
	entity := ev.Entity()
	out := Outcome{EventID: ev.ID, Entity: entity}
	claim, err := a.Versions.Claim(ctx, entity, ev.Order(), ev.Inc, ev.ID)
	if err != nil {
		return out, err
	}
	switch claim {
	case Ambiguous:
		if !ev.repair {
			reason, err := a.readRepair(ctx, ev)
			if err != nil {
				return out, err
			}
			out.Result, out.Reason = "repaired", reason
			a.log().Info("event read-repaired", "eventId", ev.ID, "entity", entity, "reason", reason)
			return out, nil
		}
		if ev.bumps < 3 {
			// Another claim holds the repair's millisecond (a repair that failed, or one of the same state read at
			// the same moment): the read is at least as new as it, so the repair takes the next millisecond.
			ev.Timestamp++
			ev.bumps++
			return a.Apply(ctx, ev)
		}
		fallthrough
	case Stale:
		out.Result = "stale"
		a.log().Info("event older than the applied one: skipped", "eventId", ev.ID, "entity", entity)
		return out, nil
	case Busy:
		return out, &BusyError{Entity: entity}
	}
	deleted, reason, err := a.apply(ctx, ev)
	if err != nil {
		// Released even when ctx ended (that may be why the apply failed): otherwise the entity waits for the lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := a.Versions.Release(rctx, entity, ev.ID); rerr != nil {
			a.log().Warn("release after a failed apply", "entity", entity, "error", rerr.Error())
		}
		return out, err
	}
	// Recorded even when ctx ended meanwhile: the registry was changed.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.Versions.Done(dctx, entity, ev.ID, deleted); err != nil {
		return out, err
	}
	out.Result, out.Reason = "applied", reason
	if reason != "" {
		out.Result = "skipped"
	}
	a.log().Info("event replayed", "eventId", ev.ID, "entity", entity, "operation", ev.Operation, "result", out.Result,
		"reason", reason)
	return out, nil
}

// apply does the event's work; deleted says the entity is gone afterwards, reason why nothing was done.
func (a *Applier) apply(ctx context.Context, ev *Event) (deleted bool, reason string, err error) {
	switch ev.Type {
	case ThingEvent:
		if ev.Operation == opDeleted {
			return true, "", a.deleteThing(ctx, ev.ThingName)
		}
		r, err := a.putThing(ctx, ev)
		return false, r, err
	case ThingTypeAssocEvent:
		r, err := a.associate(ctx, ev)
		return false, r, err
	case ThingTypeEvent:
		if ev.Operation == opDeleted {
			return true, "", a.deleteThingType(ctx, ev.ThingTypeName)
		}
		return false, "", a.putThingType(ctx, ev)
	case ThingGroupEvent:
		if ev.Dynamic {
			return false, "dynamic thing groups are defined by their fleet-indexing query in each region", nil
		}
		if ev.Operation == opDeleted {
			return true, "", a.deleteGroup(ctx, ev.GroupName)
		}
		r, err := a.putGroup(ctx, ev)
		return false, r, err
	case GroupMembershipEvent:
		r, err := a.membership(ctx, ev)
		return ev.Operation == opRemoved, r, err
	case GroupHierarchyEvent:
		r, err := a.hierarchy(ctx, ev)
		return false, r, err
	}
	return false, "", invalid("eventType %q is not replayed", ev.Type)
}

func notFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// wantsType reports whether a thing event should set the thing's type: not when an association event newer than it
// was applied (association events order the type apart from the thing's other fields).
func (a *Applier) wantsType(ctx context.Context, ev *Event) (bool, error) {
	rec, err := a.Versions.Get(ctx, "thing-type-of/"+ev.ThingName)
	if err != nil {
		return false, err
	}
	// An association claimed but not applied (it failed, and may never apply) does not hold the type back.
	return rec == nil || !rec.Applied || rec.TS <= ev.Timestamp, nil
}

// gone is the reason an event is skipped because something it needs no longer exists in the origin region: the
// origin's later events (or the read-repair that found it gone) decide the entity's state.
func gone(what string) string {
	return what + " no longer exists in the origin region: a later event supersedes this one"
}

// withDependency runs op; when op fails with ResourceNotFoundException or InvalidRequestException (the API
// references do not say which of the two a missing thing type, thing or group gets), ensure repairs the dependency
// from the origin when it is missing here, and op runs once more. It returns the reason to skip the event when the
// dependency is gone in the origin.
func withDependency(what string, op func() error, ensure func() error) (string, error) {
	err := op()
	var inv *types.InvalidRequestException
	if err == nil || (!notFound(err) && !errors.As(err, &inv)) {
		return "", err
	}
	switch eerr := ensure(); {
	case errors.Is(eerr, errGone):
		return gone(what), nil
	case eerr != nil:
		return "", fmt.Errorf("%w (and %s: %w)", err, what, eerr)
	}
	return "", op()
}

func (a *Applier) putThing(ctx context.Context, ev *Event) (string, error) {
	setType, err := a.wantsType(ctx, ev)
	if err != nil {
		return "", err
	}
	typeDep := func(typ string, op func() error) (string, error) {
		if typ == "" {
			return "", op()
		}
		return withDependency("thing type "+typ, func() error { return a.withTypeUsable(ctx, typ, op) },
			func() error { return a.ensureType(ctx, ev, typ) })
	}
	cur, err := a.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(ev.ThingName)})
	if notFound(err) {
		in := &iot.CreateThingInput{ThingName: aws.String(ev.ThingName),
			AttributePayload: &types.AttributePayload{Attributes: ev.Attributes}}
		if setType && ev.ThingTypeName != "" {
			in.ThingTypeName = aws.String(ev.ThingTypeName)
		}
		var reason string
		reason, err = typeDep(aws.ToString(in.ThingTypeName), func() error {
			_, err := a.IoT.CreateThing(ctx, in)
			return err
		})
		var exists *types.ResourceAlreadyExistsException
		if err == nil {
			return reason, nil
		}
		if !errors.As(err, &exists) { // JITR created it meanwhile: update it below
			return "", fmt.Errorf("create thing %s: %w", ev.ThingName, err)
		}
		cur, err = a.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(ev.ThingName)})
	}
	if err != nil {
		return "", fmt.Errorf("describe thing %s: %w", ev.ThingName, err)
	}
	in := &iot.UpdateThingInput{ThingName: aws.String(ev.ThingName)}
	change := false
	curType := aws.ToString(cur.ThingTypeName)
	if setType && curType != ev.ThingTypeName {
		change = true
		if ev.ThingTypeName == "" {
			in.RemoveThingType = true
		} else {
			in.ThingTypeName = aws.String(ev.ThingTypeName)
		}
	}
	if !sameAttributes(cur.Attributes, ev.Attributes) {
		change = true
		// Without merge the payload replaces the whole set: the event carries the thing's complete attributes.
		in.AttributePayload = &types.AttributePayload{Attributes: ev.Attributes, Merge: false}
	}
	if !change {
		return "", nil
	}
	reason, err := typeDep(aws.ToString(in.ThingTypeName), func() error {
		_, err := a.IoT.UpdateThing(ctx, in)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("update thing %s: %w", ev.ThingName, err)
	}
	return reason, nil
}

// withTypeUsable runs op, which gives a thing the type typ. AWS IoT refuses a deprecated type to new things, yet in the
// primary a thing keeps a type deprecated after it was given: when events arrive out of order, or the reconciler
// backfills such a thing, the type is already deprecated here. Then the deprecation is lifted for the call and put
// back at once.
func (a *Applier) withTypeUsable(ctx context.Context, typ string, op func() error) error {
	err := op()
	var inv *types.InvalidRequestException
	if err == nil || typ == "" || !errors.As(err, &inv) {
		return err
	}
	// Under the type's lock: the type's own events (and read-repairs) must not change its deprecation in between,
	// or putting the deprecation back would undo theirs.
	return a.withTypeLock(ctx, typ, func() error {
		d, derr := a.IoT.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String(typ)})
		if derr != nil {
			return err
		}
		if d.ThingTypeMetadata == nil || !d.ThingTypeMetadata.Deprecated {
			return op() // undeprecated meanwhile
		}
		if _, uerr := a.IoT.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(typ), UndoDeprecate: true}); uerr != nil {
			return fmt.Errorf("lift the deprecation of %s for a moment: %w (after %w)", typ, uerr, err)
		}
		err := op()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, derr := a.IoT.DeprecateThingType(rctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(typ)}); derr != nil {
			return fmt.Errorf("deprecate %s again: %w", typ, derr)
		}
		a.log().Info("deprecation lifted for one call", "thingType", typ)
		return err
	})
}

// withTypeLock runs fn holding the lock of the thing type's deprecation; a BusyError (retried) when another holds it.
func (a *Applier) withTypeLock(ctx context.Context, typ string, fn func() error) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	owner, key := hex.EncodeToString(b[:]), "thingtype/"+typ
	ok, err := a.Versions.Lock(ctx, key, owner)
	if err != nil {
		return err
	}
	if !ok {
		return &BusyError{Entity: key}
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.Versions.Unlock(uctx, key, owner); err != nil {
			a.log().Warn("unlock", "entity", key, "error", err.Error())
		}
	}()
	return fn()
}

// deleteThing first detaches what this region attached to the thing: certificates registered under this region's CA
// (the JIT-registered ones) are detached, made inactive, freed of the JITR policy and deleted; any other principal is
// only detached. Then the thing is deleted.
func (a *Applier) deleteThing(ctx context.Context, name string) error {
	var principals []string
	p := iot.NewListThingPrincipalsPaginator(a.IoT, &iot.ListThingPrincipalsInput{ThingName: aws.String(name)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if notFound(err) {
			return nil // already gone
		}
		if err != nil {
			return fmt.Errorf("list principals of %s: %w", name, err)
		}
		principals = append(principals, out.Principals...)
	}
	for _, principal := range principals {
		if _, err := a.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(name),
			Principal: aws.String(principal)}); err != nil && !notFound(err) {
			return fmt.Errorf("detach %s from %s: %w", principal, name, err)
		}
	}
	if len(principals) > 0 {
		// AWS IoT detaches asynchronously: wait until the thing shows no principal before deleting either side.
		if err := a.waitDetached(ctx, name); err != nil {
			return err
		}
	}
	for _, principal := range principals {
		if err := a.retireCertificate(ctx, principal); err != nil {
			return err
		}
	}
	if _, err := a.IoT.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String(name)}); err != nil && !notFound(err) {
		return fmt.Errorf("delete thing %s: %w", name, err)
	}
	return nil
}

func (a *Applier) waitDetached(ctx context.Context, name string) error {
	delay := 100 * time.Millisecond
	for range 8 {
		out, err := a.IoT.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(name)})
		if notFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list principals of %s: %w", name, err)
		}
		if len(out.Principals) == 0 {
			return nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, 2*time.Second)
	}
	return fmt.Errorf("thing %s still shows principals after they were detached", name)
}

func (a *Applier) retireCertificate(ctx context.Context, principal string) error {
	_, id, ok := strings.Cut(principal, ":cert/")
	if !ok || a.CAID == "" {
		return nil
	}
	d, err := a.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe certificate %s: %w", id, err)
	}
	if aws.ToString(d.CertificateDescription.CaCertificateId) != a.CAID {
		return nil // not registered by this region's JITR: leave it to its owner
	}
	if d.CertificateDescription.Status == types.CertificateStatusActive {
		if _, err := a.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id),
			NewStatus: types.CertificateStatusInactive}); err != nil {
			return fmt.Errorf("deactivate certificate %s: %w", id, err)
		}
	}
	attached, err := a.IoT.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(principal)})
	if err != nil {
		return fmt.Errorf("list policies of certificate %s: %w", id, err)
	}
	for _, pol := range attached.Policies {
		if aws.ToString(pol.PolicyName) != a.PolicyName {
			continue
		}
		if _, err := a.IoT.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: pol.PolicyName, Target: aws.String(principal)}); err != nil && !notFound(err) {
			return fmt.Errorf("detach %s from certificate %s: %w", a.PolicyName, id, err)
		}
	}
	if _, err := a.IoT.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id), ForceDelete: true}); err != nil && !notFound(err) {
		return fmt.Errorf("delete certificate %s: %w", id, err)
	}
	return nil
}

// associate applies a thing-type association, unless the thing's own event newer than it already set the type.
func (a *Applier) associate(ctx context.Context, ev *Event) (string, error) {
	rec, err := a.Versions.Get(ctx, "thing/"+ev.ThingName)
	if err != nil {
		return "", err
	}
	if rec != nil && rec.Applied && rec.TS > ev.Timestamp {
		return "a newer event of the thing set its type", nil
	}
	// A type given to another incarnation of the thing than the one here would go with that one's delete.
	if reason, err := a.sameIncarnation(ctx, ev); reason != "" || err != nil {
		return reason, err
	}
	cur, err := a.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(ev.ThingName)})
	if notFound(err) && ev.Operation == opRemoved {
		return "", nil
	}
	if notFound(err) {
		// The association came before the thing's own event: the thing is repaired from the origin, its type with it,
		// which is newer than this event.
		switch err := a.ensureThing(ctx, ev, ev.ThingName, ev.ThingID); {
		case errors.Is(err, errGone):
			return gone("thing " + ev.ThingName), nil
		case err != nil:
			return "", err
		}
		if a.Origin != nil && ev.Origin != "" {
			return "the thing was read-repaired from " + ev.Origin + ", its current type with it", nil
		}
		cur, err = a.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(ev.ThingName)})
	}
	if err != nil {
		return "", fmt.Errorf("describe thing %s: %w", ev.ThingName, err)
	}
	curType := aws.ToString(cur.ThingTypeName)
	in := &iot.UpdateThingInput{ThingName: aws.String(ev.ThingName)}
	switch {
	case ev.Operation == opAdded && curType != ev.ThingTypeName:
		in.ThingTypeName = aws.String(ev.ThingTypeName)
	case ev.Operation == opRemoved && curType == ev.ThingTypeName:
		in.RemoveThingType = true
	default:
		return "", nil
	}
	op := func() error {
		_, err := a.IoT.UpdateThing(ctx, in)
		return err
	}
	if in.ThingTypeName == nil {
		if err := op(); err != nil {
			return "", fmt.Errorf("remove the type of thing %s: %w", ev.ThingName, err)
		}
		return "", nil
	}
	reason, err := withDependency("thing type "+ev.ThingTypeName, func() error { return a.withTypeUsable(ctx, ev.ThingTypeName, op) },
		func() error { return a.ensureType(ctx, ev, ev.ThingTypeName) })
	if err != nil {
		return "", fmt.Errorf("set the type of thing %s: %w", ev.ThingName, err)
	}
	return reason, nil
}

func (a *Applier) putThingType(ctx context.Context, ev *Event) error {
	return a.withTypeLock(ctx, ev.ThingTypeName, func() error { return a.putThingTypeLocked(ctx, ev) })
}

func (a *Applier) putThingTypeLocked(ctx context.Context, ev *Event) error {
	cur, err := a.IoT.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String(ev.ThingTypeName)})
	deprecated := false
	switch {
	case notFound(err):
		props := &types.ThingTypeProperties{SearchableAttributes: ev.Searchable}
		if ev.Description != "" {
			props.ThingTypeDescription = aws.String(ev.Description)
		}
		_, err = a.IoT.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String(ev.ThingTypeName),
			ThingTypeProperties: props})
		var exists *types.ResourceAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("create thing type %s: %w", ev.ThingTypeName, err)
		}
	case err != nil:
		return fmt.Errorf("describe thing type %s: %w", ev.ThingTypeName, err)
	default:
		deprecated = cur.ThingTypeMetadata != nil && cur.ThingTypeMetadata.Deprecated
	}
	if deprecated == ev.Deprecated {
		return nil
	}
	if _, err := a.IoT.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(ev.ThingTypeName),
		UndoDeprecate: !ev.Deprecated}); err != nil {
		return fmt.Errorf("deprecate thing type %s (undo %v): %w", ev.ThingTypeName, !ev.Deprecated, err)
	}
	return nil
}

// deleteThingType deprecates the type first if it is not: AWS IoT deletes only deprecated types, and only five minutes
// after the deprecation. Until ThingTypeDeleteDelay has passed since the deprecation (as DescribeThingType dates it),
// the delete is not even tried: a NotReadyError says when to come back. The design does not depend on the error AWS
// IoT returns for an early delete, which no page documents: any InvalidRequestException of the delete (AWS's clock
// behind ours, or a thing whose own event has not removed the type yet) is a NotReadyError too.
func (a *Applier) deleteThingType(ctx context.Context, name string) error {
	return a.withTypeLock(ctx, name, func() error { return a.deleteThingTypeLocked(ctx, name) })
}

func (a *Applier) deleteThingTypeLocked(ctx context.Context, name string) error {
	cur, err := a.IoT.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String(name)})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe thing type %s: %w", name, err)
	}
	since := a.now()
	if m := cur.ThingTypeMetadata; m == nil || !m.Deprecated {
		if _, err := a.IoT.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(name)}); err != nil {
			return fmt.Errorf("deprecate thing type %s before deleting it: %w", name, err)
		}
	} else if m.DeprecationDate != nil {
		since = *m.DeprecationDate
	}
	if wait := ThingTypeDeleteDelay - a.now().Sub(since); wait > 0 {
		return &NotReadyError{Reason: "thing type " + name + " was deprecated at " + since.UTC().Format(time.RFC3339) +
			": AWS IoT deletes a thing type five minutes after its deprecation", RetryAfter: wait}
	}
	_, err = a.IoT.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String(name)})
	var inv *types.InvalidRequestException
	switch {
	case err == nil || notFound(err):
		return nil
	case errors.As(err, &inv):
		return &NotReadyError{Reason: "delete thing type " + name + ": " + err.Error(), RetryAfter: time.Minute}
	}
	return fmt.Errorf("delete thing type %s: %w", name, err)
}

func (a *Applier) putGroup(ctx context.Context, ev *Event) (string, error) {
	props := &types.ThingGroupProperties{AttributePayload: &types.AttributePayload{Attributes: ev.Attributes}}
	if ev.Description != "" {
		props.ThingGroupDescription = aws.String(ev.Description)
	}
	cur, err := a.IoT.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(ev.GroupName)})
	if notFound(err) {
		in := &iot.CreateThingGroupInput{ThingGroupName: aws.String(ev.GroupName), ThingGroupProperties: props}
		if ev.ParentName != "" {
			in.ParentGroupName = aws.String(ev.ParentName)
			// The parent's event may not have come yet: repaired from the origin (CreateThingGroup's error for a
			// missing parent is not documented, so it is looked up first).
			switch err := a.ensureGroup(ctx, ev, ev.ParentName); {
			case errors.Is(err, errGone):
				return gone("parent group " + ev.ParentName), nil
			case err != nil:
				return "", err
			}
		}
		if _, err := a.IoT.CreateThingGroup(ctx, in); err != nil {
			return "", fmt.Errorf("create thing group %s under %q: %w", ev.GroupName, ev.ParentName, err)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("describe thing group %s: %w", ev.GroupName, err)
	}
	parent := ""
	if cur.ThingGroupMetadata != nil {
		parent = aws.ToString(cur.ThingGroupMetadata.ParentGroupName)
	}
	if parent != ev.ParentName {
		// AWS IoT cannot move a group: the primary's group was deleted and created again under another parent, and
		// its delete has not been replayed yet.
		return "", fmt.Errorf("thing group %s has parent %q here and %q in the event", ev.GroupName, parent, ev.ParentName)
	}
	var curAttrs map[string]string
	curDesc := ""
	if cur.ThingGroupProperties != nil {
		curDesc = aws.ToString(cur.ThingGroupProperties.ThingGroupDescription)
		if cur.ThingGroupProperties.AttributePayload != nil {
			curAttrs = cur.ThingGroupProperties.AttributePayload.Attributes
		}
	}
	if curDesc == ev.Description && sameAttributes(curAttrs, ev.Attributes) {
		return "", nil
	}
	if _, err := a.IoT.UpdateThingGroup(ctx, &iot.UpdateThingGroupInput{ThingGroupName: aws.String(ev.GroupName),
		ThingGroupProperties: props}); err != nil {
		return "", fmt.Errorf("update thing group %s: %w", ev.GroupName, err)
	}
	return "", nil
}

func (a *Applier) deleteGroup(ctx context.Context, name string) error {
	if _, err := a.IoT.DeleteThingGroup(ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String(name)}); err != nil {
		return fmt.Errorf("delete thing group %s: %w", name, err)
	}
	return nil
}

// membership adds or removes a thing. An ADDED that comes before its group's or thing's own event repairs them from the
// origin; when the origin has neither any more (or only a later incarnation of the thing), the membership is moot.
func (a *Applier) membership(ctx context.Context, ev *Event) (string, error) {
	if ev.Operation == opAdded {
		// The thing here may be another incarnation than the one that joined (a thing deleted and created again,
		// whose delete is not replayed yet): AWS IoT drops a thing's memberships with it, so joining the old one
		// would be undone by its delete. The origin says whether the event's thing is the current one.
		if reason, err := a.sameIncarnation(ctx, ev); reason != "" || err != nil {
			return reason, err
		}
		add := func() error {
			_, err := a.IoT.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{
				ThingGroupName: aws.String(ev.GroupName), ThingName: aws.String(ev.ThingName)})
			return err
		}
		reason, err := withDependency("thing group "+ev.GroupName+" or thing "+ev.ThingName, add, func() error {
			if err := a.ensureGroup(ctx, ev, ev.GroupName); err != nil {
				return err
			}
			return a.ensureThing(ctx, ev, ev.ThingName, ev.ThingID)
		})
		if err != nil {
			return "", fmt.Errorf("add thing %s to group %s: %w", ev.ThingName, ev.GroupName, err)
		}
		return reason, nil
	}
	if _, err := a.IoT.RemoveThingFromThingGroup(ctx, &iot.RemoveThingFromThingGroupInput{
		ThingGroupName: aws.String(ev.GroupName), ThingName: aws.String(ev.ThingName)}); err != nil && !notFound(err) {
		return "", fmt.Errorf("remove thing %s from group %s: %w", ev.ThingName, ev.GroupName, err)
	}
	return "", nil
}

// sameIncarnation makes the thing here the origin's current one when the last event applied to it was about another
// thingId than ev's; it returns a reason to skip ev when ev's thing is not the origin's current one.
func (a *Applier) sameIncarnation(ctx context.Context, ev *Event) (string, error) {
	if ev.ThingID == "" {
		return "", nil
	}
	rec, err := a.Versions.Get(ctx, "thing/"+ev.ThingName)
	if err != nil || rec == nil || rec.Inc == "" || rec.Inc == ev.ThingID {
		return "", err
	}
	o, ok, err := a.origin(ev)
	if err != nil || !ok {
		return "", err
	}
	rev, err := a.originThing(ctx, o, ev, ev.ThingName)
	if err != nil {
		return "", err
	}
	if rev.Operation == opDeleted || rev.Inc != ev.ThingID {
		return gone("the thing " + ev.ThingName + " this event is about"), nil
	}
	return "", a.applyRepair(ctx, rev)
}

// hierarchy checks a parent-child link. A group's parent is set when the group is created (by its THING_GROUP_EVENT)
// and cannot change, so ADDED waits for the child to exist and REMOVED needs nothing: the child's delete removes it.
func (a *Applier) hierarchy(ctx context.Context, ev *Event) (string, error) {
	if ev.Operation == opRemoved {
		return "the link goes with the child group's delete", nil
	}
	cur, err := a.IoT.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(ev.ChildName)})
	if notFound(err) {
		// The link came before the child's own event: the child (with its parent) is repaired from the origin.
		switch err := a.ensureGroup(ctx, ev, ev.ChildName); {
		case errors.Is(err, errGone):
			return gone("thing group " + ev.ChildName), nil
		case err != nil:
			return "", err
		}
		if a.Origin != nil && ev.Origin != "" {
			return "the child group was read-repaired from " + ev.Origin + " under its current parent", nil
		}
		cur, err = a.IoT.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(ev.ChildName)})
	}
	if err != nil {
		return "", fmt.Errorf("describe thing group %s: %w", ev.ChildName, err)
	}
	parent := ""
	if cur.ThingGroupMetadata != nil {
		parent = aws.ToString(cur.ThingGroupMetadata.ParentGroupName)
	}
	if parent != ev.GroupName {
		return "", fmt.Errorf("thing group %s has parent %q here, the event says %q", ev.ChildName, parent, ev.GroupName)
	}
	return "", nil
}
