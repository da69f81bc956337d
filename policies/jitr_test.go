package policies

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestJITRMultiRegionPolicy(t *testing.T) {
	doc := JITRMultiRegionPolicy()
	if _, err := Check(doc, CheckOptions{}); err != nil {
		t.Fatalf("Check(jitr-mr-policy.json) = %v, want no finding", err)
	}
	doc[0] = 'x' // a copy: the embedded document stays intact
	if bytes.Equal(doc, JITRMultiRegionPolicy()) {
		t.Fatal("JITRMultiRegionPolicy() returned the embedded slice, want a copy")
	}
	rendered, err := Render(JITRMultiRegionPolicy(), "aws", "us-west-2", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Statement []struct {
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal(rendered, &d); err != nil {
		t.Fatal(err)
	}
	// The seed's statements, in the seed's order, scoped to one region and account, with device rotation's topics (the
	// thing's own rotation and Jobs topics) added.
	want := [][2][]string{
		{{"iot:Connect"}, {"arn:aws:iot:us-west-2:123456789012:client/${iot:Connection.Thing.ThingName}"}},
		{{"iot:Publish", "iot:Receive"}, {
			"arn:aws:iot:us-west-2:123456789012:topic/dt/${iot:Connection.Thing.ThingName}/*",
			"arn:aws:iot:us-west-2:123456789012:topic/cmd/${iot:Connection.Thing.ThingName}/*",
			"arn:aws:iot:us-west-2:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
			"arn:aws:iot:us-west-2:123456789012:topic/iotcert/${iot:Connection.Thing.ThingName}/rotation/*",
			"arn:aws:iot:us-west-2:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"}},
		{{"iot:Subscribe"}, {
			"arn:aws:iot:us-west-2:123456789012:topicfilter/dt/${iot:Connection.Thing.ThingName}/*",
			"arn:aws:iot:us-west-2:123456789012:topicfilter/cmd/${iot:Connection.Thing.ThingName}/*",
			"arn:aws:iot:us-west-2:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
			"arn:aws:iot:us-west-2:123456789012:topicfilter/iotcert/${iot:Connection.Thing.ThingName}/rotation/*",
			"arn:aws:iot:us-west-2:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"}},
	}
	if len(d.Statement) != len(want) {
		t.Fatalf("Render(jitr-mr-policy) has %d statements, want %d", len(d.Statement), len(want))
	}
	for i, w := range want {
		got, _ := json.Marshal([2][]string{d.Statement[i].Action, d.Statement[i].Resource})
		exp, _ := json.Marshal(w)
		if !bytes.Equal(got, exp) {
			t.Errorf("statement %d = %s, want %s", i+1, got, exp)
		}
	}
}
