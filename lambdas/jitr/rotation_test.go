package main

import (
	"context"
	"slices"
	"testing"
)

// Device-certificate rotation: a device of an existing thing presents a second certificate of our CA (its new one)
// while the first is still ACTIVE. JITR registers it for the same thing and leaves the first alone; retiring the
// first is the rotation's job, after the new certificate has connected.
func TestSecondCertificateOfAnExistingThing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	first := f.connect(f.ca.issue(t, deviceTemplate("thing-rot1"), nil))
	if _, err := f.h.Handle(ctx, first); err != nil {
		t.Fatalf("Handle(first) error = %v", err)
	}
	second := f.connect(f.ca.issue(t, deviceTemplate("thing-rot1"), nil))
	res, err := f.h.Handle(ctx, second)
	if err != nil || res.Status != "activated" || res.ThingName != "thing-rot1" {
		t.Fatalf("Handle(second) = %+v, %v; want activated for thing-rot1", res, err)
	}
	a, _ := f.srv.IoT.Certificate(first.CertificateID)
	b, _ := f.srv.IoT.Certificate(second.CertificateID)
	if a.Status != "ACTIVE" || b.Status != "ACTIVE" {
		t.Fatalf("statuses = %s, %s; want both ACTIVE", a.Status, b.Status)
	}
	if got := f.srv.IoT.ThingPrincipals("thing-rot1"); !slices.Equal(got, []string{a.ARN, b.ARN}) {
		t.Fatalf("ThingPrincipals = %v, want both certificates", got)
	}
	if got := f.srv.IoT.PrincipalPolicies(b.ARN); !slices.Equal(got, []string{DefaultPolicyName}) {
		t.Fatalf("PrincipalPolicies(second) = %v, want [%s]", got, DefaultPolicyName)
	}
}
