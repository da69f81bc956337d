package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestNewHandlerEnvironment(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	cases := []struct {
		name string
		env  map[string]string
		want string // "" = builds
	}{
		{"nothing set", map[string]string{}, "TABLE_NAME, SNS_TOPIC_ARN"},
		{"bad shard count", map[string]string{"TABLE_NAME": "certificates", "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t", "RENEW_SHARDS": "0"}, "RENEW_SHARDS"},
		{"complete", map[string]string{"TABLE_NAME": "certificates", "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TABLE_NAME", "SNS_TOPIC_ARN", "RENEW_SHARDS"} {
				t.Setenv(k, tc.env[k])
			}
			h, err := newHandler(context.Background())
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("newHandler() error = %v, want it to name %q", err, tc.want)
				}
				return
			}
			if err != nil || h == nil {
				t.Fatalf("newHandler() = %v, want a handler", err)
			}
			// Records that need nothing (a scheduled item, a removal, the issuance counter) cost no call.
			res, err := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
				{EventName: "REMOVE"},
				{EventName: "INSERT", Change: events.DynamoDBStreamRecord{NewImage: map[string]events.DynamoDBAttributeValue{
					"hostID": events.NewStringAttribute("i-0123456789abcdef0"), "renewAt": events.NewStringAttribute("2026-12-01T03:15:00Z"),
					"renewShard": events.NewNumberAttribute("3")}}},
				{EventName: "MODIFY", Change: events.DynamoDBStreamRecord{NewImage: map[string]events.DynamoDBAttributeValue{
					"hostID": events.NewStringAttribute("#pca-issued"), "issued": events.NewNumberAttribute("7")}}},
			}})
			if err != nil || res.Normalized+res.Invalid != 0 {
				t.Errorf("Handle() = %+v, %v; want nothing done", res, err)
			}
		})
	}
}
