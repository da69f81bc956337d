package selection

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Stack names and defaults that the stacks package uses too. They are repeated here, in pure Go, so that the app can
// name the stacks of a selection (for `make ls`, for a mistyped stack name, for the cost note) before jsii starts;
// main.go compares this list with the stacks it defined on every synth, so the two cannot drift apart unnoticed.
const (
	CrossAccountStackName = "certificate-based-stack"
	DefaultFleetName      = "thing-fleet"
	DefaultVendingEnv     = "dev"
	DefaultPrimaryRegion  = "us-west-2"
	DefaultReplicaRegion  = "us-east-1"
)

// Prices (USD, us-east-1 list prices) of the resources that cost a fixed amount a month whether or not they are used.
// Sources: https://aws.amazon.com/private-ca/pricing/, https://aws.amazon.com/secrets-manager/pricing/,
// https://aws.amazon.com/kms/pricing/.
const (
	PriceCAGeneralPurpose = 400.0
	PriceCAShortLived     = 50.0
	PriceSecret           = 0.40
	PriceKMSKey           = 1.0
	PricingCA             = "https://aws.amazon.com/private-ca/pricing/"
)

// Stack is one stack a selection defines, with what it costs and what a destroy leaves behind.
type Stack struct {
	Name string
	// Monthly is the fixed monthly cost in USD: what the stack costs while it exists, with no traffic at all.
	Monthly float64
	// Cost says what Monthly is made of, e.g. "general-purpose Private CA USD 400".
	Cost string
	// PrivateCA is "general-purpose" or "short-lived" when the stack holds an AWS Private CA.
	PrivateCA string
	// Leaves says what `cdk destroy` leaves behind, "" when nothing.
	Leaves string
	// Needs are the stacks this one depends on: `cdk deploy` of this stack deploys them too.
	Needs []string
}

// PlatformStack is one capability among the platform stacks: the keys it reads and the stacks it defines. Adding a
// platform stack to the app (stacks/platform.go) is adding an entry here: main.go refuses a synth whose stacks differ
// from this list.
type PlatformStack struct {
	Capability string
	// Pattern names its stacks in messages, e.g. "CertVending-<env>".
	Pattern string
	// Keys are the context keys only this capability reads; a typed one is refused when none of its stacks is asked
	// for. A ForPlatform key listed by no entry is judged for the platform as a whole.
	Keys []string
	// Stacks lists its stacks for a context (already checked by Judge).
	Stacks func(ctx Lookup) []Stack
}

// PlatformStacks are the platform's capabilities, in the order `make ls` shows them.
var PlatformStacks = []PlatformStack{
	{"C. certificate vending", "CertVending-<env>", []string{"prefix", "environments"}, vendingStacks},
	{"D. multi-region", "IotMultiRegion-*", []string{"primary_region", "replica_regions", "ca_certificate_file", "provisioning",
		"jitr_thing_name_pattern", "jitr_policy_file", "ca_subject", "ca_key_algorithm", "ca_validity_years", "replication_ttl_hours"}, multiRegionStacks},
	{"E. rotation", "CertRotation[-<rotation_name>]", []string{"rotation_name", "SigningAlgorithm", "KeyAlgorithm", "CACountry", "OrgName",
		"CACommonName", "CACertValidity", "SNSSubscriberEmail", "CertPath", "CACertPath", "KeyPath", "AWSSigningHelperPath",
		"rotation_ca_mode", "rotation_validity_days", "rotation_renew_percent", "rotation_host_key_algorithm", "rotation_session_seconds",
		"rotation_max_concurrency", "rotation_renew_shards", "pca_certificate_quota"}, rotationStacks},
	{"F. device rotation", "IotDeviceRotation", []string{"device_rotation_rollout_per_minute", "device_rotation_abort_percent",
		"device_rotation_abort_min_executed", "device_rotation_timeout_minutes", "device_rotation_grace_days"}, deviceRotationStacks},
	// Last: the operations stacks watch the stacks above, one per region they run in.
	{"Operations", "IotCertOps[-<region>]", []string{"ops_capabilities", "ops_alarm_email"}, opsStacks},
}

// DeviceRotationStackName is capability F's stack (stacks.DeviceRotationStackName); it runs in the primary region and
// signs with the primary's Private CA.
const DeviceRotationStackName = "IotDeviceRotation"

func deviceRotationStacks(ctx Lookup) []Stack {
	return []Stack{{Name: DeviceRotationStackName, Monthly: PriceKMSKey, Needs: []string{"IotMultiRegion-Primary"},
		Cost:   fmt.Sprintf("one KMS key (rotation table) USD %.0f; it signs with the primary's Private CA", PriceKMSKey),
		Leaves: fmt.Sprintf("the rotation table and its KMS key (USD %.0f a month until you schedule its deletion)", PriceKMSKey)}}
}

// opsStacks mirrors stacks.NewOpsStacks: one operations stack per region group of the platform stacks, IotCertOps for
// the environment-agnostic ones (C, E) and IotCertOps-<region> for the primary region (D, F) and each replica (D);
// ops_capabilities leaves out the groups that run none of the capabilities it names.
func opsStacks(ctx Lookup) []Stack {
	primary := DefaultPrimaryRegion
	if v, ok := ctx("primary_region"); ok && strings.TrimSpace(v) != "" {
		primary = strings.TrimSpace(v)
	}
	groups := map[string][]string{"": {"C", "E"}, primary: {"D", "F"}}
	for _, r := range ReplicaRegions(ctx) {
		groups[r] = []string{"D"}
	}
	regions := make([]string, 0, len(groups))
	for r := range groups {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	wanted := map[string]bool{}
	if v, ok := ctx("ops_capabilities"); ok {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				wanted[c] = true
			}
		}
	}
	var out []Stack
	plainTaken := false
	for _, r := range regions {
		watched := len(wanted) == 0
		platform := false
		for _, c := range groups[r] {
			watched = watched || wanted[c]
			platform = platform || c != "D"
		}
		if !watched && (r != "" || !(wanted["A"] || wanted["B"])) {
			continue
		}
		name := "IotCertOps"
		if !platform || plainTaken {
			name += "-" + r
		}
		plainTaken = plainTaken || name == "IotCertOps"
		out = append(out, Stack{Name: name, Monthly: PriceKMSKey,
			Cost: fmt.Sprintf("one KMS key USD %.0f; its dashboard, alarms and the Device Defender audit at CloudWatch's and "+
				"Device Defender's prices", PriceKMSKey)})
	}
	return out
}

// VendingEnvNames lists the vending environments of the environments context as the app reads it: absent means dev,
// a string lists names, an object maps names to settings (a null value skips the environment). Sorted.
func VendingEnvNames(raw interface{}) []string {
	var names []string
	switch v := raw.(type) {
	case nil:
		names = []string{DefaultVendingEnv}
	case string:
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	case map[string]interface{}:
		for n, s := range v {
			if s != nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}

func vendingStacks(ctx Lookup) []Stack {
	var out []Stack
	for _, env := range envNames(ctx) {
		out = append(out, Stack{
			Name: "CertVending-" + env, Monthly: PriceSecret, Cost: fmt.Sprintf("one Secrets Manager secret (device tokens) USD %.2f", PriceSecret),
			Leaves: "the registrations table and the registry-event archive bucket (storage); the thing type CvmGenericType and the " +
				"IoT policy multa_backend_policy_" + env + " (no charge, but fixed names: see Uninstall)",
		})
	}
	return out
}

// envNames reads the environments context through ctx, where an object arrives as JSON text (see RawLookup).
func envNames(ctx Lookup) []string {
	v, ok := ctx(KeyEnvironments)
	if !ok {
		return VendingEnvNames(nil)
	}
	if raw, ok := decodeJSONObject(v); ok {
		return VendingEnvNames(raw)
	}
	return VendingEnvNames(v)
}

// KeyEnvironments is the vending environments key.
const KeyEnvironments = "environments"

func multiRegionStacks(ctx Lookup) []Stack {
	primary := Stack{Name: "IotMultiRegion-Primary"}
	if f, ok := ctx("ca_certificate_file"); ok && strings.TrimSpace(f) != "" {
		primary.Cost = "none fixed (the operator's CA)"
	} else {
		primary.Monthly, primary.PrivateCA = PriceCAGeneralPurpose, "general-purpose"
		primary.Cost = fmt.Sprintf("general-purpose Private CA USD %.0f", PriceCAGeneralPurpose)
		primary.Leaves = fmt.Sprintf("the Private CA, still USD %.0f a month until you delete it, and its CRL bucket; ", PriceCAGeneralPurpose)
	}
	primary.Leaves += "the IoT policy jitr-mr-policy (fixed name: see Uninstall)"
	out := []Stack{primary}
	for _, r := range ReplicaRegions(ctx) {
		out = append(out, Stack{Name: "IotMultiRegion-Replica-" + r, Monthly: PriceKMSKey, Needs: []string{primary.Name},
			Cost:   fmt.Sprintf("one KMS key (replay versions table) USD %.0f", PriceKMSKey),
			Leaves: "the IoT policy jitr-mr-policy in " + r + " (fixed name: see Uninstall)"})
	}
	return out
}

// ReplicaRegions returns the replica regions of the context (default us-east-1).
func ReplicaRegions(ctx Lookup) []string {
	v, ok := ctx("replica_regions")
	if !ok {
		return []string{DefaultReplicaRegion}
	}
	var out []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func rotationStacks(ctx Lookup) []Stack {
	name := "CertRotation"
	if n, ok := ctx("rotation_name"); ok && strings.TrimSpace(n) != "" {
		name += "-" + strings.TrimSpace(n)
	}
	s := Stack{Name: name, PrivateCA: "short-lived", Monthly: PriceCAShortLived + PriceKMSKey}
	if m, _ := ctx("rotation_ca_mode"); strings.TrimSpace(m) == "general_purpose" {
		s.PrivateCA, s.Monthly = "general-purpose", PriceCAGeneralPurpose+PriceKMSKey
	}
	s.Cost = fmt.Sprintf("%s Private CA USD %.0f, one KMS key USD %.0f", s.PrivateCA, s.Monthly-PriceKMSKey, PriceKMSKey)
	s.Leaves = fmt.Sprintf("the KMS key (USD %.0f a month until you schedule its deletion), the certificates table (fixed name "+
		"certificates%s: see Uninstall) and the CRL bucket", PriceKMSKey, strings.TrimPrefix(name, "CertRotation"))
	return s.list()
}

func (s Stack) list() []Stack { return []Stack{s} }

// Stacks lists the stacks a selection defines, with their fixed costs. readFile reads thing_names_file; ctx must
// already have been judged (Judge), so the values are valid. A fleet whose size is not known yet (the file cannot be
// read) lists one stack per fleet_stacks.
func Stacks(sel Selection, ctx Lookup, readFile func(string) ([]byte, error)) []Stack {
	switch sel.Kind {
	case CrossAccount:
		name := CrossAccountStackName
		if p, ok := ctx("producer"); ok && strings.TrimSpace(p) != "" {
			name += "-" + strings.TrimSpace(p)
		}
		return []Stack{{Name: name, Cost: "none fixed (one certificate, a function run once per deploy)"}}
	case Thing:
		name := sel.ThingName
		if n, ok := ctx("stack_name"); ok && strings.TrimSpace(n) != "" {
			name = strings.TrimSpace(n)
		}
		return []Stack{thingStack(name, 1)}
	case Fleet:
		names := sel.ThingNames
		if sel.ThingNamesFile != "" && readFile != nil {
			if data, err := readFile(sel.ThingNamesFile); err == nil {
				names, _ = SplitNames(string(data))
			}
		}
		fleet := DefaultFleetName
		if f, ok := ctx("fleet_name"); ok && strings.TrimSpace(f) != "" {
			fleet = strings.TrimSpace(f)
		}
		n := 1
		if v, ok := ctx("fleet_stacks"); ok {
			if k, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && k > 0 {
				n = k
			}
		}
		var out []Stack
		for i := 1; i <= n; i++ {
			// Things spread over the stacks by hash: the cost per stack is shown as the fleet's average.
			out = append(out, thingStack(fmt.Sprintf("%s-%d", fleet, i), float64(len(names))/float64(n)))
		}
		return out
	}
	var out []Stack
	for _, p := range PlatformStacks {
		out = append(out, p.Stacks(ctx)...)
	}
	return out
}

func thingStack(name string, things float64) Stack {
	return Stack{Name: name, Monthly: PriceKMSKey + things*PriceSecret,
		Cost: fmt.Sprintf("one KMS key USD %.0f and one Secrets Manager secret per thing USD %.2f (things: %s)", PriceKMSKey, PriceSecret,
			strconv.FormatFloat(things, 'f', -1, 64)),
		Leaves: "nothing that costs: the key is scheduled for deletion (7 days), the secrets are deleted"}
}

// PlatformStackOf returns the platform capability that defines a stack name, and whether one does.
func PlatformStackOf(name string, ctx Lookup) (PlatformStack, bool) {
	for _, p := range PlatformStacks {
		for _, s := range p.Stacks(ctx) {
			if s.Name == name {
				return p, true
			}
		}
	}
	return PlatformStack{}, false
}

// MatchStacks returns the stacks of defined that a CLI stack pattern selects: an exact name, or a glob as the CDK CLI
// accepts (`*`, `?`), also against a stage path's last element.
func MatchStacks(pattern string, defined []Stack) []Stack {
	var out []Stack
	for _, s := range defined {
		if ok, _ := path.Match(pattern, s.Name); ok || pattern == s.Name {
			out = append(out, s)
		}
	}
	return out
}

// decodeJSONObject reads a context value that arrived as a JSON object (RawLookup renders objects so).
func decodeJSONObject(v string) (map[string]interface{}, bool) {
	if !strings.HasPrefix(strings.TrimSpace(v), "{") {
		return nil, false
	}
	var m map[string]interface{}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, false
	}
	return m, true
}
