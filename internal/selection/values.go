package selection

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Regions are the AWS Regions the app accepts (commercial, GovCloud, China and the European Sovereign Cloud), from
// https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html. A Region AWS opens later is
// added here: one line.
var Regions = map[string]bool{
	"us-east-1": true, "us-east-2": true, "us-west-1": true, "us-west-2": true,
	"af-south-1": true, "ap-east-1": true, "ap-east-2": true, "ap-south-1": true, "ap-south-2": true,
	"ap-southeast-1": true, "ap-southeast-2": true, "ap-southeast-3": true, "ap-southeast-4": true,
	"ap-southeast-5": true, "ap-southeast-6": true, "ap-southeast-7": true,
	"ap-northeast-1": true, "ap-northeast-2": true, "ap-northeast-3": true,
	"ca-central-1": true, "ca-west-1": true,
	"eu-central-1": true, "eu-central-2": true, "eu-west-1": true, "eu-west-2": true, "eu-west-3": true,
	"eu-south-1": true, "eu-south-2": true, "eu-north-1": true,
	"il-central-1": true, "me-south-1": true, "me-central-1": true, "mx-central-1": true, "sa-east-1": true,
	"us-gov-east-1": true, "us-gov-west-1": true, "cn-north-1": true, "cn-northwest-1": true, "eusc-de-east-1": true,
}

// CheckRegion refuses a name that is not an AWS Region, with the closest one.
func CheckRegion(key, r string) error {
	if Regions[r] {
		return nil
	}
	msg := fmt.Sprintf("context %s: %q is not an AWS Region", key, r)
	best, bestD := "", -1
	for name := range Regions {
		if d := distance(r, name); bestD < 0 || d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	if bestD <= 2 {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	} else {
		msg += " (a Region name looks like us-east-1 or eu-west-1)"
	}
	return fmt.Errorf("%s", msg)
}

// blankAllowed are the keys whose blank value has a meaning of its own (Select judges them).
var blankAllowed = map[string]bool{KeyCSRFile: true, KeyDesiredTopic: true, KeyDestroy: true, KeyThingNamesFile: true, KeyEnvironments: true}

// checkValues judges the values of the keys that apply to the selection, typed or standing. A blank value is an
// error (it would otherwise mean "the default", which the user did not ask for), and so are a nag that is not true or
// false and a Region that does not exist.
func checkValues(ctx Lookup, k Kind, standing map[string]string) error {
	from := func(key string) string {
		if src := standing[key]; src != "" {
			return src + " context " + key
		}
		return "context " + key
	}
	names := make([]string, 0, len(Keys))
	for _, key := range Keys {
		names = append(names, key.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		key, _ := LookupKey(name)
		v, ok := ctx(name)
		if !ok || key.For&Applies(1<<k) == 0 {
			continue
		}
		if strings.TrimSpace(v) == "" && !blankAllowed[name] {
			return fmt.Errorf("%s is given but empty: give a value, or leave the key out for its default (%s)", from(name), key.Doc)
		}
	}
	if v, ok := ctx("nag"); ok {
		if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%s must be true or false, got %q (false turns the cdk-nag checks off)", from("nag"), v)
		}
	}
	switch k {
	case Thing, Fleet:
		if v, ok := ctx("region"); ok {
			if err := CheckRegion("region", strings.TrimSpace(v)); err != nil {
				return err
			}
		}
	case Platform:
		return checkPlatformRegions(ctx, from)
	}
	return nil
}

// checkPlatformRegions judges primary_region and replica_regions together, naming the default the user did not type.
func checkPlatformRegions(ctx Lookup, from func(string) string) error {
	primary, primaryGiven := ctx("primary_region")
	primary = strings.TrimSpace(primary)
	if !primaryGiven {
		primary = DefaultPrimaryRegion
	} else if err := CheckRegion("primary_region", primary); err != nil {
		return err
	}
	raw, replicasGiven := ctx("replica_regions")
	if !replicasGiven {
		if primary == DefaultReplicaRegion {
			return fmt.Errorf("%s is %s, the default replica region (replica_regions defaults to %s, since the default primary is %s): "+
				"give the replicas too, e.g. -c replica_regions=%s", from("primary_region"), primary, DefaultReplicaRegion, DefaultPrimaryRegion, DefaultPrimaryRegion)
		}
		return nil
	}
	seen := map[string]bool{}
	for _, r := range strings.Split(raw, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
			return fmt.Errorf("%s: empty region name in %q: list the replica regions separated by commas", from("replica_regions"), raw)
		case r == primary:
			why := "primary_region"
			if !primaryGiven {
				why = "the default primary_region"
			}
			return fmt.Errorf("%s: %q is %s; a replica needs a region of its own (or set -c primary_region=…)", from("replica_regions"), r, why)
		case seen[r]:
			return fmt.Errorf("%s: region %q is listed twice", from("replica_regions"), r)
		}
		if err := CheckRegion("replica_regions", r); err != nil {
			return err
		}
		seen[r] = true
	}
	return nil
}

// keyHints say, for a key given with a selection it does not apply to, what to do instead of it.
var keyHints = map[string]map[Kind]string{
	"region": {Platform: "instead, the platform stacks take their region from the deploying environment (AWS_REGION, or the " +
		"profile's region), and the multi-region stacks from primary_region and replica_regions: run with AWS_REGION=<region>, " +
		"or give -c primary_region=<region>"},
}
