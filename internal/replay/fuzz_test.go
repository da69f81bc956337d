package replay_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/replay"
)

// FuzzParseRecord: no input panics the parser, and what it accepts names only entities AWS IoT's rules allow and an
// eventId that can name an execution.
func FuzzParseRecord(f *testing.F) {
	for _, seed := range []string{
		`{"NewImage":{"eventType":{"S":"THING_EVENT"},"eventId":{"S":"e1"},"timestamp":{"N":"1"},"operation":{"S":"CREATED"},"thingName":{"S":"t1"},"versionNumber":{"N":"1"},"attributes":{"M":{"a":{"S":"1"}}}}}`,
		`{"NewImage":{"eventType":{"S":"THING_GROUP_HIERARCHY_EVENT"},"eventId":{"S":"e2"},"timestamp":{"N":"2"},"operation":{"S":"ADDED"},"thingGroup":{"M":{"name":{"S":"p"}}},"childGroup":{"M":{"name":{"S":"c"}}}}}`,
		`{"NewImage":{"eventType":{"S":"THING_GROUP_MEMBERSHIP_EVENT"},"eventId":{"S":"e3"},"timestamp":{"N":"3"},"operation":{"S":"ADDED"},"groupArn":{"S":"arn:aws:iot:us-west-2:123456789012:thinggroup/g"},"thingArn":{"S":"arn:aws:iot:us-west-2:123456789012:thing/t"}}}`,
		`{"NewImage":{"eventType":{"S":"THING_TYPE_EVENT"},"eventId":{"S":"e4"},"timestamp":{"N":"1e3"},"operation":{"S":"UPDATED"},"thingTypeName":{"S":"x"},"isDeprecated":{"BOOL":true},"searchableAttributes":{"L":[{"S":"a"}]}}}`,
		`{"NewImage":{"attributes":{"M":{"a":{"M":{"b":{"L":[{"NULL":true}]}}}}}}}`,
	} {
		f.Add([]byte(seed))
	}
	name := regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec replay.Record
		if json.Unmarshal(data, &rec) != nil {
			return
		}
		ev, err := replay.ParseRecord(rec)
		if err != nil {
			if !replay.IsInvalid(err) {
				t.Fatalf("ParseRecord error %v is not an invalid-event error", err)
			}
			return
		}
		if !replay.ValidEventID(ev.ID) || ev.Entity() == "" {
			t.Fatalf("accepted %+v with id %q, entity %q", ev, ev.ID, ev.Entity())
		}
		for _, n := range []string{ev.ThingName, ev.ThingTypeName, ev.GroupName, ev.ParentName, ev.ChildName} {
			if n != "" && !name.MatchString(n) {
				t.Fatalf("accepted name %q", n)
			}
		}
		for k, v := range ev.Attributes {
			if strings.ContainsAny(k+v, "\"'\\ ;\n") {
				t.Fatalf("accepted attribute %q=%q", k, v)
			}
		}
	})
}
