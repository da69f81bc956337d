package awsfake

import (
	"encoding/xml"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const snsXMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"

// SNSMessage is a message accepted by Publish.
type SNSMessage struct {
	TopicArn   string // TopicArn or TargetArn of the request
	Subject    string
	Message    string
	Attributes map[string]string // message attribute name → string value
}

// SNS is a fake Amazon SNS that records published messages.
type SNS struct {
	mu       sync.Mutex
	messages []SNSMessage
}

func newSNS() *SNS { return &SNS{} }

// Messages returns the published messages, oldest first.
func (f *SNS) Messages() []SNSMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.messages)
	for i := range out {
		out[i].Attributes = maps.Clone(out[i].Attributes)
	}
	return out
}

var snsTopicARNRE = regexp.MustCompile(`^arn:aws:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

// maxSNSMessage is the largest message SNS accepts (256 KiB).
const maxSNSMessage = 256 * 1024

func snsInvalid(format string, args ...any) *apiError {
	return errorf(400, "InvalidParameter", "Invalid parameter: "+format, args...)
}

func (f *SNS) serve(w http.ResponseWriter, r *http.Request, op string) *apiError {
	if op != "Publish" {
		return errorf(400, "InvalidAction", "awsfake: sns action %s is not implemented", op)
	}
	form := r.PostForm
	topic := form.Get("TopicArn")
	if topic == "" {
		topic = form.Get("TargetArn")
	}
	switch {
	case topic == "" && form.Get("PhoneNumber") == "":
		return snsInvalid("TopicArn or TargetArn Reason: no value for required parameter")
	case topic != "" && !snsTopicARNRE.MatchString(topic):
		return snsInvalid("TopicArn Reason: %q is not a topic ARN", topic)
	}
	msg := form.Get("Message")
	if msg == "" {
		return snsInvalid("Empty message")
	}
	if len(msg) > maxSNSMessage {
		return snsInvalid("Message too long")
	}
	subject := form.Get("Subject")
	if len(subject) > 100 || strings.ContainsAny(subject, "\r\n") {
		return snsInvalid("Subject")
	}
	if strings.HasSuffix(topic, ".fifo") && form.Get("MessageGroupId") == "" {
		return snsInvalid("The MessageGroupId parameter is required for FIFO topics")
	}
	attrs := map[string]string{}
	for i := 1; ; i++ {
		p := "MessageAttributes.entry." + strconv.Itoa(i) + "."
		name := form.Get(p + "Name")
		if name == "" {
			break
		}
		attrs[name] = form.Get(p + "Value.StringValue")
	}

	f.mu.Lock()
	f.messages = append(f.messages, SNSMessage{TopicArn: topic, Subject: subject, Message: msg, Attributes: attrs})
	f.mu.Unlock()

	type result struct {
		MessageID string `xml:"MessageId"`
	}
	type metadata struct {
		RequestID string `xml:"RequestId"`
	}
	type publishResponse struct {
		XMLName  xml.Name `xml:"PublishResponse"`
		Xmlns    string   `xml:"xmlns,attr"`
		Result   result   `xml:"PublishResult"`
		Metadata metadata `xml:"ResponseMetadata"`
	}
	writeXML(w, http.StatusOK, publishResponse{
		Xmlns: snsXMLNS, Result: result{MessageID: newUUID()}, Metadata: metadata{RequestID: newUUID()},
	})
	return nil
}
