package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SelectInput is the state machine's input: empty for a scheduled run, or the hosts to rotate now.
type SelectInput struct {
	HostIDs []string `json:"hostIDs,omitempty"`
}

// HostItem is one Map item.
type HostItem struct {
	HostID string `json:"hostID"`
}

// SelectOutput lists the due hosts. With a manifest bucket the hosts are written to S3 (Manifest) for a distributed
// Map's ItemReader and Hosts is empty; otherwise Hosts holds them.
type SelectOutput struct {
	Hosts []HostItem `json:"hosts"`
	Count int        `json:"count"`
	// Truncated is true when more hosts were due than MaxHosts; the rest stay due for the next run.
	Truncated bool      `json:"truncated"`
	Manifest  *Manifest `json:"manifest,omitempty"`
	// ItemsRead is how many index items the queries read (a Scan would read the whole table).
	ItemsRead int `json:"itemsRead"`
}

// Manifest is where the host list was written: a JSON array of HostItem.
type Manifest struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// Selector finds the hosts due for renewal.
type Selector struct {
	Table   TableAPI
	Objects ObjectAPI // only with Config.ManifestBucket
	Config  Config
	Now     func() time.Time
}

// Select returns the hosts whose renewAt has passed, from a Query per shard of the renewAt index (never a Scan),
// following every page. Hosts named in the input are checked and returned as they are (rotate now).
func (s *Selector) Select(ctx context.Context, in SelectInput) (SelectOutput, error) {
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	if len(in.HostIDs) > 0 {
		out := SelectOutput{Hosts: []HostItem{}}
		for _, id := range in.HostIDs {
			if err := CheckHostID(id); err != nil {
				return SelectOutput{}, stepErr(ErrHostInvalid, "%v", err)
			}
			out.Hosts = append(out.Hosts, HostItem{HostID: id})
		}
		out.Count = len(out.Hosts)
		return out, nil
	}
	ids, read, truncated, err := s.Due(ctx, now)
	if err != nil {
		return SelectOutput{}, err
	}
	out := SelectOutput{Hosts: make([]HostItem, 0, len(ids)), Count: len(ids), Truncated: truncated, ItemsRead: read}
	for _, id := range ids {
		out.Hosts = append(out.Hosts, HostItem{HostID: id})
	}
	if s.Config.ManifestBucket != "" {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(out.Hosts); err != nil {
			return SelectOutput{}, fmt.Errorf("encode manifest: %w", err)
		}
		key := "manifests/" + now.Format("20060102T150405Z") + "-" + strconv.FormatInt(now.UnixNano()%1e9, 10) + ".json"
		_, err := s.Objects.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.Config.ManifestBucket), Key: aws.String(key),
			Body: bytes.NewReader(buf.Bytes()), ContentType: aws.String("application/json"),
		})
		if err != nil {
			return SelectOutput{}, classify(fmt.Errorf("write manifest s3://%s/%s: %w", s.Config.ManifestBucket, key, err))
		}
		out.Manifest = &Manifest{Bucket: s.Config.ManifestBucket, Key: key}
		out.Hosts = []HostItem{}
	}
	slog.InfoContext(ctx, "due hosts selected", "count", out.Count, "truncated", truncated, "itemsRead", read)
	return out, nil
}

// Due queries every shard of the renewAt index for hosts with renewAt <= now, at most MaxHosts of them. It returns
// the host ids, the number of index items read and whether hosts were left for a later run.
func (s *Selector) Due(ctx context.Context, now time.Time) (ids []string, read int, truncated bool, err error) {
	shards := s.Config.RenewShards
	if shards <= 0 {
		shards = DefaultRenewShards
	}
	limit := s.Config.MaxHosts
	if limit <= 0 {
		limit = DefaultMaxHosts
	}
	cutoff := now.UTC().Format(RenewAtLayout)
	for shard := 0; shard < shards; shard++ {
		var start map[string]types.AttributeValue
		for {
			page := int32(min(1000, limit-len(ids)+1))
			out, err := s.Table.Query(ctx, &dynamodb.QueryInput{
				TableName:                aws.String(s.Config.TableName),
				IndexName:                aws.String(RenewIndexName),
				KeyConditionExpression:   aws.String("#shard = :shard AND #renewAt <= :now"),
				ExpressionAttributeNames: map[string]string{"#shard": AttrRenewShard, "#renewAt": AttrRenewAt, "#id": AttrHostID},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":shard": &types.AttributeValueMemberN{Value: strconv.Itoa(shard)},
					":now":   &types.AttributeValueMemberS{Value: cutoff},
				},
				ProjectionExpression: aws.String("#id"),
				ExclusiveStartKey:    start,
				Limit:                aws.Int32(page),
			})
			if err != nil {
				return nil, read, false, classify(fmt.Errorf("query %s shard %d: %w", RenewIndexName, shard, err))
			}
			read += int(out.Count)
			for _, item := range out.Items {
				id, _, _ := stringAttr(item, AttrHostID)
				if !ValidHostID(id) {
					// An item an operator wrote by hand with a bad id: report it, rotate the others.
					slog.WarnContext(ctx, "skipping host with an invalid id", "hostID", fmt.Sprintf("%q", id))
					continue
				}
				if len(ids) == limit {
					return ids, read, true, nil
				}
				ids = append(ids, id)
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			start = out.LastEvaluatedKey
		}
	}
	return ids, read, false, nil
}
