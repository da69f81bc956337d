package policies

import (
	_ "embed"
	"errors"
)

//go:embed vending-device.json
var vendingDevice []byte

// VendingDevicePolicy returns the policy the vending API attaches to the certificates it issues, rendered for
// partition, region and account (see [Render]). It is the seed's sample policy (telemetry tlm/*/<thing>/d2c, commands
// cmd/*/<thing>/d2c up and cmd/*/<thing>/c2d down, the thing's own shadow and Device Defender topics, written with
// one wildcard each to stay within the 2048-character policy limit) with its defect fixed: the seed
// let a device subscribe to cmd/*/<thing>/c2d but never receive on it. Connect requires the certificate to be attached
// to the thing whose name is the client id.
func VendingDevicePolicy(partition, region, account string) (map[string]any, error) {
	v, err := render(vendingDevice, partition, region, account)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("policies: vending device policy is not a JSON object")
	}
	return m, nil
}
