package rotation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Hosts written the sample's way (hostID and paths, no renewAt or renewShard) reach the renewAt index through the
// table's stream, and are then selected; items that cannot be rotated are marked INVALID and reported once.
func TestNormalizeHandWrittenHosts(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	ctx := context.Background()
	_, err := f.ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(f.table),
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}})
	if err != nil {
		t.Fatalf("enable the stream: %v", err)
	}
	put := func(item map[string]string) {
		av := map[string]types.AttributeValue{}
		for k, v := range item {
			av[k] = &types.AttributeValueMemberS{Value: v}
		}
		if _, err := f.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: av}); err != nil {
			t.Fatal(err)
		}
	}
	sample, badPath, badID := hostN(181), hostN(182), "web-server-1"
	put(map[string]string{rotation.AttrHostID: sample, rotation.AttrCertPath: "/etc/pki/iamra", rotation.AttrKeyPath: "/etc/pki/iamra"}) // the sample's CLI
	put(map[string]string{rotation.AttrHostID: badPath, rotation.AttrKeyPath: "/tmp;reboot"})
	put(map[string]string{rotation.AttrHostID: badID})
	f.addHost(t, hostN(183), nil, false) // rotation-hosts add: already in the index
	long := "i-" + strings.Repeat("x", 1500)
	put(map[string]string{rotation.AttrHostID: long}) // as long as a key may be: the notice stays short

	if sel, err := f.sel.Select(ctx, rotation.SelectInput{}); err != nil || sel.Count != 1 {
		t.Fatalf("Select() before normalizing = %+v, %v; want only the host added by rotation-hosts", sel, err)
	}
	n := &rotation.Normalizer{Table: f.ddb, Topic: sns.NewFromConfig(f.cfg), Config: f.steps.Config, Now: func() time.Time { return f.now }}
	res, err := n.Handle(ctx, events.DynamoDBEvent{Records: readInventoryStream(t, ctx, f)})
	if err != nil || res.Normalized != 1 || res.Invalid != 3 {
		t.Fatalf("Handle() = %+v, %v; want 1 normalized, 3 invalid", res, err)
	}
	sel, err := f.sel.Select(ctx, rotation.SelectInput{})
	if err != nil || sel.Count != 2 {
		t.Fatalf("Select() after normalizing = %+v, %v; want the sample's host due too", sel, err)
	}
	if raw, _ := f.srv.S3.Object(sel.Bucket, sel.Key); !strings.Contains(string(raw), sample) {
		t.Errorf("manifest %s lacks %s", raw, sample)
	}
	for _, id := range []string{badPath, badID} {
		if it := f.item(t, id); it[rotation.AttrStatus] != rotation.StatusInvalid || it[rotation.AttrLastError] == "" || it[rotation.AttrRenewAt] != "" {
			t.Errorf("%s: item %v, want INVALID with lastError and no renewAt", id, it)
		}
	}
	msgs := f.srv.SNS.Messages()
	all := ""
	for _, m := range msgs {
		all += m.Message
		if len(m.Message) > 2500 {
			t.Errorf("notice of %d bytes: %.200s…", len(m.Message), m.Message)
		}
	}
	if len(msgs) != 3 || !strings.Contains(all, `cannot rotate host \"web-server-1\"`) {
		t.Fatalf("notifications %+v, want one per invalid item", msgs)
	}
	// The stream again, with our own updates on it (and the first records redelivered): nothing new, no loop.
	res, err = n.Handle(ctx, events.DynamoDBEvent{Records: readInventoryStream(t, ctx, f)})
	if err != nil || res.Normalized != 0 || res.Invalid != 0 || len(f.srv.SNS.Messages()) != 3 {
		t.Errorf("second Handle() = %+v, %v, %d notifications; want nothing more", res, err, len(f.srv.SNS.Messages()))
	}
}

// readInventoryStream reads the fleet table's whole stream as Lambda's event source delivers it (string and number
// attributes: what the inventory holds).
func readInventoryStream(t *testing.T, ctx context.Context, f *fleet) []events.DynamoDBEventRecord {
	t.Helper()
	streams := dynamodbstreams.NewFromConfig(f.cfg, func(o *dynamodbstreams.Options) { // DynamoDB Local serves both
		o.BaseEndpoint = aws.String(f.ddbURL)
	})
	ls, err := streams.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: aws.String(f.table)})
	if err != nil || len(ls.Streams) != 1 {
		t.Fatalf("ListStreams = %v, %v", ls, err)
	}
	ds, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: ls.Streams[0].StreamArn})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.DynamoDBEventRecord
	for _, sh := range ds.StreamDescription.Shards {
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: ls.Streams[0].StreamArn, ShardId: sh.ShardId,
			ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		for iter, empty := it.ShardIterator, 0; iter != nil && empty < 2; {
			gr, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			if len(gr.Records) == 0 {
				empty++
			}
			for _, r := range gr.Records {
				img := map[string]events.DynamoDBAttributeValue{}
				for k, v := range r.Dynamodb.NewImage {
					switch v := v.(type) {
					case *streamtypes.AttributeValueMemberS:
						img[k] = events.NewStringAttribute(v.Value)
					case *streamtypes.AttributeValueMemberN:
						img[k] = events.NewNumberAttribute(v.Value)
					}
				}
				out = append(out, events.DynamoDBEventRecord{EventName: string(r.EventName), Change: events.DynamoDBStreamRecord{NewImage: img}})
			}
			iter = gr.NextShardIterator
		}
	}
	return out
}
