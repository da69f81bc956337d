package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// -c certificate_generation=N: a new key and certificate go into the secret, the replaced certificate stays ACTIVE
// and attached for the grace period, then the schedule retires it; a rollback's newer certificate and the stack's
// deletion do not wait.
func TestCertificateGenerations(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	now := time.Now()
	f.h.Now = func() time.Time { return now }
	f.srv.IoT.SetDetachDelay(0)
	f.srv.IoT.PutPolicy("ThingPolicy", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}`)
	if _, err := f.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("poolcontroller1")}); err != nil {
		t.Fatal(err)
	}
	// The first generation's properties are a stack deployed before certificate_generation was ever given.
	props := func(gen string) Properties {
		if gen == "1" {
			return Properties{ThingName: "poolcontroller1", KeyAlgorithm: "EC_P256", SecretID: f.secret}
		}
		return Properties{ThingName: "poolcontroller1", KeyAlgorithm: "EC_P256", SecretID: f.secret, Generation: gen, GraceDays: "7", PolicyName: "ThingPolicy"}
	}
	// What CloudFormation's attachments do for the current certificate, and undo for a replaced one.
	attach := func(id string, on bool) {
		c, _ := f.srv.IoT.Certificate(id)
		if on {
			f.iot.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("ThingPolicy"), Target: aws.String(c.ARN)})                       //nolint:errcheck
			f.iot.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("poolcontroller1"), Principal: aws.String(c.ARN)}) //nolint:errcheck
			return
		}
		f.iot.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String("ThingPolicy"), Target: aws.String(c.ARN)})                       //nolint:errcheck
		f.iot.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("poolcontroller1"), Principal: aws.String(c.ARN)}) //nolint:errcheck
	}
	working := func(id string) bool {
		c, ok := f.srv.IoT.Certificate(id)
		return ok && c.Status == "ACTIVE" && len(f.srv.IoT.PrincipalPolicies(c.ARN)) == 1 && len(f.srv.IoT.ThingPrincipals("poolcontroller1")) > 0
	}
	update := func(physical string, from, to string) Response {
		old := props(from)
		return f.mustHandle(Event{RequestType: "Update", ResourceType: ResourceType, RequestID: "req-" + to + "-" + physical[:6],
			PhysicalResourceID: physical, ResourceProperties: props(to), OldResourceProperties: &old})
	}
	del := func(physical, gen string) {
		f.mustHandle(Event{RequestType: "Delete", ResourceType: ResourceType, RequestID: "del-" + physical[:6], PhysicalResourceID: physical, ResourceProperties: props(gen)})
	}

	first := f.mustHandle(Event{RequestType: "Create", ResourceType: ResourceType, RequestID: "create-1", ResourceProperties: props("1")}).PhysicalResourceID
	attach(first, true)
	if sv := f.secretValue(); sv.Generation != 0 || len(sv.Superseded) != 0 {
		t.Fatalf("first generation's secret = gen %d, superseded %v; want the seed's four keys", sv.Generation, sv.Superseded)
	}
	// Redeploy with generation 2.
	second := update(first, "1", "2").PhysicalResourceID
	if second == first {
		t.Fatal("a new generation kept the certificate")
	}
	attach(second, true)
	attach(first, false)
	del(first, "1") // CloudFormation's clean-up of the replaced certificate
	sv := f.secretValue()
	if sv.CertificateID != second || sv.Generation != 2 || sv.GraceDays != 7 || len(sv.Superseded) != 1 || sv.Superseded[0].CertificateID != first {
		t.Fatalf("secret = %s gen %d superseded %v; want the second certificate with the first superseded", sv.CertificateID, sv.Generation, sv.Superseded)
	}
	c1, _ := f.srv.IoT.Certificate(first)
	if c1.Status != "ACTIVE" || len(f.srv.IoT.PrincipalPolicies(c1.ARN)) != 1 {
		t.Fatalf("replaced certificate is %s with policies %v; want ACTIVE and attached for the grace period", c1.Status, f.srv.IoT.PrincipalPolicies(c1.ARN))
	}
	// The schedule within and after the grace period.
	retire := Event{RequestType: "Retire", SecretIDs: []string{f.secret}}
	f.mustHandle(retire)
	if !working(first) {
		t.Fatal("the replaced certificate was retired within the grace period")
	}
	now = now.Add(8 * 24 * time.Hour)
	f.mustHandle(retire)
	if _, ok := f.srv.IoT.Certificate(first); ok {
		t.Fatal("the replaced certificate outlived the grace period")
	}
	if sv := f.secretValue(); len(sv.Superseded) != 0 || !working(second) {
		t.Fatalf("after retirement: superseded %v, second working %v", sv.Superseded, working(second))
	}

	// A failed update to generation 3 rolls back: the newer certificate is deleted, not kept.
	third := update(second, "2", "3").PhysicalResourceID
	back := update(third, "3", "2").PhysicalResourceID
	if back != second {
		t.Fatalf("rollback returned %s, want the second certificate %s", back, second)
	}
	del(third, "3")
	if _, ok := f.srv.IoT.Certificate(third); ok {
		t.Fatal("the rolled-back certificate was kept")
	}
	// Generation 4 for real, then the stack is deleted within the grace period: both go.
	fourth := update(second, "2", "4").PhysicalResourceID
	attach(fourth, true)
	attach(second, false)
	del(second, "2")
	if !working(second) {
		t.Fatal("the replaced certificate is not kept")
	}
	del(fourth, "4")
	if n := len(f.srv.IoT.Certificates()); n != 0 {
		t.Fatalf("%d certificates left after the stack's deletion, want none", n)
	}
	if _, err := f.handle(Event{RequestType: "Create", ResourceType: ResourceType, RequestID: "bad", ResourceProperties: Properties{ThingName: "x", SecretID: f.secret, Generation: "0"}}); err == nil {
		t.Fatal("Generation 0 accepted")
	}
}
