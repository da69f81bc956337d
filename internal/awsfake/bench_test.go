package awsfake_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/awsfake"
)

func TestConcurrentClients(t *testing.T) {
	srv, cfg := envConfig(t)
	c := iot.NewFromConfig(cfg)
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			csr, _ := newCSR(t, fmt.Sprintf("dev-%d", i))
			out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
			if err == nil {
				_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(fmt.Sprintf("dev-%d", i))})
			}
			if err == nil {
				_, err = c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(fmt.Sprintf("dev-%d", i)), Principal: out.CertificateArn})
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(srv.IoT.Certificates()); got != n {
		t.Errorf("len(Certificates()) = %d, want %d", got, n)
	}
	if got := srv.Calls("iot", "AttachThingPrincipal"); got != n {
		t.Errorf("Calls(iot, AttachThingPrincipal) = %d, want %d", got, n)
	}
}

// BenchmarkCreateCertificateFromCsr measures one SDK round trip that signs a certificate.
func BenchmarkCreateCertificateFromCsr(b *testing.B) {
	srv := awsfake.Start()
	defer srv.Close()
	c := iot.NewFromConfig(srv.Config(context.Background()))
	csr, _ := newCSR(b, "bench")
	in := &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.CreateCertificateFromCsr(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParameter measures the fake's overhead on a minimal SDK round trip.
func BenchmarkGetParameter(b *testing.B) {
	srv := awsfake.Start()
	defer srv.Close()
	srv.SSM.Put("/bench", "v")
	c := ssm.NewFromConfig(srv.Config(context.Background()))
	in := &ssm.GetParameterInput{Name: aws.String("/bench")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetParameter(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
