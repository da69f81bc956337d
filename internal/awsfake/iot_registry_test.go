package awsfake_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestUpdateThingAttributeMerge(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("t1"),
		AttributePayload: &types.AttributePayload{Attributes: map[string]string{"a": "1", "b": "2"}}}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		in    iot.UpdateThingInput
		want  map[string]string
		wantV int64
	}{
		{"merge adds, replaces and removes", iot.UpdateThingInput{AttributePayload: &types.AttributePayload{
			Attributes: map[string]string{"a": "10", "b": "", "c": "3"}, Merge: true}},
			map[string]string{"a": "10", "c": "3"}, 2},
		{"no merge replaces the set", iot.UpdateThingInput{AttributePayload: &types.AttributePayload{
			Attributes: map[string]string{"z": "9"}}}, map[string]string{"z": "9"}, 3},
		{"expected version matches", iot.UpdateThingInput{ExpectedVersion: aws.Int64(3),
			AttributePayload: &types.AttributePayload{Attributes: map[string]string{"y": "8"}, Merge: true}},
			map[string]string{"y": "8", "z": "9"}, 4},
	}
	for _, s := range steps {
		in := s.in
		in.ThingName = aws.String("t1")
		if _, err := c.UpdateThing(ctx, &in); err != nil {
			t.Fatalf("%s: UpdateThing: %v", s.name, err)
		}
		got, _ := srv.IoT.Thing("t1")
		if !maps.Equal(got.Attributes, s.want) || got.Version != s.wantV {
			t.Errorf("%s: thing = %v v%d, want %v v%d", s.name, got.Attributes, got.Version, s.want, s.wantV)
		}
		d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("t1")})
		if err != nil || d.Version != s.wantV {
			t.Errorf("%s: DescribeThing version = %v, %v, want %d", s.name, d, err, s.wantV)
		}
	}

	var conflict *types.VersionConflictException
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("t1"), ExpectedVersion: aws.Int64(1)}); !errors.As(err, &conflict) {
		t.Errorf("UpdateThing with a stale version = %v, want VersionConflictException", err)
	}
	var invalid *types.InvalidRequestException
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("t1"), AttributePayload: &types.AttributePayload{
		Attributes: map[string]string{"a": "1", "b": "2", "c": "3"}, Merge: true}}); !errors.As(err, &invalid) {
		t.Errorf("UpdateThing to 5 attributes without a type = %v, want InvalidRequestException", err)
	}
	var missing *types.ResourceNotFoundException
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("t1"), ThingTypeName: aws.String("nope")}); !errors.As(err, &missing) {
		t.Errorf("UpdateThing to a missing type = %v, want ResourceNotFoundException", err)
	}
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("ghost")}); !errors.As(err, &missing) {
		t.Errorf("UpdateThing of a missing thing = %v, want ResourceNotFoundException", err)
	}

	// A type lifts the 3-attribute limit; removing it needs the attributes back under it.
	srv.IoT.PutThingType("sensor")
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("t1"), ThingTypeName: aws.String("sensor"),
		AttributePayload: &types.AttributePayload{Attributes: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}}}); err != nil {
		t.Fatalf("UpdateThing with a type and 4 attributes: %v", err)
	}
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("t1"), RemoveThingType: true}); !errors.As(err, &invalid) {
		t.Errorf("removing the type of a thing with 4 attributes = %v, want InvalidRequestException", err)
	}
	var refused *types.InvalidRequestException
	if _, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("sensor")}); !errors.As(err, &refused) {
		t.Errorf("DeleteThingType of a type not deprecated = %v, want InvalidRequestException", err)
	}
	if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("sensor")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("sensor")}); !errors.As(err, &refused) {
		t.Errorf("DeleteThingType of a type in use = %v, want InvalidRequestException", err)
	}
	srv.IoT.PutThingType("other")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv.IoT.SetClock(func() time.Time { return now })
	if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("t1"), ThingTypeName: aws.String("other")}); !errors.As(err, &refused) {
		t.Errorf("UpdateThing to a deprecated type = %v, want InvalidRequestException", err)
	}
	// AWS IoT deletes a type only five minutes after its deprecation.
	now = now.Add(awsfake.ThingTypeDeleteDelay - time.Second)
	if _, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("other")}); !errors.As(err, &refused) {
		t.Errorf("DeleteThingType 4m59s after the deprecation = %v, want InvalidRequestException", err)
	}
	now = now.Add(time.Second)
	if _, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("other")}); err != nil {
		t.Errorf("DeleteThingType of a type deprecated five minutes ago, unused = %v", err)
	}
	if names := srv.IoT.ThingTypeNames(); !slices.Equal(names, []string{"sensor"}) {
		t.Errorf("thing types = %v, want [sensor]", names)
	}
}

func TestListThingsPaginates(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	srv.IoT.PutThingType("sensor")
	var want []string
	for i := range 120 {
		name := fmt.Sprintf("thing-%03d", i)
		in := &iot.CreateThingInput{ThingName: aws.String(name)}
		if i%2 == 0 {
			in.ThingTypeName = aws.String("sensor")
			want = append(want, name)
		}
		if _, err := c.CreateThing(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	pages := 0
	p := iot.NewListThingsPaginator(c, &iot.ListThingsInput{ThingTypeName: aws.String("sensor"), MaxResults: aws.Int32(25)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, th := range out.Things {
			if aws.ToString(th.ThingTypeName) != "sensor" || th.Version != 1 {
				t.Errorf("ListThings item = %+v, want type sensor, version 1", th)
			}
			got = append(got, aws.ToString(th.ThingName))
		}
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("ListThings = %d things in %d pages, want %d in 3", len(got), pages, len(want))
	}
}

func TestThingGroups(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	mk := func(name, parent string, attrs map[string]string) error {
		in := &iot.CreateThingGroupInput{ThingGroupName: aws.String(name), ThingGroupProperties: &types.ThingGroupProperties{
			ThingGroupDescription: aws.String(name + " group"), AttributePayload: &types.AttributePayload{Attributes: attrs}}}
		if parent != "" {
			in.ParentGroupName = aws.String(parent)
		}
		_, err := c.CreateThingGroup(ctx, in)
		return err
	}
	if err := mk("root", "", map[string]string{"site": "berlin"}); err != nil {
		t.Fatal(err)
	}
	if err := mk("mid", "root", nil); err != nil {
		t.Fatal(err)
	}
	if err := mk("leaf", "mid", nil); err != nil {
		t.Fatal(err)
	}
	var noParent *types.InvalidRequestException
	if err := mk("orphan", "nope", nil); !errors.As(err, &noParent) {
		t.Errorf("CreateThingGroup under a missing parent = %v, want InvalidRequestException", err)
	}
	if err := mk("root", "", map[string]string{"site": "berlin"}); err != nil {
		t.Errorf("CreateThingGroup again with the same properties = %v, want success", err)
	}
	var exists *types.ResourceAlreadyExistsException
	if err := mk("root", "", map[string]string{"site": "paris"}); !errors.As(err, &exists) {
		t.Errorf("CreateThingGroup again with other properties = %v, want ResourceAlreadyExistsException", err)
	}

	d, err := c.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String("leaf")})
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, g := range d.ThingGroupMetadata.RootToParentThingGroups {
		chain = append(chain, aws.ToString(g.GroupName))
	}
	if aws.ToString(d.ThingGroupMetadata.ParentGroupName) != "mid" || !slices.Equal(chain, []string{"root", "mid"}) || d.Version != 1 {
		t.Errorf("DescribeThingGroup(leaf) parent %v chain %v version %d, want mid, [root mid], 1",
			aws.ToString(d.ThingGroupMetadata.ParentGroupName), chain, d.Version)
	}

	up, err := c.UpdateThingGroup(ctx, &iot.UpdateThingGroupInput{ThingGroupName: aws.String("root"), ExpectedVersion: aws.Int64(1),
		ThingGroupProperties: &types.ThingGroupProperties{ThingGroupDescription: aws.String("new"),
			AttributePayload: &types.AttributePayload{Attributes: map[string]string{"floor": "2"}, Merge: true}}})
	if err != nil || up.Version != 2 {
		t.Fatalf("UpdateThingGroup = %v, %v, want version 2", up, err)
	}
	if g, _ := srv.IoT.ThingGroup("root"); !maps.Equal(g.Attributes, map[string]string{"site": "berlin", "floor": "2"}) || g.Description != "new" {
		t.Errorf("root after a merge update = %+v", g)
	}
	var conflict *types.VersionConflictException
	if _, err := c.UpdateThingGroup(ctx, &iot.UpdateThingGroupInput{ThingGroupName: aws.String("root"), ExpectedVersion: aws.Int64(1),
		ThingGroupProperties: &types.ThingGroupProperties{}}); !errors.As(err, &conflict) {
		t.Errorf("UpdateThingGroup with a stale version = %v, want VersionConflictException", err)
	}

	// Membership, by name and by ARN; a re-created thing is not a member of its predecessor's groups.
	for _, n := range []string{"a", "b"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("leaf"), ThingName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	leaf, _ := srv.IoT.ThingGroup("leaf")
	if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupArn: aws.String(leaf.ARN),
		ThingArn: aws.String("arn:aws:iot:us-east-1:123456789012:thing/b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("root"), ThingName: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	in, err := c.ListThingsInThingGroup(ctx, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String("leaf")})
	if err != nil || !slices.Equal(in.Things, []string{"a", "b"}) {
		t.Errorf("ListThingsInThingGroup(leaf) = %v, %v", in, err)
	}
	rec, err := c.ListThingsInThingGroup(ctx, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String("root"), Recursive: true})
	if err != nil || !slices.Equal(rec.Things, []string{"a", "b"}) {
		t.Errorf("ListThingsInThingGroup(root, recursive) = %v, %v", rec, err)
	}
	forB, err := c.ListThingGroupsForThing(ctx, &iot.ListThingGroupsForThingInput{ThingName: aws.String("b")})
	if err != nil || len(forB.ThingGroups) != 2 {
		t.Errorf("ListThingGroupsForThing(b) = %v, %v, want leaf and root", forB, err)
	}
	if _, err := c.RemoveThingFromThingGroup(ctx, &iot.RemoveThingFromThingGroupInput{ThingGroupName: aws.String("leaf"), ThingName: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	if got := srv.IoT.GroupMembers("leaf"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("leaf members after removing b = %v, want [a]", got)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if got := srv.IoT.GroupMembers("leaf"); len(got) != 0 {
		t.Errorf("leaf members after a was deleted and re-created = %v, want none", got)
	}

	// ListThingGroups: all, roots only, under a parent; paginated.
	list := func(in *iot.ListThingGroupsInput) []string {
		var names []string
		p := iot.NewListThingGroupsPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range out.ThingGroups {
				names = append(names, aws.ToString(g.GroupName))
			}
		}
		return names
	}
	if got := list(&iot.ListThingGroupsInput{MaxResults: aws.Int32(1)}); !slices.Equal(got, []string{"leaf", "mid", "root"}) {
		t.Errorf("ListThingGroups = %v", got)
	}
	if got := list(&iot.ListThingGroupsInput{Recursive: aws.Bool(false)}); !slices.Equal(got, []string{"root"}) {
		t.Errorf("ListThingGroups(recursive=false) = %v, want [root]", got)
	}
	if got := list(&iot.ListThingGroupsInput{ParentGroup: aws.String("root")}); !slices.Equal(got, []string{"leaf", "mid"}) {
		t.Errorf("ListThingGroups(parent root) = %v, want [leaf mid]", got)
	}

	// A group with children cannot be deleted; a missing one deletes without error.
	var invalid *types.InvalidRequestException
	if _, err := c.DeleteThingGroup(ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("mid")}); !errors.As(err, &invalid) {
		t.Errorf("DeleteThingGroup(mid) with a child = %v, want InvalidRequestException", err)
	}
	for _, g := range []string{"leaf", "mid", "root", "never-existed"} {
		if _, err := c.DeleteThingGroup(ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String(g)}); err != nil {
			t.Errorf("DeleteThingGroup(%s) = %v", g, err)
		}
	}
	if got := srv.IoT.ThingGroups(); len(got) != 0 {
		t.Errorf("groups left = %v", got)
	}
}
