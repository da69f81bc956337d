package policies

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestVendingDevicePolicy(t *testing.T) {
	if _, err := Check(vendingDevice, CheckOptions{}); err != nil {
		t.Fatalf("Check(vending-device.json) = %v, want no finding", err)
	}
	doc, err := VendingDevicePolicy("aws", "us-east-1", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	text := string(b)
	// The seed's defect: Subscribe on cmd/*/<thing>/c2d without Receive on it.
	if !strings.Contains(text, `"Action":"iot:Receive","Effect":"Allow","Resource":["arn:aws:iot:us-east-1:123456789012:topic/cmd/*/${iot:Connection.Thing.ThingName}/c2d"`) {
		t.Errorf("VendingDevicePolicy() lacks Receive on cmd/*/<thing>/c2d: %s", text)
	}
	if strings.Contains(text, "${AWS::") {
		t.Errorf("VendingDevicePolicy() left a placeholder: %s", text)
	}
}
