package stacks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/internal/vending"
)

// definePlatform defines the platform stacks: the ones that no single-purpose context selects: one certificate
// vending stack per environment, the multi-region stacks (a primary and one stack per replica region) and the
// certificate rotation stack.
func definePlatform(app awscdk.App, ctx selection.Lookup) error {
	// Every capability's context is judged before any stack is defined, so a bad value defines nothing.
	rot, err := rotationPropsFromContext(ctx)
	if err != nil {
		return err
	}
	envs, err := vendingEnvironments(app.Node().TryGetContext(jsii.String(ctxEnvironments)))
	if err != nil {
		return err
	}
	mr, err := multiRegionPropsFromContext(ctx)
	if err != nil {
		return err
	}
	devRot, err := devRotPropsFromContext(ctx)
	if err != nil {
		return err
	}
	ops, err := opsPropsFromContext(ctx)
	if err != nil {
		return err
	}
	NewRotationStack(app, RotationStackName(rot.Name), rot)
	prefix := optString(ctx, ctxPrefix, vending.DefaultPrefix)
	for _, e := range envs {
		e.props.Prefix = prefix
		NewVendingStack(app, "CertVending-"+e.name, e.props)
	}
	defineDeviceRotation(app, NewMultiRegionStacks(app, mr).Primary, devRot)
	NewOpsStacks(app, ops) // last: it gathers the alarms of the stacks above
	return nil
}

type vendingEnv struct {
	name  string
	props *VendingStackProps
}

// vendingSettings are the per-environment keys of the environments context (cdk.json), as in the seed's
// "environments": {"<env>": {...}} map; an environment whose value is null is skipped, as the seed did.
type vendingSettings struct {
	Config                 json.RawMessage `json:"config"`
	ThrottleRate           float64         `json:"throttle_rate"`
	ThrottleBurst          float64         `json:"throttle_burst"`
	AuthorizerCacheSeconds float64         `json:"authorizer_cache_seconds"`
	CorsOrigins            []string        `json:"cors_origins"`
	WebACLArn              string          `json:"web_acl_arn"`
	ArchiveDays            float64         `json:"archive_days"`
	ManageIoTObjects       *bool           `json:"manage_iot_objects"`
	ThingNamePrefix        string          `json:"thing_name_prefix"`
	CSRAllowSANs           bool            `json:"csr_allow_sans"`
}

// vendingEnvironments reads the environments context: absent means {"dev": {}}; a string lists names
// ("dev,prod"); an object maps names to settings.
func vendingEnvironments(raw interface{}) ([]vendingEnv, error) {
	settings := map[string]*vendingSettings{}
	switch v := raw.(type) {
	case nil:
		settings[defaultVendingEnvName] = &vendingSettings{}
	case string:
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				settings[n] = &vendingSettings{}
			}
		}
	case map[string]interface{}:
		for name, s := range v {
			if s == nil {
				continue
			}
			vs, err := decodeVendingSettings(name, s)
			if err != nil {
				return nil, err
			}
			settings[name] = vs
		}
	default:
		return nil, fmt.Errorf("context %s must be an object of environments or a comma-separated list, got %v", ctxEnvironments, raw)
	}
	names := make([]string, 0, len(settings))
	for n := range settings {
		if !envNameRE.MatchString(n) {
			return nil, fmt.Errorf("context %s: environment name %q is not valid: use 1 to 16 lower-case letters, digits and '-', starting with a letter", ctxEnvironments, n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []vendingEnv
	for _, n := range names {
		s := settings[n]
		if s.ThrottleRate < 0 || s.ThrottleBurst < 0 || s.AuthorizerCacheSeconds < 0 || s.AuthorizerCacheSeconds > 3600 || s.ArchiveDays < 0 {
			return nil, fmt.Errorf("context %s.%s: throttle_rate, throttle_burst and archive_days must be positive and authorizer_cache_seconds at most 3600", ctxEnvironments, n)
		}
		p := &VendingStackProps{
			Env: n, RateLimit: s.ThrottleRate, BurstLimit: s.ThrottleBurst, AuthorizerCacheSeconds: s.AuthorizerCacheSeconds,
			CorsOrigins: s.CorsOrigins, WebACLArn: s.WebACLArn, ArchiveDays: s.ArchiveDays, ManageIoTObjects: s.ManageIoTObjects,
			ThingNamePrefix: s.ThingNamePrefix, CSRAllowSANs: s.CSRAllowSANs,
		}
		if p.ThingNamePrefix != "" && !thingPrefixRE.MatchString(p.ThingNamePrefix) {
			return nil, fmt.Errorf("context %s.%s.thing_name_prefix %q is not valid: use 1 to 64 characters of a-z, A-Z, 0-9, ':', '_' and '-'", ctxEnvironments, n, p.ThingNamePrefix)
		}
		if len(s.Config) > 0 && string(s.Config) != "null" {
			p.ConfigJSON = s.Config
			if _, err := vending.ParseConfig(p.ConfigJSON); err != nil {
				return nil, fmt.Errorf("context %s.%s.config: %v", ctxEnvironments, n, err)
			}
		}
		out = append(out, vendingEnv{name: n, props: p})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("context %s names no environment", ctxEnvironments)
	}
	return out, nil
}
