package awsfake

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The registry operations the multi-region replay and reconciler call: UpdateThing with AWS's attribute-merge rules
// and versionNumber, ListThings, DeleteThingType, and thing groups with their parent, memberships and hierarchy.

// ThingGroup is an AWS IoT thing group as the fake holds it.
type ThingGroup struct {
	Name        string
	ARN         string
	ID          string
	Description string
	Attributes  map[string]string
	Parent      string // the parent group's name; "" for a root group
	Version     int64
}

type thingGroup struct {
	ThingGroup
	created time.Time
	things  map[string]string // member thing name → its thingId when added (a deleted and re-created thing is not a member)
}

// registryState is the fake's thing-group state and the clock of its time rules; its zero value is ready to use.
type registryState struct {
	groups map[string]*thingGroup
	now    func() time.Time // nil: time.Now
}

// clock is the time the registry's rules see (deprecation dates, the delay before a thing type's delete).
func (r *registryState) clock() time.Time {
	if r.now != nil {
		return r.now().UTC()
	}
	return time.Now().UTC()
}

// SetClock makes the registry's time rules (DeprecateThingType's date, DeleteThingType's five minutes) read now
// instead of the wall clock, so that a test can let five minutes pass at once. Nil restores the wall clock.
func (f *IoT) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reg.now = now
}

// ThingTypeDeleteDelay is how long AWS IoT refuses DeleteThingType after DeprecateThingType: "Before you can delete a
// thing type, wait for five minutes after you deprecate it"
// (https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html). The error AWS returns for an
// early delete is not documented; the fake answers InvalidRequestException, the error the API reference lists for a
// request that is not valid (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingType.html).
const ThingTypeDeleteDelay = 5 * time.Minute

var groupNameRE = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)

// ThingGroup returns a copy of the named group.
func (f *IoT) ThingGroup(name string) (ThingGroup, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.reg.groups[name]
	if !ok {
		return ThingGroup{}, false
	}
	return copyGroup(g), true
}

// ThingGroups returns every thing group, ordered by name.
func (f *IoT) ThingGroups() []ThingGroup {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ThingGroup, 0, len(f.reg.groups))
	for _, n := range slices.Sorted(maps.Keys(f.reg.groups)) {
		out = append(out, copyGroup(f.reg.groups[n]))
	}
	return out
}

// GroupMembers returns the names of the things in the named group (directly), sorted.
func (f *IoT) GroupMembers(group string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.reg.groups[group]
	if !ok {
		return nil
	}
	return f.members(g)
}

// ThingTypeNames returns the names of every thing type, sorted.
func (f *IoT) ThingTypeNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.thingTypes))
}

func copyGroup(g *thingGroup) ThingGroup {
	c := g.ThingGroup
	c.Attributes = maps.Clone(g.Attributes)
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	return c
}

// members lists the group's things that still exist as the thing that was added.
func (f *IoT) members(g *thingGroup) []string {
	var out []string
	for name, id := range g.things {
		if t, ok := f.things[name]; ok && t.ID == id {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// registryOp serves the operations of this file; handled is false for any other operation.
func (f *IoT) registryOp(op string, params []string, q url.Values, body []byte) (out any, e *apiError, handled bool) {
	switch op {
	case "UpdateThing":
		out, e = f.updateThing(params[0], body)
	case "ListThings":
		out, e = f.listThings(q)
	case "DeleteThingType":
		out, e = f.deleteThingType(params[0])
	case "CreateThingGroup":
		out, e = f.createThingGroup(params[0], body)
	case "DescribeThingGroup":
		out, e = f.describeThingGroup(params[0])
	case "UpdateThingGroup":
		out, e = f.updateThingGroup(params[0], body)
	case "DeleteThingGroup":
		out, e = f.deleteThingGroup(params[0], q.Get("expectedVersion"))
	case "ListThingGroups":
		out, e = f.listThingGroups(q)
	case "AddThingToThingGroup":
		out, e = f.changeMembership(body, true)
	case "RemoveThingFromThingGroup":
		out, e = f.changeMembership(body, false)
	case "ListThingsInThingGroup":
		out, e = f.listThingsInThingGroup(params[0], q)
	case "ListThingGroupsForThing":
		out, e = f.listThingGroupsForThing(params[0], q)
	default:
		return nil, nil, false
	}
	return out, e, true
}

type attributePayload struct {
	Attributes map[string]string `json:"attributes"`
	Merge      bool              `json:"merge"`
}

func checkAttributes(attrs map[string]string, allowEmpty bool) *apiError {
	for k, v := range attrs {
		if !attrNameRE.MatchString(k) {
			return invalidRequest("attribute name %q is not valid", k)
		}
		if !attrValueRE.MatchString(v) || (v == "" && !allowEmpty) {
			return invalidRequest("attribute value %q of %s is not valid", v, k)
		}
	}
	return nil
}

// mergeAttributes applies an attribute payload: merge adds and replaces the given attributes and removes those given
// an empty value; without merge the given attributes replace the whole set.
func mergeAttributes(current map[string]string, p *attributePayload) map[string]string {
	if p == nil {
		return maps.Clone(current)
	}
	if !p.Merge {
		out := map[string]string{}
		for k, v := range p.Attributes {
			if v != "" {
				out[k] = v
			}
		}
		return out
	}
	out := maps.Clone(current)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range p.Attributes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func checkVersion(expected *int64, current int64, what, name string) *apiError {
	if expected != nil && *expected != current {
		return errorf(409, "VersionConflictException", "The version for %s %s does not match the expected version.", what, name)
	}
	return nil
}

func (f *IoT) updateThing(name string, body []byte) (any, *apiError) {
	t, e := f.thing(name)
	if e != nil {
		return nil, e
	}
	var in struct {
		AttributePayload *attributePayload `json:"attributePayload"`
		ExpectedVersion  *int64            `json:"expectedVersion"`
		RemoveThingType  bool              `json:"removeThingType"`
		ThingTypeName    string            `json:"thingTypeName"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if in.RemoveThingType && in.ThingTypeName != "" {
		return nil, invalidRequest("removeThingType and thingTypeName cannot both be given")
	}
	if in.AttributePayload != nil {
		if e := checkAttributes(in.AttributePayload.Attributes, true); e != nil {
			return nil, e
		}
	}
	if e := checkVersion(in.ExpectedVersion, t.Version, "thing", name); e != nil {
		return nil, e
	}
	typ := t.TypeName
	switch {
	case in.RemoveThingType:
		typ = ""
	case in.ThingTypeName != "":
		tt, ok := f.thingTypes[in.ThingTypeName]
		if !ok {
			return nil, notFound("Thing type %s does not exist", in.ThingTypeName)
		}
		if tt.deprecated != nil && in.ThingTypeName != t.TypeName {
			return nil, invalidRequest("Thing type %s is deprecated: no thing can be associated with it", in.ThingTypeName)
		}
		typ = in.ThingTypeName
	}
	attrs := mergeAttributes(t.Attributes, in.AttributePayload)
	if typ == "" && len(attrs) > 3 {
		return nil, invalidRequest("a thing without a thing type has at most 3 attributes, got %d", len(attrs))
	}
	if len(attrs) > 50 {
		return nil, invalidRequest("a thing with a thing type has at most 50 attributes, got %d", len(attrs))
	}
	t.TypeName, t.Attributes = typ, attrs
	t.Version++
	return nil, nil
}

func (f *IoT) listThings(q url.Values) (any, *apiError) {
	names := slices.Sorted(maps.Keys(f.things))
	if typ := q.Get("thingTypeName"); typ != "" {
		names = slices.DeleteFunc(names, func(n string) bool { return f.things[n].TypeName != typ })
	}
	if an := q.Get("attributeName"); an != "" {
		av := q.Get("attributeValue")
		names = slices.DeleteFunc(names, func(n string) bool {
			v, ok := f.things[n].Attributes[an]
			return !ok || (av != "" && v != av)
		})
	}
	page, next, e := iotPage(names, q.Get("nextToken"), q.Get("maxResults"), 50, 250)
	if e != nil {
		return nil, e
	}
	things := make([]map[string]any, 0, len(page))
	for _, n := range page {
		t := f.things[n]
		item := map[string]any{"thingName": t.Name, "thingArn": t.ARN, "attributes": t.Attributes, "version": t.Version}
		if t.TypeName != "" {
			item["thingTypeName"] = t.TypeName
		}
		things = append(things, item)
	}
	return withNext(map[string]any{"things": things}, "nextToken", next), nil
}

// deleteThingType deletes a type that was deprecated at least ThingTypeDeleteDelay ago and that no thing uses.
func (f *IoT) deleteThingType(name string) (any, *apiError) {
	tt, ok := f.thingTypes[name]
	if !ok {
		return nil, notFound("Thing type %s does not exist", name)
	}
	if tt.deprecated == nil {
		return nil, invalidRequest("Thing type %s must be deprecated before it can be deleted", name)
	}
	if since := f.reg.clock().Sub(*tt.deprecated); since < ThingTypeDeleteDelay {
		return nil, invalidRequest("Thing type %s was deprecated %v ago: it can be deleted %v after its deprecation",
			name, since.Round(time.Second), ThingTypeDeleteDelay)
	}
	for _, t := range f.things {
		if t.TypeName == name {
			return nil, invalidRequest("Can not delete thing type %s: thing %s is still associated with it", name, t.Name)
		}
	}
	delete(f.thingTypes, name)
	return nil, nil
}

type groupProperties struct {
	Description      string            `json:"thingGroupDescription"`
	AttributePayload *attributePayload `json:"attributePayload"`
}

func validateGroupName(name string) *apiError {
	if !groupNameRE.MatchString(name) {
		return invalidRequest("thingGroupName %q is not valid: want 1 to 128 characters of [a-zA-Z0-9:_-]", name)
	}
	return nil
}

func (f *IoT) group(name string) (*thingGroup, *apiError) {
	if e := validateGroupName(name); e != nil {
		return nil, e
	}
	g, ok := f.reg.groups[name]
	if !ok {
		return nil, notFound("Thing group %s does not exist", name)
	}
	return g, nil
}

// rootToParent is the chain of ancestors, root first.
func (f *IoT) rootToParent(g *thingGroup) []*thingGroup {
	var chain []*thingGroup
	for p := g.Parent; p != ""; {
		pg := f.reg.groups[p]
		if pg == nil {
			break
		}
		chain = append([]*thingGroup{pg}, chain...)
		p = pg.Parent
	}
	return chain
}

func (f *IoT) createThingGroup(name string, body []byte) (any, *apiError) {
	if e := validateGroupName(name); e != nil {
		return nil, e
	}
	var in struct {
		Parent     string           `json:"parentGroupName"`
		Properties *groupProperties `json:"thingGroupProperties"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	var desc string
	attrs := map[string]string{}
	if in.Properties != nil {
		desc = in.Properties.Description
		if in.Properties.AttributePayload != nil {
			if e := checkAttributes(in.Properties.AttributePayload.Attributes, false); e != nil {
				return nil, e
			}
			attrs = mergeAttributes(nil, in.Properties.AttributePayload)
		}
	}
	if in.Parent != "" {
		if e := validateGroupName(in.Parent); e != nil {
			return nil, e
		}
		p, ok := f.reg.groups[in.Parent]
		if !ok { // CreateThingGroup has no ResourceNotFoundException
			return nil, invalidRequest("The parent thing group %s does not exist", in.Parent)
		}
		if len(f.rootToParent(p)) >= 6 {
			return nil, invalidRequest("thing group %s would be deeper than the 7 levels a hierarchy may have", name)
		}
	}
	if f.reg.groups == nil {
		f.reg.groups = map[string]*thingGroup{}
	}
	if g, ok := f.reg.groups[name]; ok {
		if g.Parent != in.Parent || g.Description != desc || !maps.Equal(g.Attributes, attrs) {
			return nil, alreadyExists(g.ID, g.ARN, "Thing group %s already exists with different properties", name)
		}
		return map[string]any{"thingGroupName": g.Name, "thingGroupArn": g.ARN, "thingGroupId": g.ID}, nil
	}
	g := &thingGroup{ThingGroup: ThingGroup{Name: name, ARN: iotARN("thinggroup/" + name), ID: newUUID(),
		Description: desc, Attributes: attrs, Parent: in.Parent, Version: 1},
		created: time.Now().UTC(), things: map[string]string{}}
	f.reg.groups[name] = g
	return map[string]any{"thingGroupName": g.Name, "thingGroupArn": g.ARN, "thingGroupId": g.ID}, nil
}

func (f *IoT) describeThingGroup(name string) (any, *apiError) {
	g, e := f.group(name)
	if e != nil {
		return nil, e
	}
	props := map[string]any{"attributePayload": map[string]any{"attributes": g.Attributes}}
	if g.Description != "" {
		props["thingGroupDescription"] = g.Description
	}
	meta := map[string]any{"creationDate": epoch(g.created)}
	if g.Parent != "" {
		meta["parentGroupName"] = g.Parent
		var chain []map[string]string
		for _, a := range f.rootToParent(g) {
			chain = append(chain, map[string]string{"groupName": a.Name, "groupArn": a.ARN})
		}
		meta["rootToParentThingGroups"] = chain
	}
	return map[string]any{"thingGroupName": g.Name, "thingGroupId": g.ID, "thingGroupArn": g.ARN, "version": g.Version,
		"thingGroupProperties": props, "thingGroupMetadata": meta}, nil
}

func (f *IoT) updateThingGroup(name string, body []byte) (any, *apiError) {
	g, e := f.group(name)
	if e != nil {
		return nil, e
	}
	var in struct {
		Properties      *groupProperties `json:"thingGroupProperties"`
		ExpectedVersion *int64           `json:"expectedVersion"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if in.Properties == nil {
		return nil, invalidRequest("thingGroupProperties is required")
	}
	if in.Properties.AttributePayload != nil {
		if e := checkAttributes(in.Properties.AttributePayload.Attributes, true); e != nil {
			return nil, e
		}
	}
	if e := checkVersion(in.ExpectedVersion, g.Version, "thing group", name); e != nil {
		return nil, e
	}
	g.Attributes = mergeAttributes(g.Attributes, in.Properties.AttributePayload)
	g.Description = in.Properties.Description
	g.Version++
	return map[string]any{"version": g.Version}, nil
}

func (f *IoT) deleteThingGroup(name, expectedVersion string) (any, *apiError) {
	if e := validateGroupName(name); e != nil {
		return nil, e
	}
	g, ok := f.reg.groups[name]
	if !ok {
		return nil, nil // AWS answers success for a group that does not exist
	}
	if expectedVersion != "" {
		v, err := strconv.ParseInt(expectedVersion, 10, 64)
		if err != nil {
			return nil, invalidRequest("expectedVersion %q is not a number", expectedVersion)
		}
		if e := checkVersion(&v, g.Version, "thing group", name); e != nil {
			return nil, e
		}
	}
	for _, c := range f.reg.groups {
		if c.Parent == name {
			return nil, invalidRequest("Cannot delete thing group %s: it has child group %s", name, c.Name)
		}
	}
	delete(f.reg.groups, name)
	return nil, nil
}

func (f *IoT) listThingGroups(q url.Values) (any, *apiError) {
	parent := q.Get("parentGroup")
	recursive := q.Get("recursive") != "false"
	prefix := q.Get("namePrefixFilter")
	var names []string
	for _, n := range slices.Sorted(maps.Keys(f.reg.groups)) {
		g := f.reg.groups[n]
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		if parent != "" {
			inside := g.Parent == parent
			if !inside && recursive {
				for _, a := range f.rootToParent(g) {
					inside = inside || a.Name == parent
				}
			}
			if !inside {
				continue
			}
		} else if !recursive && g.Parent != "" {
			continue
		}
		names = append(names, n)
	}
	page, next, e := iotPage(names, q.Get("nextToken"), q.Get("maxResults"), 50, 250)
	if e != nil {
		return nil, e
	}
	groups := make([]map[string]string, 0, len(page))
	for _, n := range page {
		groups = append(groups, map[string]string{"groupName": n, "groupArn": f.reg.groups[n].ARN})
	}
	return withNext(map[string]any{"thingGroups": groups}, "nextToken", next), nil
}

// nameFrom returns the name given directly or in an ARN of the resource type (e.g. "thinggroup").
func nameFrom(name, arn, resource string) (string, *apiError) {
	if name != "" {
		return name, nil
	}
	if n, ok := strings.CutPrefix(arn, iotARN(resource+"/")); ok && n != "" {
		return n, nil
	}
	if arn != "" {
		return "", invalidRequest("%s ARN %q is not one of this account and region", resource, arn)
	}
	return "", invalidRequest("a %s name or ARN is required", resource)
}

func (f *IoT) changeMembership(body []byte, add bool) (any, *apiError) {
	var in struct {
		GroupName string `json:"thingGroupName"`
		GroupArn  string `json:"thingGroupArn"`
		ThingName string `json:"thingName"`
		ThingArn  string `json:"thingArn"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	gn, e := nameFrom(in.GroupName, in.GroupArn, "thinggroup")
	if e != nil {
		return nil, e
	}
	tn, e := nameFrom(in.ThingName, in.ThingArn, "thing")
	if e != nil {
		return nil, e
	}
	g, e := f.group(gn)
	if e != nil {
		return nil, e
	}
	t, e := f.thing(tn)
	if e != nil {
		return nil, e
	}
	if !add {
		delete(g.things, t.Name)
		return nil, nil
	}
	if _, ok := g.things[t.Name]; !ok || g.things[t.Name] != t.ID {
		n := 0
		for _, og := range f.reg.groups {
			if og.things[t.Name] == t.ID {
				n++
			}
		}
		if n >= 10 {
			return nil, invalidRequest("thing %s is already in 10 thing groups", t.Name)
		}
	}
	g.things[t.Name] = t.ID
	return nil, nil
}

func (f *IoT) listThingsInThingGroup(name string, q url.Values) (any, *apiError) {
	g, e := f.group(name)
	if e != nil {
		return nil, e
	}
	names := f.members(g)
	if q.Get("recursive") == "true" {
		set := map[string]bool{}
		for _, n := range names {
			set[n] = true
		}
		for _, c := range f.reg.groups {
			for _, a := range f.rootToParent(c) {
				if a.Name == name {
					for _, n := range f.members(c) {
						set[n] = true
					}
				}
			}
		}
		names = slices.Sorted(maps.Keys(set))
	}
	page, next, e := iotPage(names, q.Get("nextToken"), q.Get("maxResults"), 25, 250)
	if e != nil {
		return nil, e
	}
	return withNext(map[string]any{"things": page}, "nextToken", next), nil
}

func (f *IoT) listThingGroupsForThing(name string, q url.Values) (any, *apiError) {
	t, e := f.thing(name)
	if e != nil {
		return nil, e
	}
	var names []string
	for n, g := range f.reg.groups {
		if g.things[t.Name] == t.ID {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	page, next, e := iotPage(names, q.Get("nextToken"), q.Get("maxResults"), 25, 250)
	if e != nil {
		return nil, e
	}
	groups := make([]map[string]string, 0, len(page))
	for _, n := range page {
		groups = append(groups, map[string]string{"groupName": n, "groupArn": f.reg.groups[n].ARN})
	}
	return withNext(map[string]any{"thingGroups": groups}, "nextToken", next), nil
}
