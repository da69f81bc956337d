package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iotcert/iotcert/internal/crossregion"
)

// Publisher publishes one message in this region (DataPlane in production).
type Publisher interface {
	Publish(ctx context.Context, in PublishInput) error
}

// Config is the function's configuration, read once from the environment (see main.go).
type Config struct {
	// Region the function publishes in.
	Region string
	// TopicFilter every republished topic must match.
	TopicFilter string
	// SourceTopicARN, when set, is the only SNS topic whose messages are accepted.
	SourceTopicARN string
	// Endpoint of the AWS IoT data plane.
	Endpoint string
}

// ConfigFromEnv reads Config through getenv; an invalid value is an error naming it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Region: getenv("AWS_REGION"), TopicFilter: getenv("TOPIC_FILTER"), SourceTopicARN: getenv("SOURCE_TOPIC_ARN"),
	}
	if c.Region == "" {
		return Config{}, errors.New("AWS_REGION is required")
	}
	if c.TopicFilter == "" {
		c.TopicFilter = crossregion.DefaultTopicFilter
	}
	if err := crossregion.CheckFilter(c.TopicFilter); err != nil {
		return Config{}, fmt.Errorf("TOPIC_FILTER: %w", err)
	}
	if strings.HasPrefix(c.TopicFilter, "$") || strings.HasPrefix(c.TopicFilter, "#") || strings.HasPrefix(c.TopicFilter, "+") {
		return Config{}, fmt.Errorf("TOPIC_FILTER %q is too wide: start it with a fixed level", c.TopicFilter)
	}
	if c.SourceTopicARN != "" && !strings.HasPrefix(c.SourceTopicARN, "arn:") {
		return Config{}, fmt.Errorf("SOURCE_TOPIC_ARN %q is not an ARN", c.SourceTopicARN)
	}
	c.Endpoint = getenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
	if c.Endpoint == "" {
		c.Endpoint = getenv("IOT_DATA_ENDPOINT")
	}
	if c.Endpoint == "" {
		domain := "amazonaws.com"
		if strings.HasPrefix(c.Region, "cn-") {
			domain = "amazonaws.com.cn"
		}
		c.Endpoint = "https://data-ats.iot." + c.Region + "." + domain
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Config{}, fmt.Errorf("iot data endpoint %q is not an http(s) URL", c.Endpoint)
	}
	return c, nil
}

// Result counts what one invocation did.
type Result struct {
	Republished int `json:"republished"`
	Dropped     int `json:"dropped"`
}

// Handler republishes the primary region's cross-region messages in this region.
//
// Each SNS record must hold a crossregion.Envelope from the configured topic, for a topic that matches the filter;
// its payload is published unchanged (QoS 1) on the same topic, with the user property crossregion.OriginProperty
// naming the region it came from. Envelopes of messages that were already republished, or that come from this
// region, are dropped and logged: that is the loop guard. A record that is not a valid envelope, or whose publish
// fails, fails the invocation, so Lambda retries it and then sends it to the on-failure destination.
type Handler struct {
	Data   Publisher
	Config Config
	Log    *slog.Logger // default: slog.Default()
}

// Handle republishes the messages of one SNS delivery.
func (h *Handler) Handle(ctx context.Context, ev events.SNSEvent) (Result, error) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	var (
		res  Result
		errs []error
	)
	for _, rec := range ev.Records {
		l := log.With("messageId", rec.SNS.MessageID)
		if h.Config.SourceTopicARN != "" && rec.SNS.TopicArn != h.Config.SourceTopicARN {
			errs = append(errs, fmt.Errorf("message %s: topic %q is not the cross-region topic", rec.SNS.MessageID, rec.SNS.TopicArn))
			continue
		}
		msg, err := crossregion.Decode(rec.SNS.Message, h.Config.TopicFilter)
		if err != nil {
			l.Error("message refused", "error", err.Error())
			errs = append(errs, fmt.Errorf("message %s: %w", rec.SNS.MessageID, err))
			continue
		}
		l = l.With("topic", msg.Topic, "originRegion", msg.OriginRegion)
		if msg.Forwarded {
			l.Info("message dropped: it was republished from another region already")
			res.Dropped++
			continue
		}
		if msg.OriginRegion == h.Config.Region {
			l.Warn("message dropped: it comes from this region")
			res.Dropped++
			continue
		}
		if err := h.Data.Publish(ctx, PublishInput{
			Topic: msg.Topic, Payload: msg.Payload, QoS: 1,
			UserProperties: [][2]string{{crossregion.OriginProperty, msg.OriginRegion}},
		}); err != nil {
			errs = append(errs, fmt.Errorf("message %s: republish on %q: %w", rec.SNS.MessageID, msg.Topic, err))
			continue
		}
		l.Info("message republished", "bytes", len(msg.Payload))
		res.Republished++
	}
	return res, errors.Join(errs...)
}
