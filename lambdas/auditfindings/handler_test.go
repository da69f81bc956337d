package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/metrics/metricstest"
)

// selfSigned is a certificate that ends at notAfter (isCA for a CA certificate).
func selfSigned(t *testing.T, cn string, notAfter time.Time, isCA bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: notAfter, BasicConstraintsValid: isCA, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestCountsTheNewestRunOfTheScheduledAudit(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	ctx := context.Background()
	client := iot.NewFromConfig(srv.Config(ctx))
	now := time.Now().UTC()
	device := func(cn string, left time.Duration) string {
		out, err := client.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
			CertificatePem: aws.String(selfSigned(t, cn, now.Add(left), false)), Status: iottypes.CertificateStatusActive})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.CertificateId)
	}
	ca, err := client.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(selfSigned(t, "Expiring CA", now.Add(5*24*time.Hour), true)), CertificateMode: iottypes.CertificateModeSniOnly})
	if err != nil {
		t.Fatal(err)
	}
	in3, in20 := device("d3", 3*24*time.Hour), device("d20", 20*24*time.Hour)
	gone := "0000000000000000000000000000000000000000000000000000000000000000"
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "today", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-time.Hour),
		ScheduledAuditName: "IotCertOps-daily", Findings: []awsfake.AuditFinding{
			{Check: deviceExpiring, DeviceCertificateID: in3}, {Check: deviceExpiring, DeviceCertificateID: in20},
			{Check: deviceExpiring, DeviceCertificateID: gone}, {Check: caExpiring, CACertificateID: aws.ToString(ca.CertificateId)},
			{Check: "LOGGING_DISABLED_CHECK"},
		}})
	// Not counted: yesterday's run, another scheduled audit's run, an on-demand audit.
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "yesterday", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-20 * time.Hour),
		ScheduledAuditName: "IotCertOps-daily", Findings: []awsfake.AuditFinding{{Check: deviceExpiring, DeviceCertificateID: in3}}})
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "operator", Type: "SCHEDULED_AUDIT_TASK", Status: "COMPLETED", Start: now.Add(-time.Minute),
		ScheduledAuditName: "operator-weekly", Findings: []awsfake.AuditFinding{{Check: deviceExpiring, DeviceCertificateID: in20}}})
	srv.IoT.PutAuditTask(awsfake.AuditTask{ID: "ondemand", Type: "ON_DEMAND_AUDIT_TASK", Status: "COMPLETED", Start: now,
		Findings: []awsfake.AuditFinding{{Check: deviceExpiring, DeviceCertificateID: in20}}})

	rec := metricstest.Capture(t)
	h, err := newHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.ScheduledAudit = "IotCertOps-daily"
	got, err := h.Handle(ctx, events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{Message: "not json"}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{TaskID: "today", Device30: 2, CA30: 1, Device7: 1, CA7: 1, Unknown: 1}
	if got != want {
		t.Errorf("Handle = %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		name, kind string
		want       float64
	}{
		{metrics.CertificatesExpiring, "Device", 2}, {metrics.CertificatesExpiring, "CA", 1},
		{metrics.CertificatesExpiring7, "Device", 1}, {metrics.CertificatesExpiring7, "CA", 1},
	} {
		if v := rec.Sum(t, c.name, map[string]string{"Capability": "Ops", "Kind": c.kind}); v != c.want {
			t.Errorf("%s %s = %v, want %v", c.name, c.kind, v, c.want)
		}
	}
	if n := len(rec.Events(t)); n != 4 {
		t.Errorf("%d metric lines, want 4", n)
	}
}

func TestNoRunPublishesNothing(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	rec := metricstest.Capture(t)
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := h.Handle(context.Background(), events.SNSEvent{}); err != nil || c.TaskID != "" {
		t.Errorf("Handle = %+v, %v; want no task, no error", c, err)
	}
	if evs := rec.Events(t); len(evs) != 0 {
		t.Errorf("published %v, want nothing (no data is not zero expiring certificates)", evs)
	}
	srv.Inject(awsfake.ServiceIoT, "ListAuditTasks", awsfake.Fault{Status: 400, Code: "InvalidRequestException"})
	if _, err := h.Handle(context.Background(), events.SNSEvent{}); err == nil {
		t.Error("Handle with ListAuditTasks failing = nil error")
	}
}
