package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// StatusInvalid marks a host item that cannot be rotated as written (its id or a path breaks the patterns); its
// lastError says why. It has no renewAt, so no run selects it until an operator corrects it.
const StatusInvalid = "INVALID"

// Normalizer brings every host item into the renewAt index as it is written, whoever wrote it: the sample's
// instructions, the console and the CLI write hostID and paths only, and an item without renewAt and renewShard is
// never selected. It reads the inventory table's stream (one record per write, no scan): an item missing either
// gets renewShard and renewAt = now (due at the next run); an item whose id or paths break the patterns gets status
// INVALID and lastError instead, and one notice on the failure topic. Items that have both are left alone.
type Normalizer struct {
	Table  TableAPI
	Topic  TopicAPI
	Config Config
	Now    func() time.Time
}

// NormalizeResult counts what one batch did.
type NormalizeResult struct {
	Normalized int `json:"normalized"`
	Invalid    int `json:"invalid"`
}

// Handle processes a batch of the table's stream records (NEW_IMAGE). An error (the table could not be updated)
// fails the batch, which the event source retries.
func (n *Normalizer) Handle(ctx context.Context, ev events.DynamoDBEvent) (NormalizeResult, error) {
	var res NormalizeResult
	for _, r := range ev.Records {
		if r.EventName != "INSERT" && r.EventName != "MODIFY" {
			continue
		}
		img := r.Change.NewImage
		idAttr, ok := img[AttrHostID]
		if !ok || idAttr.DataType() != events.DataTypeString || idAttr.String() == IssuanceCounterKey {
			continue
		}
		renewAt, hasRenew := img[AttrRenewAt]
		shard, hasShard := img[AttrRenewShard]
		if hasRenew && renewAt.DataType() == events.DataTypeString && hasShard && shard.DataType() == events.DataTypeNumber {
			continue // in the index
		}
		id := idAttr.String()
		reason := n.refusal(id, img)
		if reason == "" {
			done, err := n.normalize(ctx, id)
			if err != nil {
				return res, err
			}
			if done {
				res.Normalized++
			}
			continue
		}
		if len(reason) > maxErrorText { // a value written by hand can be as long as an item
			reason = reason[:maxErrorText]
		}
		reported, err := n.report(ctx, id, reason)
		if err != nil {
			return res, err
		}
		if reported {
			res.Invalid++
		}
	}
	return res, nil
}

// refusal is why the item cannot be rotated as written, or "".
func (n *Normalizer) refusal(id string, img map[string]events.DynamoDBAttributeValue) string {
	if err := CheckHostID(id); err != nil {
		return err.Error()
	}
	for _, attr := range []string{AttrCertPath, AttrKeyPath, AttrCACertPath, AttrSigningHelper} {
		v, ok := img[attr]
		if !ok {
			continue
		}
		if v.DataType() != events.DataTypeString {
			return fmt.Sprintf("attribute %s is not a string", attr)
		}
		if v.String() == "" {
			continue
		}
		if err := CheckPath(attr, v.String()); err != nil {
			return err.Error()
		}
	}
	return ""
}

func (n *Normalizer) now() time.Time {
	if n.Now != nil {
		return n.Now().UTC()
	}
	return time.Now().UTC()
}

// normalize adds renewShard and renewAt (now: due at the next run) to an item that lacks either; an item that has
// meanwhile been given both, or deleted, is left as it is.
func (n *Normalizer) normalize(ctx context.Context, id string) (bool, error) {
	shards := n.Config.RenewShards
	if shards <= 0 {
		shards = DefaultRenewShards
	}
	_, err := n.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(n.Config.TableName),
		Key:              map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: id}},
		UpdateExpression: aws.String("SET #shard = :shard, #renewAt = :now REMOVE #err"),
		ConditionExpression: aws.String("attribute_exists(#id) AND (attribute_not_exists(#renewAt) OR attribute_not_exists(#shard) OR " +
			"NOT attribute_type(#renewAt, :S) OR NOT attribute_type(#shard, :N))"),
		ExpressionAttributeNames: map[string]string{"#shard": AttrRenewShard, "#renewAt": AttrRenewAt, "#id": AttrHostID, "#err": AttrLastError},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":shard": &types.AttributeValueMemberN{Value: strconv.Itoa(RenewShard(id, shards))},
			":now":   &types.AttributeValueMemberS{Value: n.now().Format(RenewAtLayout)},
			":S":     &types.AttributeValueMemberS{Value: "S"},
			":N":     &types.AttributeValueMemberS{Value: "N"},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("normalize host %s: %w", id, err)
	}
	slog.InfoContext(ctx, "host added to the rotation schedule", "host", id)
	return true, nil
}

// report marks the item INVALID with the reason and tells the failure topic, once: an item already marked with the
// same reason (our own update coming back on the stream, or a batch retried) is not reported again.
func (n *Normalizer) report(ctx context.Context, id, reason string) (bool, error) {
	_, err := n.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(n.Config.TableName),
		Key:                      map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: id}},
		UpdateExpression:         aws.String("SET #status = :status, #err = :err"),
		ConditionExpression:      aws.String("attribute_exists(#id) AND (attribute_not_exists(#err) OR #err <> :err OR #status <> :status)"),
		ExpressionAttributeNames: map[string]string{"#status": AttrStatus, "#err": AttrLastError, "#id": AttrHostID},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":status": &types.AttributeValueMemberS{Value: StatusInvalid},
			":err":    &types.AttributeValueMemberS{Value: reason},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil // already reported, or deleted meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("mark host %s invalid: %w", quoteShort(id), err)
	}
	msg := fmt.Sprintf("Certificate rotation cannot rotate host %s as written in table %s: %s", quoteShort(id), n.Config.TableName, reason)
	if err := Notify(ctx, n.Topic, n.Config.TopicARN, msg); err != nil {
		return false, err
	}
	slog.WarnContext(ctx, "host item refused", "host", quoteShort(id), "reason", reason)
	return true, nil
}

// maxQuotedID bounds a host id quoted in a message: an id written by hand can be up to DynamoDB's 2048 bytes.
const maxQuotedID = 64

// quoteShort quotes an id for a message, cut to maxQuotedID bytes.
func quoteShort(id string) string {
	if len(id) > maxQuotedID {
		return fmt.Sprintf("%q…", id[:maxQuotedID])
	}
	return fmt.Sprintf("%q", id)
}
