package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// captureLogs sends the default slog logger to a buffer for the test.
func captureLogs(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// TestSignerUpdateRollback: create → update (new validity, so a new certificate) → the update fails elsewhere and
// CloudFormation rolls back, sending Update with the old properties. The answer is the certificate issued for
// them, which CloudFormation restores as the registered AWS::IoT::Certificate: the pem attribute and the
// registered certificate stay the same.
func TestSignerUpdateRollback(t *testing.T) {
	srv, h, client := setup(t)
	ctx := context.Background()
	register := func(pem string) {
		t.Helper()
		if _, err := client.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
			CertificatePem: aws.String(pem), Status: types.CertificateStatusInactive,
		}); err != nil {
			t.Fatal(err)
		}
	}
	created, err := h.Handle(ctx, event(t, "signer-create.json"))
	if err != nil {
		t.Fatal(err)
	}
	register(created.Data["pem"])

	update := event(t, "signer-update-validity.json")
	update.PhysicalResourceID = created.PhysicalResourceID
	updated, err := h.Handle(ctx, update)
	if err != nil {
		t.Fatal(err)
	}
	if updated.PhysicalResourceID == created.PhysicalResourceID {
		t.Fatal("Handle(update validity) kept the certificate, want a new one")
	}
	register(updated.Data["pem"])
	issued := srv.Calls(awsfake.ServiceIoT, "DescribeEndpoint")

	rollback := event(t, "signer-update-validity.json")
	rollback.ResourceProperties, rollback.OldResourceProperties = update.OldResourceProperties, update.ResourceProperties
	rollback.PhysicalResourceID = updated.PhysicalResourceID
	back, err := h.Handle(ctx, rollback)
	if err != nil {
		t.Fatalf("Handle(update rollback) = %v", err)
	}
	if back.PhysicalResourceID != created.PhysicalResourceID || back.Data["pem"] != created.Data["pem"] {
		t.Errorf("Handle(update rollback) = certificate %s, want the original %s with its PEM", back.PhysicalResourceID, created.PhysicalResourceID)
	}
	if got := srv.Calls(awsfake.ServiceIoT, "DescribeEndpoint"); got != issued {
		t.Errorf("Handle(update rollback) issued a certificate (DescribeEndpoint calls %d, want %d)", got, issued)
	}

	// Rollback cleanup deletes the resource of the failed update: its record goes, the original's stays.
	cleanup := event(t, "signer-delete.json")
	cleanup.PhysicalResourceID, cleanup.ResourceProperties = updated.PhysicalResourceID, update.ResourceProperties
	if _, err := h.Handle(ctx, cleanup); err != nil {
		t.Fatal(err)
	}
	params := srv.SSM.Names()
	if len(params) != 1 || !strings.HasPrefix(params[0], DefaultParameterPath+"/certificate-based-stack/CertificateSigner/") {
		t.Errorf("parameters after the rollback cleanup = %v, want the original certificate's record only", params)
	}
	// A second rollback to the same properties still answers the same.
	if again, err := h.Handle(ctx, rollback); err != nil || again.PhysicalResourceID != created.PhysicalResourceID {
		t.Errorf("Handle(update rollback, again) = %s, %v; want %s", again.PhysicalResourceID, err, created.PhysicalResourceID)
	}
	del := event(t, "signer-delete.json")
	del.PhysicalResourceID, del.ResourceProperties = created.PhysicalResourceID, update.OldResourceProperties
	if _, err := h.Handle(ctx, del); err != nil {
		t.Fatal(err)
	}
	if params := srv.SSM.Names(); len(params) != 0 {
		t.Errorf("parameters after the stack's delete = %v, want none", params)
	}
}

// TestSignerRememberFailure: a certificate that could not be recorded is not returned, so no update can later
// fail to roll back to it.
func TestSignerRememberFailure(t *testing.T) {
	srv, h, _ := setup(t)
	srv.Inject(awsfake.ServiceSSM, "PutParameter", awsfake.Fault{Status: 400, Code: "AccessDeniedException", Message: "not authorized"})
	if _, err := h.Handle(context.Background(), event(t, "signer-create.json")); err == nil || !strings.Contains(err.Error(), "remember issued certificate") {
		t.Errorf("Handle(create, parameter denied) = %v, want a remember error", err)
	}
}

// TestReleaserDetaches: things and policies attached to the certificate outside the stack are detached before
// CloudFormation deletes it, and the releaser says what it detached.
func TestReleaserDetaches(t *testing.T) {
	srv, h, client := setup(t)
	ctx := context.Background()
	created, err := h.Handle(ctx, event(t, "signer-create.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
		CertificatePem: aws.String(created.Data["pem"]), Status: types.CertificateStatusActive,
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.CertificateArn
	srv.IoT.PutPolicy("added-by-hand", `{"Version":"2012-10-17","Statement":[]}`)
	if _, err := client.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("partner-gateway")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("partner-gateway"), Principal: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("added-by-hand"), Target: arn}); err != nil {
		t.Fatal(err)
	}

	req := event(t, "releaser-delete.json")
	req.PhysicalResourceID, req.ResourceProperties["CertificateId"] = created.PhysicalResourceID, created.PhysicalResourceID
	logs := captureLogs(t)
	resp, err := h.Handle(ctx, req)
	if err != nil {
		t.Fatalf("Handle(releaser delete) = %v", err)
	}
	if resp.Data["detachedThings"] != "partner-gateway" || resp.Data["detachedPolicies"] != "added-by-hand" {
		t.Errorf("Handle(releaser delete) data = %v, want the detached thing and policy", resp.Data)
	}
	if !strings.Contains(logs.String(), "partner-gateway") || !strings.Contains(logs.String(), "added-by-hand") {
		t.Errorf("logs do not say what was detached:\n%s", logs)
	}
	// What CloudFormation does next: delete the AWS::IoT::Certificate.
	if _, err := client.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(created.PhysicalResourceID)}); err != nil {
		t.Errorf("DeleteCertificate after the releaser = %v, want success", err)
	}
}
