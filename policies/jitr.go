package policies

import (
	"bytes"
	_ "embed"
)

//go:embed jitr-mr-policy.json
var jitrMultiRegion []byte

// JITRPolicyName is the name of the policy that just-in-time registration attaches to device certificates in every
// region of the multi-region stacks: the seed's name, which its notebooks and runbooks use.
const JITRPolicyName = "jitr-mr-policy"

// JITRMultiRegionPolicy returns a copy of the seed's jitr-mr-policy document with placeholders (see [Render]): a device
// connects with its thing name as client id and publishes, receives and subscribes on dt/<thing>/*, cmd/<thing>/* and
// its own shadow topics. The seed wrote "*" for region and account so that one document served every region; the
// stacks define it per region, so it names its own region and account instead.
func JITRMultiRegionPolicy() []byte {
	return bytes.Clone(jitrMultiRegion)
}
