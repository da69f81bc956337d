// Package replay applies AWS IoT registry events of the primary region to a replica region's registry, and
// reconciles the two registries. It is the code behind the replica's ThingCrud, ThingTypeCrud and ThingGroupCrud
// functions and its reconciler.
//
// Events arrive duplicated and out of order (registry events are at-least-once and unordered, and the stream mapping
// and the state machine retry). An event is applied only when it is newer than what this region applied for the same
// entity: the Versions table (DynamoDB, in the replica region) keeps, per entity, the order key (timestamp, then
// versionNumber) and eventId of the newest event claimed, with a short lease so that two events for one entity never
// apply at the same time. Each event carries its entity's whole state (a thing's attributes and type, a group's
// properties), so applying the newest one converges whatever came before it.
package replay

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Registry event types (the eventType field).
const (
	ThingEvent            = "THING_EVENT"
	ThingTypeEvent        = "THING_TYPE_EVENT"
	ThingTypeAssocEvent   = "THING_TYPE_ASSOCIATION_EVENT"
	ThingGroupEvent       = "THING_GROUP_EVENT"
	GroupMembershipEvent  = "THING_GROUP_MEMBERSHIP_EVENT"
	GroupHierarchyEvent   = "THING_GROUP_HIERARCHY_EVENT"
	opCreated, opUpdated  = "CREATED", "UPDATED"
	opDeleted             = "DELETED"
	opAdded, opRemoved    = "ADDED", "REMOVED"
	originAttr            = "originRegion"
	maxAttributesPerThing = 50
)

// Record is the input of a replay execution: the stream record's "dynamodb" part, as the trigger passes it on (the
// sample's shape, read by the state machine's Choice at $.NewImage.eventType.S).
type Record struct {
	Keys           map[string]events.DynamoDBAttributeValue `json:"Keys,omitempty"`
	NewImage       map[string]events.DynamoDBAttributeValue `json:"NewImage,omitempty"`
	SequenceNumber string                                   `json:"SequenceNumber,omitempty"`
}

// Event is a registry event, validated.
type Event struct {
	Type      string
	ID        string
	Operation string
	Timestamp int64 // milliseconds since the epoch
	Origin    string
	// Inc is the incarnation the event is about: thingId (THING_EVENT), thingTypeId (THING_TYPE_EVENT), thingGroupId
	// (THING_GROUP_EVENT); "" for the other types and for events that do not name it. It orders events of one
	// timestamp (see Versions.Claim).
	Inc string
	// ThingID is the thingId of a membership or type association: the incarnation of the thing it was about.
	ThingID string

	ThingName     string            // THING_EVENT, THING_TYPE_ASSOCIATION_EVENT, THING_GROUP_MEMBERSHIP_EVENT
	ThingTypeName string            // THING_EVENT (may be empty), THING_TYPE_EVENT, THING_TYPE_ASSOCIATION_EVENT
	Version       int64             // THING_EVENT, THING_GROUP_EVENT
	Attributes    map[string]string // THING_EVENT, THING_GROUP_EVENT: the entity's whole attribute set

	Deprecated  bool     // THING_TYPE_EVENT
	Description string   // THING_TYPE_EVENT, THING_GROUP_EVENT
	Searchable  []string // THING_TYPE_EVENT

	GroupName  string // THING_GROUP_EVENT, membership, hierarchy (the parent)
	ParentName string // THING_GROUP_EVENT
	Dynamic    bool   // THING_GROUP_EVENT of a dynamic group
	ChildName  string // THING_GROUP_HIERARCHY_EVENT

	repair bool // made by read-repair from the origin's state: never repaired again
	depth  int  // nesting of read-repairs that led to this event
	bumps  int  // milliseconds a repair moved past claims of its own millisecond
}

// InvalidEventError is an event that can never apply (malformed, or naming something AWS IoT refuses). It is not
// retried: the state machine sends the record to the dead-letter queue.
type InvalidEventError struct{ Reason string }

func (e *InvalidEventError) Error() string { return "invalid registry event: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidEventError{Reason: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is (or wraps) an InvalidEventError.
func IsInvalid(err error) bool {
	var ie *InvalidEventError
	return errors.As(err, &ie)
}

var (
	// AWS IoT's rules for thing, thing type and thing group names and attributes.
	nameRE      = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
	attrNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_.,@/:#-]{1,128}$`)
	attrValueRE = regexp.MustCompile(`^[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}$`)
	// The eventId names the replay execution: Step Functions allows 1 to 80 of these characters.
	eventIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[1-9]$`)
	controlRE = regexp.MustCompile(`\p{Cc}`)
	// AWS IoT's thingId, thingTypeId and thingGroupId are UUIDs; anything of this shape is accepted.
	idRE     = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	iotARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:(thing|thinggroup)/([a-zA-Z0-9:_-]{1,128})$`)
)

// ValidEventID reports whether id can name a Step Functions execution.
func ValidEventID(id string) bool { return eventIDRE.MatchString(id) }

// ParseRecord validates a replay execution's input.
func ParseRecord(r Record) (*Event, error) {
	if len(r.NewImage) == 0 {
		return nil, invalid("the record has no NewImage (only INSERT records are replayed)")
	}
	img := make(map[string]any, len(r.NewImage))
	for k, v := range r.NewImage {
		pv, err := plain(v, 0)
		if err != nil {
			return nil, invalid("attribute %s: %v", k, err)
		}
		img[k] = pv
	}
	return ParseImage(img)
}

// number is a DynamoDB number, in its decimal text.
type number string

// plain converts a DynamoDB attribute value into string, number, bool, nil, map[string]any or []any.
func plain(v events.DynamoDBAttributeValue, depth int) (any, error) {
	if depth > 8 {
		return nil, errors.New("nested too deeply")
	}
	switch v.DataType() {
	case events.DataTypeString:
		return v.String(), nil
	case events.DataTypeNumber:
		return number(v.Number()), nil
	case events.DataTypeBoolean:
		return v.Boolean(), nil
	case events.DataTypeNull:
		return nil, nil
	case events.DataTypeMap:
		m := map[string]any{}
		for k, e := range v.Map() {
			pe, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = pe
		}
		return m, nil
	case events.DataTypeList:
		var l []any
		for _, e := range v.List() {
			pe, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, pe)
		}
		return l, nil
	case events.DataTypeStringSet:
		l := []any{}
		for _, s := range v.StringSet() {
			l = append(l, s)
		}
		return l, nil
	}
	return nil, fmt.Errorf("unsupported DynamoDB type %v", v.DataType())
}

// image reads the fields of a plain image.
type image map[string]any

func (m image) str(key string) (string, error) {
	switch v := m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", invalid("%s is not a string", key)
}

func (m image) num(key string) (int64, error) {
	switch v := m[key].(type) {
	case nil:
		return 0, nil
	case number:
		n, err := strconv.ParseFloat(string(v), 64)
		if err != nil || n < 0 || n > 1<<53 || n != float64(int64(n)) {
			return 0, invalid("%s %q is not a whole number", key, v)
		}
		return int64(n), nil
	}
	return 0, invalid("%s is not a number", key)
}

func (m image) boolean(key string) (bool, error) {
	switch v := m[key].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	}
	return false, invalid("%s is not a boolean", key)
}

func (m image) name(key, what string, required bool) (string, error) {
	s, err := m.str(key)
	if err != nil {
		return "", err
	}
	if s == "" && !required {
		return "", nil
	}
	if !nameRE.MatchString(s) {
		return "", invalid("%s %q is not a valid AWS IoT %s name", key, s, what)
	}
	return s, nil
}

func (m image) attributes(key string) (map[string]string, error) {
	out := map[string]string{}
	switch v := m[key].(type) {
	case nil:
		return out, nil
	case map[string]any:
		if len(v) > maxAttributesPerThing {
			return nil, invalid("%s has %d attributes, more than AWS IoT's %d", key, len(v), maxAttributesPerThing)
		}
		for k, av := range v {
			s, ok := av.(string)
			if !ok {
				return nil, invalid("attribute %q is not a string", k)
			}
			if !attrNameRE.MatchString(k) || !attrValueRE.MatchString(s) {
				return nil, invalid("attribute %q=%q is not valid in AWS IoT", k, s)
			}
			out[k] = s
		}
		return out, nil
	}
	return nil, invalid("%s is not a map", key)
}

// arnName returns the name in an AWS IoT thing or thinggroup ARN.
func arnName(arn, resource string) (string, error) {
	m := iotARNRE.FindStringSubmatch(arn)
	if m == nil || m[1] != resource {
		return "", invalid("%q is not an AWS IoT %s ARN", arn, resource)
	}
	return m[2], nil
}

// ParseImage validates a registry event written by the rule: the event's own fields plus the originRegion.
func ParseImage(m image) (*Event, error) {
	e := &Event{}
	var err error
	if e.Type, err = m.str("eventType"); err != nil {
		return nil, err
	}
	if e.ID, err = m.str("eventId"); err != nil {
		return nil, err
	}
	if !ValidEventID(e.ID) {
		return nil, invalid("eventId %q is not 1 to 80 characters of [A-Za-z0-9_-]", e.ID)
	}
	if e.Operation, err = m.str("operation"); err != nil {
		return nil, err
	}
	if e.Timestamp, err = m.num("timestamp"); err != nil {
		return nil, err
	}
	if e.Timestamp <= 0 {
		return nil, invalid("timestamp is missing")
	}
	if e.Origin, err = m.str(originAttr); err != nil {
		return nil, err
	}
	if e.Origin != "" && !regionRE.MatchString(e.Origin) {
		return nil, invalid("%s %q is not a region", originAttr, e.Origin)
	}
	id := func(key string) (string, error) {
		s, err := m.str(key)
		if err != nil || s == "" {
			return "", err
		}
		if !idRE.MatchString(s) {
			return "", invalid("%s %q is not an AWS IoT id", key, s)
		}
		return s, nil
	}
	ops := func(allowed ...string) error {
		if !slices.Contains(allowed, e.Operation) {
			return invalid("operation %q is not one of %s for %s", e.Operation, strings.Join(allowed, ", "), e.Type)
		}
		return nil
	}
	switch e.Type {
	case ThingEvent:
		if err := ops(opCreated, opUpdated, opDeleted); err != nil {
			return nil, err
		}
		if e.ThingName, err = m.name("thingName", "thing", true); err != nil {
			return nil, err
		}
		if e.Inc, err = id("thingId"); err != nil {
			return nil, err
		}
		if e.ThingTypeName, err = m.name("thingTypeName", "thing type", false); err != nil {
			return nil, err
		}
		if e.Version, err = m.num("versionNumber"); err != nil {
			return nil, err
		}
		if e.Attributes, err = m.attributes("attributes"); err != nil {
			return nil, err
		}
		if e.ThingTypeName == "" && len(e.Attributes) > 3 {
			return nil, invalid("thing %s has %d attributes and no thing type (AWS IoT allows 3)", e.ThingName, len(e.Attributes))
		}
	case ThingTypeEvent:
		if err := ops(opCreated, opUpdated, opDeleted); err != nil {
			return nil, err
		}
		if e.ThingTypeName, err = m.name("thingTypeName", "thing type", true); err != nil {
			return nil, err
		}
		if e.Inc, err = id("thingTypeId"); err != nil {
			return nil, err
		}
		if e.Deprecated, err = m.boolean("isDeprecated"); err != nil {
			return nil, err
		}
		if e.Description, err = m.str("description"); err != nil {
			return nil, err
		}
		if !validDescription(e.Description) {
			return nil, invalid("description is longer than 2028 characters or holds control characters")
		}
		if l, ok := m["searchableAttributes"].([]any); ok {
			if len(l) > 3 {
				return nil, invalid("a thing type has at most 3 searchable attributes, got %d", len(l))
			}
			for _, a := range l {
				s, _ := a.(string)
				if !attrNameRE.MatchString(s) {
					return nil, invalid("searchable attribute %q is not valid", s)
				}
				e.Searchable = append(e.Searchable, s)
			}
		} else if m["searchableAttributes"] != nil {
			return nil, invalid("searchableAttributes is not a list")
		}
	case ThingTypeAssocEvent:
		if err := ops(opAdded, opRemoved); err != nil {
			return nil, err
		}
		if e.ThingName, err = m.name("thingName", "thing", true); err != nil {
			return nil, err
		}
		if e.ThingID, err = id("thingId"); err != nil {
			return nil, err
		}
		if e.ThingTypeName, err = m.name("thingTypeName", "thing type", true); err != nil {
			return nil, err
		}
	case ThingGroupEvent:
		if err := ops(opCreated, opUpdated, opDeleted); err != nil {
			return nil, err
		}
		if e.GroupName, err = m.name("thingGroupName", "thing group", true); err != nil {
			return nil, err
		}
		if e.Inc, err = id("thingGroupId"); err != nil {
			return nil, err
		}
		if e.ParentName, err = m.name("parentGroupName", "thing group", false); err != nil {
			return nil, err
		}
		if e.ParentName == e.GroupName && e.ParentName != "" {
			return nil, invalid("thing group %s is its own parent", e.GroupName)
		}
		if e.Version, err = m.num("versionNumber"); err != nil {
			return nil, err
		}
		if e.Description, err = m.str("description"); err != nil {
			return nil, err
		}
		if !validDescription(e.Description) {
			return nil, invalid("description is longer than 2028 characters or holds control characters")
		}
		if e.Attributes, err = m.attributes("attributes"); err != nil {
			return nil, err
		}
		dyn, err := m.str("dynamicGroupMappingId")
		if err != nil {
			return nil, err
		}
		e.Dynamic = dyn != ""
	case GroupMembershipEvent:
		if err := ops(opAdded, opRemoved); err != nil {
			return nil, err
		}
		g, err := m.str("groupArn")
		if err != nil {
			return nil, err
		}
		if e.GroupName, err = arnName(g, "thinggroup"); err != nil {
			return nil, err
		}
		t, err := m.str("thingArn")
		if err != nil {
			return nil, err
		}
		if e.ThingName, err = arnName(t, "thing"); err != nil {
			return nil, err
		}
		if e.ThingID, err = id("thingId"); err != nil {
			return nil, err
		}
	case GroupHierarchyEvent:
		if err := ops(opAdded, opRemoved); err != nil {
			return nil, err
		}
		parent, _ := m["thingGroup"].(map[string]any)
		child, _ := m["childGroup"].(map[string]any)
		if e.GroupName, err = image(parent).name("name", "thing group", true); err != nil {
			return nil, err
		}
		if e.ChildName, err = image(child).name("name", "thing group", true); err != nil {
			return nil, err
		}
		if e.GroupName == e.ChildName {
			return nil, invalid("thing group %s cannot be its own child", e.GroupName)
		}
	default:
		return nil, invalid("eventType %q is not a replicated registry event", e.Type)
	}
	return e, nil
}

func validDescription(s string) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= 2028 && !controlRE.MatchString(s)
}

// Entity is the key under which an event's order is kept: events of one entity are applied newest-wins.
func (e *Event) Entity() string {
	switch e.Type {
	case ThingEvent:
		return "thing/" + e.ThingName
	case ThingTypeAssocEvent:
		// The type of a thing: ordered apart from the thing's other fields (see applyThing).
		return "thing-type-of/" + e.ThingName
	case ThingTypeEvent:
		return "thingtype/" + e.ThingTypeName
	case ThingGroupEvent:
		return "thinggroup/" + e.GroupName
	case GroupMembershipEvent:
		return "member/" + e.GroupName + "/" + e.ThingName
	case GroupHierarchyEvent:
		return "parent-of/" + e.ChildName
	}
	return ""
}

// Order is the event's position among its entity's events.
func (e *Event) Order() Order {
	o := Order{TS: e.Timestamp, Ver: e.Version}
	if e.Operation == opDeleted {
		o.Rank = 1
	}
	return o
}

// Order compares events of one entity: by timestamp; within one timestamp and one incarnation of the entity (see
// Versions.Claim), a delete (rank 1) after anything else, then by versionNumber.
type Order struct {
	TS   int64
	Rank int64
	Ver  int64
}

// After reports whether o is newer than p, for events of one incarnation.
func (o Order) After(p Order) bool {
	if o.TS != p.TS {
		return o.TS > p.TS
	}
	if o.Rank != p.Rank {
		return o.Rank > p.Rank
	}
	return o.Ver > p.Ver
}

func sameAttributes(a, b map[string]string) bool {
	return maps.Equal(a, b) || (len(a) == 0 && len(b) == 0)
}
