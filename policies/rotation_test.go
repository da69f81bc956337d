package policies

import (
	"encoding/json"
	"strings"
	"testing"
)

// Device rotation (capability F): the device policies of B, C and D let a device use its own rotation topics and its
// own Jobs topics, and nothing of another thing's. Asked by matching the rendered documents the way AWS IoT does
// (policy variables replaced by the connection's thing name, '*' matching any characters).
func TestRotationTopics(t *testing.T) {
	docs := map[string][]byte{"thing-default": DefaultThingPolicy(), "vending-device": vendingDevice, "jitr-mr-policy": JITRMultiRegionPolicy()}
	const arn = "arn:aws:iot:eu-west-1:123456789012:"
	own := []struct{ action, resource string }{
		{"iot:Publish", "topic/iotcert/T1/rotation/csr"},
		{"iot:Publish", "topic/iotcert/T1/rotation/confirm"},
		{"iot:Publish", "topic/$aws/things/T1/jobs/start-next"},
		{"iot:Publish", "topic/$aws/things/T1/jobs/iotcert-rotate-thing-1/update"},
		{"iot:Subscribe", "topicfilter/iotcert/T1/rotation/certificate"},
		{"iot:Subscribe", "topicfilter/$aws/things/T1/jobs/notify-next"},
		{"iot:Subscribe", "topicfilter/$aws/things/T1/jobs/start-next/accepted"},
		{"iot:Subscribe", "topicfilter/$aws/things/T1/jobs/+/update/accepted"},
		{"iot:Receive", "topic/iotcert/T1/rotation/certificate"},
		{"iot:Receive", "topic/$aws/things/T1/jobs/notify-next"},
		{"iot:Receive", "topic/$aws/things/T1/jobs/iotcert-rotate-thing-1/update/accepted"},
	}
	for name, raw := range docs {
		rendered, err := Render(raw, "aws", "eu-west-1", "123456789012")
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Statement []struct {
				Effect   string
				Action   any
				Resource any
			}
		}
		if err := json.Unmarshal(rendered, &d); err != nil {
			t.Fatal(err)
		}
		allowed := func(thing, action, resource string) bool {
			for _, st := range d.Statement {
				if st.Effect != "Allow" || !anyMatch(st.Action, action, "") {
					continue
				}
				if anyMatch(st.Resource, arn+resource, thing) {
					return true
				}
			}
			return false
		}
		for _, o := range own {
			if !allowed("T1", o.action, o.resource) {
				t.Errorf("%s: thing T1 may not %s %s", name, o.action, o.resource)
			}
			// Another thing's connection may do none of it.
			if allowed("T2", o.action, o.resource) {
				t.Errorf("%s: thing T2 may %s %s (T1's)", name, o.action, o.resource)
			}
		}
		for _, bad := range []string{"topic/iotcert/T1/other", "topic/$aws/things/T1/shadowx", "topic/$aws/events/jobExecution/j/succeeded"} {
			if allowed("T1", "iot:Publish", bad) {
				t.Errorf("%s: thing T1 may publish %s", name, bad)
			}
		}
	}
}

// anyMatch reports whether one of the patterns (a string or a list) matches s, with the thing-name variable
// replaced by thing.
func anyMatch(patterns any, s, thing string) bool {
	var list []string
	switch v := patterns.(type) {
	case string:
		list = []string{v}
	case []any:
		for _, e := range v {
			if p, ok := e.(string); ok {
				list = append(list, p)
			}
		}
	}
	for _, p := range list {
		p = strings.ReplaceAll(p, "${iot:Connection.Thing.ThingName}", thing)
		if globMatch(p, s) {
			return true
		}
	}
	return false
}
