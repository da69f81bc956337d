package devrot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoAPI is the part of the DynamoDB client the functions use.
type DynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// The rotation table: one item per (thing, job). Open rotations carry AttrOpen and AttrDueAt, the keys of the sparse
// index DueIndex that the sweep queries; a finished rotation removes both.
const (
	AttrThing = "thingName" // partition key
	AttrJob   = "jobId"     // sort key
	AttrOpen  = "open"      // "1" while the rotation has work left; index partition key
	AttrDueAt = "dueAt"     // epoch seconds when the sweep looks at it next; index sort key
	DueIndex  = "due"

	attrStatus      = "status"
	attrCSR         = "csrSha256"
	attrOld         = "oldCertificateId"
	attrOldPCA      = "oldFromPrivateCA"
	attrIssuer      = "issuer"
	attrNew         = "newCertificateId"
	attrNewPEM      = "newCertificatePem"
	attrPCAArn      = "privateCACertificateArn"
	attrOldInactive = "oldInactive"
	attrRetireAfter = "retireAfter"
	attrReason      = "reason"
	attrUpdated     = "updatedAt"
)

// Rotation statuses.
const (
	StateIssuing   = "ISSUING"   // CSR accepted, certificate being issued
	StateIssued    = "ISSUED"    // certificate sent, waiting for the confirmation over it
	StateConfirmed = "CONFIRMED" // new certificate proven; old one detached and INACTIVE, deleted after the grace period
	StateRetired   = "RETIRED"   // old certificate revoked (and deleted when AWS IoT issued it)
	StateAborting  = "ABORTING"  // job ended without confirmation: new certificate being revoked
	StateAborted   = "ABORTED"   // new certificate revoked; old untouched
)

// Issuers of a rotated certificate.
const (
	IssuerIoT = "iot" // AWS IoT (CreateCertificateFromCsr): devices of the per-thing stacks and of the vending API
	IssuerPCA = "pca" // our Private CA: multi-region JITR devices
)

// Rotation is one item of the table.
type Rotation struct {
	Thing, JobID string
	Status       string
	CSRSha256    string
	OldCertID    string
	OldFromPCA   bool
	Issuer       string
	NewCertID    string
	NewCertPEM   string
	PCACertARN   string
	OldInactive  bool
	RetireAfter  time.Time
	DueAt        time.Time
	Open         bool
	Reason       string
}

// Store reads and writes rotations with conditional writes only.
type Store struct {
	DB    DynamoAPI
	Table string
}

// errConflict is a conditional write that lost: someone else moved the rotation first.
var errConflict = errors.New("rotation changed meanwhile")

func key(thing, job string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrThing: s(thing), AttrJob: s(job)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func b(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

// Get reads a rotation with a strongly consistent read; ok is false when there is none.
func (st *Store) Get(ctx context.Context, thing, job string) (Rotation, bool, error) {
	out, err := st.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.Table), Key: key(thing, job), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Rotation{}, false, fmt.Errorf("read rotation %s/%s: %w", thing, job, err)
	}
	if len(out.Item) == 0 {
		return Rotation{}, false, nil
	}
	return decode(out.Item), true, nil
}

func decode(item map[string]types.AttributeValue) Rotation {
	str := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	num := func(k string) time.Time {
		if v, ok := item[k].(*types.AttributeValueMemberN); ok {
			if i, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
				return time.Unix(i, 0).UTC()
			}
		}
		return time.Time{}
	}
	boolean := func(k string) bool {
		v, ok := item[k].(*types.AttributeValueMemberBOOL)
		return ok && v.Value
	}
	return Rotation{
		Thing: str(AttrThing), JobID: str(AttrJob), Status: str(attrStatus), CSRSha256: str(attrCSR),
		OldCertID: str(attrOld), OldFromPCA: boolean(attrOldPCA), Issuer: str(attrIssuer), NewCertID: str(attrNew),
		NewCertPEM: str(attrNewPEM), PCACertARN: str(attrPCAArn), OldInactive: boolean(attrOldInactive),
		RetireAfter: num(attrRetireAfter), DueAt: num(AttrDueAt), Open: str(AttrOpen) == "1", Reason: str(attrReason),
	}
}

// Create writes a new rotation; errConflict when one exists for the (thing, job).
func (st *Store) Create(ctx context.Context, r Rotation, now time.Time) error {
	item := key(r.Thing, r.JobID)
	item[attrStatus] = s(r.Status)
	item[attrUpdated] = n(now.Unix())
	if r.Status != StateAborted {
		item[AttrOpen] = s("1")
		item[AttrDueAt] = n(r.DueAt.Unix())
	}
	for k, v := range map[string]string{attrCSR: r.CSRSha256, attrOld: r.OldCertID, attrIssuer: r.Issuer, attrReason: r.Reason} {
		if v != "" {
			item[k] = s(v)
		}
	}
	item[attrOldPCA] = b(r.OldFromPCA)
	_, err := st.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(st.Table), Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(#t)"),
		ExpressionAttributeNames: map[string]string{"#t": AttrThing},
	})
	return conflict(err, "create rotation %s/%s", r.Thing, r.JobID)
}

// Change moves a rotation from one of the statuses in from to status to, setting set (attribute → value) and
// removing remove; errConflict when its status is none of from. An empty to keeps the status.
func (st *Store) Change(ctx context.Context, thing, job string, from []string, to string, set map[string]types.AttributeValue, remove []string, now time.Time) error {
	names := map[string]string{"#st": attrStatus, "#up": attrUpdated}
	values := map[string]types.AttributeValue{":up": n(now.Unix())}
	expr := "SET #up = :up"
	if to != "" {
		expr += ", #st = :to"
		values[":to"] = s(to)
	}
	i := 0
	for k, v := range set {
		i++
		nk, vk := fmt.Sprintf("#s%d", i), fmt.Sprintf(":s%d", i)
		names[nk], values[vk] = k, v
		expr += ", " + nk + " = " + vk
	}
	if len(remove) > 0 {
		expr += " REMOVE "
		for j, k := range remove {
			nk := fmt.Sprintf("#r%d", j)
			names[nk] = k
			if j > 0 {
				expr += ", "
			}
			expr += nk
		}
	}
	cond := ""
	for j, f := range from {
		vk := fmt.Sprintf(":f%d", j)
		values[vk] = s(f)
		if j > 0 {
			cond += " OR "
		}
		cond += "#st = " + vk
	}
	_, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.Table), Key: key(thing, job), UpdateExpression: aws.String(expr),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	return conflict(err, "update rotation %s/%s to %s", thing, job, to)
}

// Due returns the open rotations whose dueAt is at or before now, oldest first, at most limit.
func (st *Store) Due(ctx context.Context, now time.Time, limit int) ([]Rotation, error) {
	var (
		out   []Rotation
		start map[string]types.AttributeValue
	)
	for {
		page, err := st.DB.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(st.Table), IndexName: aws.String(DueIndex),
			KeyConditionExpression:    aws.String("#o = :o AND #d <= :now"),
			ExpressionAttributeNames:  map[string]string{"#o": AttrOpen, "#d": AttrDueAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":o": s("1"), ":now": n(now.Unix())},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("query due rotations: %w", err)
		}
		for _, it := range page.Items {
			out = append(out, decode(it))
			if len(out) >= limit {
				return out, nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

func conflict(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errConflict
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// TableSchema is the table definition the stack and the tests share: key, sparse due index (keys only).
func TableSchema(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrThing), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrJob), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrOpen), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrDueAt), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrThing), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrJob), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(DueIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrOpen), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(AttrDueAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}
