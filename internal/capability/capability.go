// Package capability names the mark each capability leaves on what it creates in AWS IoT, so that an inventory
// (cmd/cert-report) can tell afterwards which capability made a certificate. AWS IoT certificates cannot be tagged
// (TagResource's resource types do not include cert:
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html), so the mark goes on the thing
// a capability attaches to its certificate, as a thing attribute, which DescribeThing reads back.
package capability

// ThingAttribute is the thing attribute a capability sets on the things it creates; its value is one of the
// capability letters below. The name fits AWS IoT's attribute-name pattern [a-zA-Z0-9_.,@/:#-]+.
const ThingAttribute = "iotcert_capability"

// The capability letters, as the README names them.
const (
	CrossAccount = "A" // cross-account signing of a partner's CSR
	ThingStack   = "B" // per-thing stack
	Vending      = "C" // certificate vending API
	MultiRegion  = "D" // multi-region JITR with a private CA
	Rotation     = "E" // host certificate rotation (IAM Roles Anywhere; not AWS IoT certificates)
	DeviceRotate = "F" // device-certificate rotation over AWS IoT Jobs
)

// Names maps each capability letter to a short name for reports.
var Names = map[string]string{
	CrossAccount: "cross-account",
	ThingStack:   "thing-stack",
	Vending:      "vending",
	MultiRegion:  "multi-region-jitr",
	Rotation:     "host-rotation",
	DeviceRotate: "device-rotation",
}

// Known reports whether v is a capability letter.
func Known(v string) bool {
	_, ok := Names[v]
	return ok
}
