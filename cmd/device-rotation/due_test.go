package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/pki"
)

// due turns Device Defender's expiring-certificate findings into the due group, and only those things.
func TestDue(t *testing.T) {
	srv := awsfake.New(t)
	ctx := context.Background()
	c := iot.NewFromConfig(srv.Config(ctx))
	client := func(context.Context) (IoTAPI, error) { return c, nil }
	if _, err := c.CreateJobTemplate(ctx, &iot.CreateJobTemplateInput{JobTemplateId: aws.String(wire.TemplateID), Description: aws.String("d"), Document: aws.String(wire.JobDocumentJSON())}); err != nil {
		t.Fatal(err)
	}
	certOf := map[string]string{}
	for _, n := range []string{"old-1", "old-2", "fresh", "stale-member"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
		k, _ := pki.GenerateKey(pki.KeyECP256)
		csr, _ := pki.NewCSR(k, n)
		out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(string(csr)), SetAsActive: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(n), Principal: out.CertificateArn}); err != nil {
			t.Fatal(err)
		}
		certOf[n] = aws.ToString(out.CertificateId)
	}
	now := time.Now()
	var recent []awsfake.AuditFinding
	for _, n := range []string{"old-1", "old-2", "old-2"} {
		recent = append(recent, awsfake.AuditFinding{Check: ExpiringCheck, DeviceCertificateID: certOf[n]})
	}
	recent = append(recent, awsfake.AuditFinding{Check: "CA_CERTIFICATE_EXPIRING_CHECK", CACertificateID: "ca-1"})
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "task-0", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-72 * time.Hour),
		Findings: []awsfake.AuditFinding{{Check: ExpiringCheck, DeviceCertificateID: certOf["fresh"]}}})
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "task-1", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-time.Hour), Findings: recent})
	// A thing rotated since the last run is in the group and must leave it.
	if _, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String(DueGroup)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String(DueGroup), ThingName: aws.String("stale-member")}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runDue(ctx, []string{"-start"}, &out, &errOut, client, now); code != 0 {
		t.Fatalf("due -start = %d, %s", code, errOut.String())
	}
	if got := srv.IoT.GroupMembers(DueGroup); !slices.Equal(got, []string{"old-1", "old-2"}) {
		t.Fatalf("due group = %v, want [old-1 old-2]", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	job := lines[len(lines)-1]
	for _, n := range []string{"old-1", "old-2"} {
		if _, ok := srv.IoT.JobExecutionOf(n, job); !ok {
			t.Errorf("job %s has no execution for %s", job, n)
		}
	}
	if _, ok := srv.IoT.JobExecutionOf("stale-member", job); ok {
		t.Error("the job targets a thing no finding names")
	}
	// An audit task by id; a certificate retired since the audit is not due.
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(certOf["old-1"]), NewStatus: iottypes.CertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := runDue(ctx, []string{"-task-id", "task-1"}, &out, &errOut, client, now); code != 0 {
		t.Fatalf("due -task-id = %d, %s", code, errOut.String())
	}
	if got := srv.IoT.GroupMembers(DueGroup); !slices.Equal(got, []string{"old-2"}) {
		t.Fatalf("due group = %v, want [old-2]", got)
	}
	if code := runDue(ctx, []string{"-days", "0"}, &out, &errOut, client, now); code != 2 {
		t.Fatalf("due -days 0 = %d, want 2", code)
	}
}
