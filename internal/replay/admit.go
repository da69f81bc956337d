package replay

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultMaxClockSkew is how far in the future an event's timestamp may lie, by this region's clock, and still be
// replayed. Registry events are stamped by AWS IoT in the origin region, whose clock and ours are kept close by AWS;
// two minutes covers the difference with a wide margin. Anything further ahead is refused: a forged far-future event
// would otherwise win over every real one of its entity until its record expires (30 days), and a forged far-future
// DELETE would keep the thing deleted that long.
const DefaultMaxClockSkew = 2 * time.Minute

// Admission is what an event must satisfy beyond its shape before it is replayed: it comes from one of the configured
// origin regions, and its timestamp is not beyond the clock-skew bound in the future. Anyone who can write the
// global table (an operator, a mistaken script, a compromised writer in any region) can put an item in it; the
// origin and the timestamp are the two fields that decide which region's registry an event speaks for and which
// events it overrides.
type Admission struct {
	// Origins are the regions whose registry events are replayed here. Empty refuses every event.
	Origins []string
	// MaxSkew bounds how far in the future a timestamp may be. Default: DefaultMaxClockSkew.
	MaxSkew time.Duration
	// Now is this region's clock. Default: time.Now.
	Now func() time.Time
}

// RefusedError is an event refused by Admission: it is never applied, and it is counted (the RefusedEvents metric).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "registry event refused: " + e.Reason }

// Check refuses an event from an unknown origin or stamped too far in the future.
func (ad Admission) Check(ev *Event) error {
	if ev.Origin == "" {
		return &RefusedError{Reason: fmt.Sprintf("event %s has no %s", ev.ID, originAttr)}
	}
	if !slices.Contains(ad.Origins, ev.Origin) {
		return &RefusedError{Reason: fmt.Sprintf("event %s comes from %s, which is not one of the origin regions (%s)", ev.ID,
			ev.Origin, strings.Join(ad.Origins, ", "))}
	}
	now := time.Now
	if ad.Now != nil {
		now = ad.Now
	}
	skew := ad.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	if limit := now().Add(skew).UnixMilli(); ev.Timestamp > limit {
		return &RefusedError{Reason: fmt.Sprintf("event %s is stamped %s, more than %v ahead of this region's clock", ev.ID,
			time.UnixMilli(ev.Timestamp).UTC().Format(time.RFC3339), skew)}
	}
	return nil
}

// ParseOrigins reads a comma-separated list of regions (the ORIGIN_REGIONS variable).
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !regionRE.MatchString(r) {
			return nil, fmt.Errorf("origin region %q is not a region", r)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no origin region in %q", s)
	}
	return out, nil
}

// RefusedEMF is the CloudWatch embedded-metric-format line that counts refused events as the metric
// <namespace>/RefusedEvents with the dimension Region.
func RefusedEMF(namespace, region string, refused int, at time.Time) []byte {
	return emf(namespace, region, RefusedMetric, refused, at)
}

// RefusedMetric names the count of refused events.
const RefusedMetric = "RefusedEvents"
