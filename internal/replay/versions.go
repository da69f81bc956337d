package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is what the Versions table needs of DynamoDB.
type DynamoDBAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Versions keeps, per registry entity, the newest event this region claimed and whether it was applied.
//
// Why a table in the replica region and not, say, a thing attribute: thing types and memberships have no attributes,
// a thing without a type has only 3, an attribute would show in the operator's registry and be replicated by our own
// updates, and a deleted thing keeps no attributes, so nothing would stop an older CREATED from resurrecting it. A
// DynamoDB item per entity gives a conditional write (compare-and-set on the order key) and a tombstone after delete.
type Versions struct {
	DB    DynamoDBAPI
	Table string
	// Lease is how long a claim keeps other events of the entity waiting. Default: 60 s (an apply takes well under a
	// second; a crashed one is taken over after the lease).
	Lease time.Duration
	// Keep is how long an entity's record is kept after its last event (DynamoDB TTL). Default: 30 days, longer than
	// the 24 hours a stream keeps records and the 48 hours the table keeps events.
	Keep time.Duration
	Now  func() time.Time
}

// Claim is the outcome of claiming an entity for an event.
type Claim int

const (
	// Apply: the event is the newest for its entity (or is retrying its own claim): apply it, then call Done.
	Apply Claim = iota
	// Stale: a newer or equal event was claimed for the entity: skip this one.
	Stale
	// Busy: an older event of the entity is being applied: try again after its lease.
	Busy
	// Ambiguous: an event with the same timestamp was claimed, and the two events do not say which came first (another
	// incarnation of the entity, e.g. a thing deleted and created again within one millisecond, or two events of one
	// incarnation that no version or operation orders). Neither is applied: the origin region is asked what is true.
	Ambiguous
)

func (c Claim) String() string {
	return [...]string{"apply", "stale", "busy", "ambiguous"}[c]
}

// VersionRecord is an entity's record.
type VersionRecord struct {
	Order
	// Inc is the incarnation (thingId, thingGroupId, thingTypeId) the claimed event was about; "" when unknown.
	Inc     string
	EventID string
	Applied bool
	Deleted bool
}

func (v *Versions) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Versions) lease() time.Duration {
	if v.Lease > 0 {
		return v.Lease
	}
	return time.Minute
}

func (v *Versions) keep() time.Duration {
	if v.Keep > 0 {
		return v.Keep
	}
	return 30 * 24 * time.Hour
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// Claim records that eventID (at order o, about incarnation inc, "" when the event names none) is about to be applied
// to entity, if it is the newest event of that entity and no older one holds the lease.
//
// Within one timestamp, events are ordered only when they are about the same incarnation: then a delete comes after
// everything else (nothing happens to a thing after its delete), and otherwise the higher versionNumber is later. Two
// events of one timestamp about different incarnations, or that neither rank nor version separate, are Ambiguous.
func (v *Versions) Claim(ctx context.Context, entity string, o Order, inc, eventID string) (Claim, error) {
	now := v.now()
	names := map[string]string{"#ts": "ts"}
	values := map[string]types.AttributeValue{":id": str(eventID), ":ts": num(o.TS), ":applied": str("applied"),
		":applying": str("applying"), ":now": num(now.UnixMilli())}
	newer := "#ts < :ts"
	if inc != "" {
		newer = "(#ts < :ts OR (#ts = :ts AND inc = :inc AND (#rank < :rank OR (#rank = :rank AND #ver < :ver))))"
		names["#rank"], names["#ver"] = "rank", "ver"
		values[":inc"], values[":rank"], values[":ver"] = str(inc), num(o.Rank), num(o.Ver)
	}
	_, err := v.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(v.Table),
		Item: map[string]types.AttributeValue{
			"pk": str(entity), "ts": num(o.TS), "rank": num(o.Rank), "ver": num(o.Ver), "inc": str(inc),
			"eventId": str(eventID), "st": str("applying"),
			"leaseUntil": num(now.Add(v.lease()).UnixMilli()), "expiresAt": num(now.Add(v.keep()).Unix()),
		},
		// The same event may claim again while its claim is not applied (a retry); once applied, a copy is stale.
		// Records written before rank and inc existed hold neither: they compare as rank 0 and an unknown incarnation.
		ConditionExpression: aws.String("attribute_not_exists(pk) OR (eventId = :id AND st = :applying) OR " +
			"(" + newer + " AND (st = :applied OR leaseUntil < :now))"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err == nil {
		return Apply, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return 0, fmt.Errorf("claim %s: %w", entity, err)
	}
	rec, err := v.Get(ctx, entity)
	if err != nil {
		return 0, err
	}
	if rec == nil { // removed by TTL in between: claim again
		return v.Claim(ctx, entity, o, inc, eventID)
	}
	switch {
	case rec.EventID == eventID:
		return Stale, nil // this event, applied already
	case !rec.Applied && strings.HasPrefix(rec.EventID, repairPrefix):
		// A read-repair that has not applied (it failed, or is under way): nothing newer than this event is in place,
		// and no execution of its own retries the repair; the event's retry reads the origin again.
		return Ambiguous, nil
	case o.TS < rec.TS:
		return Stale, nil
	case o.TS == rec.TS && (inc == "" || rec.Inc != inc || (o.Rank == rec.Rank && o.Ver == rec.Ver)):
		return Ambiguous, nil
	case o.TS == rec.TS && !o.After(rec.Order):
		return Stale, nil
	}
	return Busy, nil
}

// Done marks eventID's claim of entity applied (deleted: the entity no longer exists). A newer claim taken over
// meanwhile is left alone.
func (v *Versions) Done(ctx context.Context, entity, eventID string, deleted bool) error {
	_, err := v.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(v.Table),
		Key:                       map[string]types.AttributeValue{"pk": str(entity)},
		UpdateExpression:          aws.String("SET st = :applied, deleted = :del REMOVE leaseUntil"),
		ConditionExpression:       aws.String("eventId = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":applied": str("applied"), ":id": str(eventID), ":del": &types.AttributeValueMemberBOOL{Value: deleted}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("record %s applied: %w", entity, err)
	}
	return nil
}

// Release ends eventID's lease on entity after its apply failed, so that a newer event need not wait for the lease:
// the failed event's retry then finds the entity claimed by the newer one and is skipped as stale, or, when no newer
// event came, claims it again.
func (v *Versions) Release(ctx context.Context, entity, eventID string) error {
	_, err := v.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(v.Table),
		Key:                       map[string]types.AttributeValue{"pk": str(entity)},
		UpdateExpression:          aws.String("SET leaseUntil = :zero"),
		ConditionExpression:       aws.String("eventId = :id AND st = :applying"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":id": str(eventID), ":applying": str("applying")},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release %s: %w", entity, err)
	}
	return nil
}

// Get reads an entity's record; nil when there is none.
func (v *Versions) Get(ctx context.Context, entity string) (*VersionRecord, error) {
	out, err := v.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(v.Table),
		Key:            map[string]types.AttributeValue{"pk": str(entity)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read version of %s: %w", entity, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	rec := &VersionRecord{}
	if n, ok := out.Item["ts"].(*types.AttributeValueMemberN); ok {
		rec.TS, _ = strconv.ParseInt(n.Value, 10, 64)
	}
	if n, ok := out.Item["ver"].(*types.AttributeValueMemberN); ok {
		rec.Ver, _ = strconv.ParseInt(n.Value, 10, 64)
	}
	if n, ok := out.Item["rank"].(*types.AttributeValueMemberN); ok {
		rec.Rank, _ = strconv.ParseInt(n.Value, 10, 64)
	}
	if s, ok := out.Item["inc"].(*types.AttributeValueMemberS); ok {
		rec.Inc = s.Value
	}
	if s, ok := out.Item["eventId"].(*types.AttributeValueMemberS); ok {
		rec.EventID = s.Value
	}
	if s, ok := out.Item["st"].(*types.AttributeValueMemberS); ok {
		rec.Applied = s.Value == "applied"
	}
	if b, ok := out.Item["deleted"].(*types.AttributeValueMemberBOOL); ok {
		rec.Deleted = b.Value
	}
	return rec, nil
}

// Lock takes a short exclusive lock, named key, for owner: false when another owner holds it and its lease has not
// run out. It serialises changes to one thing type's deprecation between the type's own events and the moment a
// thing event lifts it (see Applier.withTypeUsable), which claim different entities.
func (v *Versions) Lock(ctx context.Context, key, owner string) (bool, error) {
	now := v.now()
	_, err := v.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(v.Table),
		Item: map[string]types.AttributeValue{"pk": str("lock/" + key), "owner": str(owner),
			"leaseUntil": num(now.Add(v.lease()).UnixMilli()), "expiresAt": num(now.Add(v.keep()).Unix())},
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":owner": str(owner)},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ccf):
		return false, nil
	}
	return false, fmt.Errorf("lock %s: %w", key, err)
}

// Unlock ends owner's lock on key.
func (v *Versions) Unlock(ctx context.Context, key, owner string) error {
	_, err := v.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(v.Table),
		Key:                       map[string]types.AttributeValue{"pk": str("lock/" + key)},
		UpdateExpression:          aws.String("SET leaseUntil = :zero"),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":owner": str(owner)},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("unlock %s: %w", key, err)
	}
	return nil
}
