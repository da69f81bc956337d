package selection

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Applies is the set of selections a context key configures.
type Applies uint8

// The selections, as bits of Applies.
const (
	ForPlatform     = Applies(1 << Platform)
	ForCrossAccount = Applies(1 << CrossAccount)
	ForThing        = Applies(1 << Thing)
	ForFleet        = Applies(1 << Fleet)
	ForThings       = ForThing | ForFleet
	ForAll          = ForPlatform | ForCrossAccount | ForThings
)

// Key is one context key the app reads.
type Key struct {
	Name string
	For  Applies
	Doc  string
}

// Keys is every context key the app reads: adding a key to a stack is adding one line here (a test fails otherwise).
var Keys = []Key{
	// What every selection reads.
	{"nag", ForAll, "false turns the cdk-nag AwsSolutions and Serverless checks off"},
	// A: the cross-account stack.
	{KeyCSRFile, ForCrossAccount, "the partner's PEM CSR to sign (selects the cross-account stack)"},
	{KeyDesiredTopic, ForCrossAccount, "a topic to make a producer key and CSR for (selects the cross-account stack)"},
	{KeyDestroy, ForCrossAccount, "any value: the cross-account stack without a CSR, for cdk destroy"},
	{"producer", ForCrossAccount, "names the stack certificate-based-stack-<producer> and suffixes its exports"},
	{"validity_days", ForCrossAccount, "certificate validity in days (default 365)"},
	{"activate", ForCrossAccount, "true registers the certificate ACTIVE (skips the approval gate)"},
	{"mqtt_client_id", ForCrossAccount, "adds iot:Connect for this one MQTT client id"},
	{"allow_topic_wildcard", ForCrossAccount, "lets a topic with MQTT wildcards through"},
	// B: per-thing stacks and fleets.
	{KeyThingName, ForThing, "the thing (and stack) name (selects the per-thing stack)"},
	{KeyThingNames, ForFleet, "comma-separated thing names (selects fleet stacks)"},
	{KeyThingNamesFile, ForFleet, "a file of thing names, one per line (selects fleet stacks)"},
	{"policy_file", ForThings, "a JSON IoT policy for the things"},
	{"region", ForThings, "the region of the thing stacks"},
	{"key_algorithm", ForThings, "EC_P256 (default) or RSA_2048"},
	{"allow_broad_policy", ForThings, "true lets a broad policy_file through (lab use only)"},
	{"role_arn", ForThings, "the sample's deploy role: no longer used (refused with the reason)"},
	{"stack_name", ForThing, "the per-thing stack's name when the thing name is not a valid stack name"},
	{"fleet_name", ForFleet, "the fleet stacks' name prefix (default thing-fleet)"},
	{"fleet_stacks", ForFleet, "the number of fleet stacks"},
	// C, D and E: the platform stacks.
	{"prefix", ForPlatform, "the vending SSM parameter prefix (default multa-cvm)"},
	{"environments", ForPlatform, "the vending environments and their settings"},
	{"primary_region", ForPlatform, "the multi-region primary region"},
	{"replica_regions", ForPlatform, "the multi-region replica regions"},
	{"ca_certificate_file", ForPlatform, "a CA certificate the operator brings (multi-region)"},
	{"provisioning", ForPlatform, "JITR or JITP (multi-region)"},
	{"jitr_thing_name_pattern", ForPlatform, "the pattern a JITR thing name must match"},
	{"jitr_policy_file", ForPlatform, "the IoT policy JITR attaches"},
	{"ca_subject", ForPlatform, "the multi-region Private CA's subject (default C=DE, O=AWS, OU=IoT, ST=Berlin, L=Berlin)"},
	{"ca_key_algorithm", ForPlatform, "the multi-region Private CA's key algorithm"},
	{"ca_validity_years", ForPlatform, "the multi-region Private CA certificate's validity in years"},
	{"replication_ttl_hours", ForPlatform, "how long registry events stay in the multi-region table"},
	{"rotation_name", ForPlatform, "the rotation stack's name"},
	{"SigningAlgorithm", ForPlatform, "the rotation CA's signing algorithm"},
	{"KeyAlgorithm", ForPlatform, "the rotation CA's key algorithm"},
	{"CACountry", ForPlatform, "the rotation CA's country"},
	{"OrgName", ForPlatform, "the rotation CA's organization"},
	{"CACommonName", ForPlatform, "the rotation CA's common name"},
	{"CACertValidity", ForPlatform, "the rotation CA certificate's validity"},
	{"SNSSubscriberEmail", ForPlatform, "the e-mail address rotation alerts go to"},
	{"CertPath", ForPlatform, "the host certificate directory when a host item names none (rotation)"},
	{"CACertPath", ForPlatform, "the host CA chain directory when a host item names none (rotation)"},
	{"KeyPath", ForPlatform, "the host key directory when a host item names none (rotation)"},
	{"AWSSigningHelperPath", ForPlatform, "the directory of aws_signing_helper on the hosts (rotation)"},
	{"rotation_ca_mode", ForPlatform, "short_lived (default) or general_purpose rotation CA"},
	{"rotation_validity_days", ForPlatform, "host certificate validity in days (default 7)"},
	{"rotation_renew_percent", ForPlatform, "renew at this share of a host certificate's lifetime (default 67)"},
	{"rotation_host_key_algorithm", ForPlatform, "RSA_2048 (default) or EC_prime256v1: the key each host makes"},
	{"rotation_session_seconds", ForPlatform, "the Roles Anywhere profile's session length (default 900)"},
	{"rotation_max_concurrency", ForPlatform, "hosts rotated at once (default 20)"},
	{"rotation_renew_shards", ForPlatform, "partitions of the renewAt index (default 16)"},
	{"pca_certificate_quota", ForPlatform, "the rotation CA's lifetime certificate quota, for the 80 % alarm (default 1000000)"},
	{"rotation_host_roles", ForPlatform, "IAM role ARNs (comma-separated) the rotation profile vends besides its test role"},
	{"rotation_host_policies", ForPlatform, "managed policy ARNs (comma-separated) of a host role the rotation profile vends"},
	{"CSRPath", ForPlatform, "the rotation sample's CSR directory: refused with what replaced it (hosts never write their CSR)"},
	{"basic_ingest_rules", ForCrossAccount, "comma-separated rules a partner's Basic Ingest topic ($aws/rules/<rule>/...) may name (default: none)"},
	{"ops_capabilities", ForPlatform, "the capabilities the operations stacks watch, e.g. C,E (default: every platform capability)"},
	{"ops_alarm_email", ForPlatform, "an e-mail address subscribed to the operations alarm topic"},
	// F: device-certificate rotation.
	{"device_rotation_rollout_per_minute", ForPlatform, "rotation job executions started per minute (default 100, AWS IoT allows 1 to 1000)"},
	{"device_rotation_abort_percent", ForPlatform, "share of failed rotations in percent that cancels the job (default 10)"},
	{"device_rotation_abort_min_executed", ForPlatform, "rotations executed before the abort share applies (default 20)"},
	{"device_rotation_timeout_minutes", ForPlatform, "minutes a rotation may stay in progress (default 60, AWS IoT allows 1 to 10080)"},
	{"device_rotation_grace_days", ForPlatform, "days the old device certificate stays INACTIVE before it is revoked (default 7)"},
	{"certificate_generation", ForThings, "the certificates' generation: raising it issues new keys and certificates (device rotation)"},
	{"certificate_grace_days", ForThings, "days a certificate replaced by a new generation stays ACTIVE (default 7)"},
}

// LookupKey returns the registered key of that name.
func LookupKey(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// IsCDKKey reports whether a context key belongs to the CDK itself: feature flags (@aws-cdk/…), the CLI's settings
// (aws:cdk:…), cached lookups (availability-zones:…, ssm:…) and the CLI's own keys.
func IsCDKKey(name string) bool {
	switch name {
	case "acknowledged-issue-numbers", "cli-telemetry", "cdk-version":
		return true
	}
	return strings.HasPrefix(name, "@") || strings.Contains(name, ":")
}

// CheckUnknown refuses every typed key the app does not know, each with the closest known key, in one line. main
// runs it before Select, since a typo can be what makes a selection fail.
func CheckUnknown(typed []string) error {
	sorted := append([]string(nil), typed...)
	sort.Strings(sorted)
	var unknown []string
	for _, name := range sorted {
		if _, ok := LookupKey(name); ok {
			continue
		}
		msg := fmt.Sprintf("%q is not a context key of this app", name)
		if s := Closest(name); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		unknown = append(unknown, msg)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("context: %s; the README lists the keys", strings.Join(unknown, "; "))
	}
	return nil
}

// CheckKeys judges the context keys a user typed (typed: every context key except the CDK's own and the standing
// configuration of cdk.json) against what the selection k defines. An unknown key is an error that suggests the closest
// known key; a known key that does not apply to k is an error too, so nothing typed is dropped without a word.
func CheckKeys(typed []string, k Kind) error {
	if err := CheckUnknown(typed); err != nil {
		return err
	}
	sorted := append([]string(nil), typed...)
	sort.Strings(sorted)
	var misplaced, hints []string
	for _, name := range sorted {
		if key, _ := LookupKey(name); key.For&Applies(1<<k) == 0 {
			misplaced = append(misplaced, fmt.Sprintf("%s applies to %s, not to %s", name, key.For, selectedBy(k)))
			if h := keyHints[name][k]; h != "" {
				hints = append(hints, h)
			}
		}
	}
	if len(misplaced) > 0 {
		msg := fmt.Sprintf("context %s: remove it", strings.Join(misplaced, "; "))
		if len(hints) > 0 {
			msg += "; " + strings.Join(hints, "; ")
		}
		return errors.New(msg)
	}
	return nil
}

// selectedBy says what defines a selection, for messages.
func selectedBy(k Kind) string {
	switch k {
	case CrossAccount:
		return "the cross-account stack selected here"
	case Thing:
		return "the per-thing stack selected here by " + KeyThingName
	case Fleet:
		return "the fleet stacks selected here"
	}
	return "the platform stacks selected here (no CSR_FILE, DESIRED_TOPIC, DESTROY or thing_name given)"
}

func (a Applies) String() string {
	if a == ForAll {
		return "every selection"
	}
	var parts []string
	if a&ForPlatform != 0 {
		parts = append(parts, "the platform stacks")
	}
	if a&ForCrossAccount != 0 {
		parts = append(parts, "the cross-account stack (CSR_FILE, DESIRED_TOPIC, DESTROY)")
	}
	switch a & ForThings {
	case ForThings:
		parts = append(parts, "per-thing and fleet stacks (thing_name, thing_names, thing_names_file)")
	case ForThing:
		parts = append(parts, "the per-thing stack (thing_name)")
	case ForFleet:
		parts = append(parts, "fleet stacks (thing_names, thing_names_file)")
	}
	return strings.Join(parts, " and ")
}

// StandingKeys returns the context keys kept as standing configuration: those of the project's cdk.json (in dir) and of
// the user's ~/.cdk.json. They configure whichever capability they belong to and are never an error when another one is
// selected. A missing file has no keys; one that is not JSON is an error.
func StandingKeys(dir, home string) (map[string]bool, error) {
	src, err := StandingSources(dir, home)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range src {
		keys[k] = true
	}
	return keys, nil
}

// StandingSources is StandingKeys with the file that holds each key: "cdk.json" or "~/.cdk.json" (the project's wins,
// as in the CDK CLI).
func StandingSources(dir, home string) (map[string]string, error) {
	keys := map[string]string{}
	paths := []string{filepath.Join(dir, "cdk.json")}
	names := []string{"cdk.json"}
	if home != "" {
		paths = append(paths, filepath.Join(home, ".cdk.json"))
		names = append(names, "~/.cdk.json")
	}
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var f struct {
			Context map[string]json.RawMessage `json:"context"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		for k := range f.Context {
			if keys[k] == "" {
				keys[k] = names[i]
			}
		}
	}
	return keys, nil
}

// TypedKeys returns the keys of all (every context key of the run) that the user typed: not the CDK's own, not
// standing configuration.
func TypedKeys(all []string, standing map[string]bool) []string {
	var out []string
	for _, k := range all {
		if !IsCDKKey(k) && !standing[k] {
			out = append(out, k)
		}
	}
	return out
}

// Closest returns the known key nearest to name (case-insensitive edit distance), or "" when none is near enough to be
// a likely typo.
func Closest(name string) string {
	best, bestD := "", -1
	for _, k := range Keys {
		d := distance(strings.ToLower(name), strings.ToLower(k.Name))
		if bestD < 0 || d < bestD {
			best, bestD = k.Name, d
		}
	}
	limit := len(name) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD > limit {
		return ""
	}
	return best
}

// distance is the Levenshtein distance of a and b, counted in bytes, with '-' and '_' one apart like any other pair.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// PreferTyped returns ctx without the selecting keys kept as standing configuration (cdk.json) when a selecting key of
// the other single-purpose app was typed (or, for the cross-account keys, set in the environment): a seed-001 user's
// default thing_name does not contradict `cdk deploy -c CSR_FILE=…`, and a standing CSR_FILE does not contradict
// `-c thing_name=…`. With no typed selecting key, standing keys select as before.
func PreferTyped(ctx, env Lookup, standing map[string]bool) Lookup {
	cross := []string{KeyCSRFile, KeyDesiredTopic, KeyDestroy}
	things := []string{KeyThingName, KeyThingNames, KeyThingNamesFile}
	typed := func(keys []string, withEnv bool) bool {
		for _, k := range keys {
			if _, ok := ctx(k); ok && !standing[k] {
				return true
			}
			if _, ok := env(k); ok && withEnv {
				return true
			}
		}
		return false
	}
	hide := map[string]bool{}
	typedCross, typedThings := typed(cross, true), typed(things, false)
	switch {
	case typedCross && !typedThings:
		for _, k := range things {
			hide[k] = standing[k]
		}
	case typedThings && !typedCross:
		for _, k := range cross {
			hide[k] = standing[k]
		}
	}
	return func(key string) (string, bool) {
		if hide[key] {
			return "", false
		}
		return ctx(key)
	}
}
