// Package crossregion is the contract between the primary region's topic rule that sends cross-region messages to
// the SNS topic IoTCrossRegion and the function in each replica region that republishes them: the rule's SQL, the
// envelope it produces, and the loop guard.
//
// MQTT messages carry their topic outside the payload, and an SNS action sends only the rule's output, so the rule
// wraps each message in an Envelope: the topic, the payload in base64 (any bytes survive), the region it was sent
// in, and the OriginProperty user property if the message was itself a republished one. The republishing function
// sets OriginProperty on everything it publishes and drops every envelope that carries it, or that comes from its own
// region: a message crosses regions once, even if a rule in a replica region forwards the same topics.
package crossregion

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// DefaultTopicFilter is the seed's cross-region topic filter.
const DefaultTopicFilter = "cmd/+/cross/region"

// OriginProperty is the MQTT 5 user property that marks a republished message with the region it came from.
const OriginProperty = "iotcert-origin-region"

// MaxPayload is the largest payload the AWS IoT data plane publishes (128 KB).
const MaxPayload = 128 * 1024

// RuleSQL is the SQL of the topic rule (in region originRegion, e.g. a CDK token for the stack's region) that sends
// messages on topicFilter to SNS as Envelopes. Use the SNS action's RAW message format.
func RuleSQL(topicFilter, originRegion string) string {
	return fmt.Sprintf("SELECT topic() AS topic, encode(*, 'base64') AS payload, '%s' AS originRegion, "+
		"get_user_property('%s') AS forwardedFrom FROM '%s'", originRegion, OriginProperty, topicFilter)
}

// Envelope is one message as the rule sends it.
type Envelope struct {
	Topic        string `json:"topic"`
	Payload      string `json:"payload"` // base64
	OriginRegion string `json:"originRegion"`
	// ForwardedFrom holds the values of OriginProperty on the original message: a string, an array of strings, or
	// absent.
	ForwardedFrom json.RawMessage `json:"forwardedFrom,omitempty"`
}

// Forwarded reports whether the message was already republished by a cross-region function.
func (e Envelope) Forwarded() bool {
	v := strings.TrimSpace(string(e.ForwardedFrom))
	switch v {
	case "", "null", `""`, "[]":
		return false
	}
	return true
}

// Message is an Envelope decoded and checked.
type Message struct {
	Topic        string
	Payload      []byte
	OriginRegion string
	Forwarded    bool
}

// Decode reads an SNS message body as an Envelope and checks it: the topic must match topicFilter and hold no
// wildcards, the payload must be base64 of at most MaxPayload bytes, and the origin region must be named.
func Decode(body, topicFilter string) (Message, error) {
	var e Envelope
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return Message{}, fmt.Errorf("message is not a cross-region envelope: %w", err)
	}
	if err := CheckTopic(e.Topic, topicFilter); err != nil {
		return Message{}, err
	}
	if !regionRE(e.OriginRegion) {
		return Message{}, fmt.Errorf("originRegion %q is not a region name", e.OriginRegion)
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return Message{}, fmt.Errorf("payload of topic %q is not base64: %w", e.Topic, err)
	}
	if len(payload) > MaxPayload {
		return Message{}, fmt.Errorf("payload of topic %q is %d bytes, over %d", e.Topic, len(payload), MaxPayload)
	}
	return Message{Topic: e.Topic, Payload: payload, OriginRegion: e.OriginRegion, Forwarded: e.Forwarded()}, nil
}

// CheckTopic reports whether topic is a concrete topic (no wildcards, no empty or reserved start) that matches the
// MQTT topic filter.
func CheckTopic(topic, filter string) error {
	if topic == "" || len(topic) > 256 || !utf8.ValidString(topic) || strings.ContainsAny(topic, "+#\x00") {
		return fmt.Errorf("topic %q is not a publishable topic", topic)
	}
	if strings.HasPrefix(topic, "$") {
		return fmt.Errorf("topic %q is reserved", topic)
	}
	if !Match(filter, topic) {
		return fmt.Errorf("topic %q does not match %q", topic, filter)
	}
	return nil
}

// Match reports whether an MQTT topic filter (with + and # wildcards) matches topic.
func Match(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return i == len(fs)-1
		}
		if i >= len(ts) {
			return false
		}
		if f != "+" && f != ts[i] {
			return false
		}
	}
	return len(fs) == len(ts)
}

// CheckFilter validates an MQTT topic filter.
func CheckFilter(filter string) error {
	if filter == "" {
		return errors.New("topic filter must not be empty")
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("topic filter %q: # must be the last level", filter)
		case l != "+" && l != "#" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("topic filter %q: a wildcard must fill a whole level", filter)
		}
	}
	return nil
}

// regionRE reports whether s looks like an AWS region name (e.g. us-east-1, us-gov-west-1).
func regionRE(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(s) > 32 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
				return false
			}
		}
	}
	last := parts[len(parts)-1]
	return last[0] >= '0' && last[0] <= '9'
}
