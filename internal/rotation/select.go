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
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SelectInput is the state machine's input: empty for a scheduled run, or the hosts to rotate now
// ({"hostID": "i-…"} from CertCheck-Trigger and rotation-hosts rotate-now).
type SelectInput struct {
	HostID  string   `json:"hostID,omitempty"`
	HostIDs []string `json:"hostIDs,omitempty"`
}

// HostItem is one Map item.
type HostItem struct {
	HostID string `json:"hostID"`
}

// SelectOutput names the manifest of hosts to rotate: s3://Bucket/Key holds a JSON array of HostItem, which the
// state machine's distributed Map reads (the host list never travels in the execution state, capped at 256 KiB).
type SelectOutput struct {
	// Count is how many hosts the manifest holds.
	Count  int    `json:"count"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Overdue is how many hosts are past renewAt, including those beyond MaxHosts (left for the next run).
	Overdue int `json:"overdue"`
	// Stale is how many of them passed renewAt more than StaleAfter ago: hosts that missed at least two scheduled
	// runs, which the HostsPastRenewAtAlarm reports (Overdue alone is every host due at the start of a run).
	Stale int `json:"stale"`
	// Truncated is true when Overdue > Count.
	Truncated bool `json:"truncated"`
	// CADaysLeft is the CA certificate's remaining whole days (Private CA sends no expiry event); absent when the
	// CA could not be read.
	CADaysLeft *int `json:"caDaysLeft,omitempty"`
	// ItemsRead is how many index items the queries read (a Scan would read the whole table).
	ItemsRead int `json:"itemsRead"`
}

// CAAPI reads the CA's certificate validity.
type CAAPI interface {
	DescribeCertificateAuthority(context.Context, *acmpca.DescribeCertificateAuthorityInput, ...func(*acmpca.Options)) (*acmpca.DescribeCertificateAuthorityOutput, error)
}

// Selector finds the hosts due for renewal.
type Selector struct {
	Table   TableAPI
	Objects ObjectAPI
	CA      CAAPI // optional: with Config.PCAARN, CADaysLeft is reported
	Config  Config
	Now     func() time.Time
}

// Select writes the manifest of hosts whose renewAt has passed, from a Query per shard of the renewAt index (never
// a Scan), following every page. Hosts named in the input are checked and listed as they are (rotate now).
func (s *Selector) Select(ctx context.Context, in SelectInput) (SelectOutput, error) {
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	var out SelectOutput
	var ids []string
	if in.HostID != "" || len(in.HostIDs) > 0 {
		named := in.HostIDs
		if in.HostID != "" {
			named = append([]string{in.HostID}, named...)
		}
		for _, id := range named {
			if err := CheckHostID(id); err != nil {
				return SelectOutput{}, stepErr(ErrHostInvalid, "%v", err)
			}
			ids = append(ids, id)
		}
		out.Overdue = len(ids)
	} else {
		var err error
		ids, out.Overdue, out.Stale, out.ItemsRead, err = s.due(ctx, now)
		if err != nil {
			return SelectOutput{}, err
		}
	}
	out.Count, out.Truncated = len(ids), out.Overdue > len(ids)
	items := make([]HostItem, 0, len(ids))
	for _, id := range ids {
		items = append(items, HostItem{HostID: id})
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(items); err != nil {
		return SelectOutput{}, fmt.Errorf("encode manifest: %w", err)
	}
	out.Bucket = s.Config.ManifestBucket
	out.Key = ManifestPrefix + now.Format("20060102T150405Z") + "-" + randomHex() + ".json"
	_, err := s.Objects.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(out.Bucket), Key: aws.String(out.Key),
		Body: bytes.NewReader(buf.Bytes()), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return SelectOutput{}, classify(fmt.Errorf("write manifest s3://%s/%s: %w", out.Bucket, out.Key, err))
	}
	if s.CA != nil && s.Config.PCAARN != "" {
		ca, err := s.CA.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{
			CertificateAuthorityArn: aws.String(s.Config.PCAARN),
		})
		if err != nil || ca.CertificateAuthority == nil || ca.CertificateAuthority.NotAfter == nil {
			// The CA alarm treats a missing report as breaching; rotation goes on.
			slog.WarnContext(ctx, "CA validity not read", "error", fmt.Sprint(err))
		} else {
			days := int(ca.CertificateAuthority.NotAfter.Sub(now).Hours() / 24)
			out.CADaysLeft = &days
		}
	}
	slog.InfoContext(ctx, "due hosts selected", "count", out.Count, "overdue", out.Overdue, "stale", out.Stale, "itemsRead", out.ItemsRead,
		"manifest", out.Key)
	return out, nil
}

// Due queries every shard of the renewAt index for hosts with renewAt <= now. It returns at most MaxHosts host ids,
// the number of hosts due in all, and the number of index items read.
func (s *Selector) Due(ctx context.Context, now time.Time) (ids []string, due, read int, err error) {
	ids, due, _, read, err = s.due(ctx, now)
	return ids, due, read, err
}

// StaleAfter is how long past its renewAt a host counts as stale: two scheduled runs (12 hours apart) missed it.
const StaleAfter = 24 * time.Hour

func (s *Selector) due(ctx context.Context, now time.Time) (ids []string, due, stale, read int, err error) {
	shards := s.Config.RenewShards
	if shards <= 0 {
		shards = DefaultRenewShards
	}
	limit := s.Config.MaxHosts
	if limit <= 0 {
		limit = DefaultMaxHosts
	}
	cutoff := now.UTC().Format(RenewAtLayout)
	staleCutoff := now.UTC().Add(-StaleAfter).Format(RenewAtLayout)
	for shard := 0; shard < shards; shard++ {
		var start map[string]types.AttributeValue
		for {
			out, err := s.Table.Query(ctx, &dynamodb.QueryInput{
				TableName:                aws.String(s.Config.TableName),
				IndexName:                aws.String(RenewIndexName),
				KeyConditionExpression:   aws.String("#shard = :shard AND #renewAt <= :now"),
				ExpressionAttributeNames: map[string]string{"#shard": AttrRenewShard, "#renewAt": AttrRenewAt, "#id": AttrHostID},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":shard": &types.AttributeValueMemberN{Value: strconv.Itoa(shard)},
					":now":   &types.AttributeValueMemberS{Value: cutoff},
				},
				ProjectionExpression: aws.String("#id, #renewAt"),
				ExclusiveStartKey:    start,
			})
			if err != nil {
				return nil, due, stale, read, classify(fmt.Errorf("query %s shard %d: %w", RenewIndexName, shard, err))
			}
			read += int(out.Count)
			for _, item := range out.Items {
				id, _, _ := stringAttr(item, AttrHostID)
				if !ValidHostID(id) {
					// An item an operator wrote by hand with a bad id: report it, rotate the others.
					slog.WarnContext(ctx, "skipping host with an invalid id", "hostID", fmt.Sprintf("%q", id))
					continue
				}
				due++
				if renewAt, _, _ := stringAttr(item, AttrRenewAt); renewAt < staleCutoff { // RFC 3339 UTC sorts as time
					stale++
				}
				if len(ids) < limit {
					ids = append(ids, id)
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			start = out.LastEvaluatedKey
		}
	}
	return ids, due, stale, read, nil
}
