package awsfake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// importN imports n self-signed certificates created one minute apart (the first is the oldest) and returns their ids.
func importN(t *testing.T, srv *awsfake.Server, n int) []string {
	t.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := make([]awsfake.ImportedCertificate, n)
	for i := range in {
		in[i] = awsfake.ImportedCertificate{PEM: selfSigned(t, fmt.Sprintf("c%d", i)), Created: base.Add(time.Duration(i) * time.Minute)}
	}
	ids, err := srv.IoT.ImportCertificates(in)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func listAll(t *testing.T, c *iot.Client, in *iot.ListCertificatesInput) (ids []string, pages int) {
	t.Helper()
	p := iot.NewListCertificatesPaginator(c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListCertificates page %d: %v", pages+1, err)
		}
		pages++
		for _, s := range out.Certificates {
			ids = append(ids, aws.ToString(s.CertificateId))
		}
	}
	return ids, pages
}

func TestListCertificates(t *testing.T) {
	srv, c := newIoT(t)
	ids := importN(t, srv, 60)
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	got, pages := listAll(t, c, &iot.ListCertificatesInput{})
	if !slices.Equal(got, newestFirst) || pages != 3 {
		t.Errorf("ListCertificates (default page of 25) = %d ids in %d pages, want the 60 newest first in 3", len(got), pages)
	}
	got, pages = listAll(t, c, &iot.ListCertificatesInput{AscendingOrder: true, PageSize: aws.Int32(7)})
	if !slices.Equal(got, ids) || pages != 9 {
		t.Errorf("ListCertificates ascending, pages of 7 = %d ids in %d pages, want the 60 oldest first in 9", len(got), pages)
	}

	for _, tc := range []struct {
		name string
		in   *iot.ListCertificatesInput
	}{
		{"page size 251", &iot.ListCertificatesInput{PageSize: aws.Int32(251)}},
		{"page size 0", &iot.ListCertificatesInput{PageSize: aws.Int32(0)}},
		{"foreign marker", &iot.ListCertificatesInput{Marker: aws.String("bm90IGEgbWFya2Vy")}},
	} {
		_, err := c.ListCertificates(context.Background(), tc.in)
		var ire *iottypes.InvalidRequestException
		if !errors.As(err, &ire) {
			t.Errorf("%s: error = %v, want InvalidRequestException", tc.name, err)
		}
	}
}

// TestListCertificatesDeletedWhileListing: a certificate deleted after its page was answered, the last of the page
// included, neither hides nor repeats another one, and describing it answers ResourceNotFoundException.
func TestListCertificatesDeletedWhileListing(t *testing.T) {
	srv, c := newIoT(t)
	ids := importN(t, srv, 30)
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)
	lastOfPage1, onPage1 := newestFirst[9], newestFirst[3]
	srv.IoT.AttachThingToCertificate(onPage1, "t1", "", map[string]string{"a": "b"})
	srv.IoT.AttachPolicyToCertificate(onPage1, "p1")
	srv.IoT.DeleteWhenListed(lastOfPage1, onPage1)

	got, pages := listAll(t, c, &iot.ListCertificatesInput{PageSize: aws.Int32(10)})
	if !slices.Equal(got, newestFirst) || pages != 3 {
		t.Errorf("ListCertificates = %v in %d pages, want every certificate once, newest first, in 3", got, pages)
	}
	for _, id := range []string{lastOfPage1, onPage1} {
		_, err := c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
		var nf *iottypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("DescribeCertificate(%s) after deletion: %v, want ResourceNotFoundException", id, err)
		}
	}
	if ps := srv.IoT.ThingPrincipals("t1"); len(ps) != 0 {
		t.Errorf("thing t1 still has principals %v after its certificate was deleted", ps)
	}
	got, _ = listAll(t, c, &iot.ListCertificatesInput{PageSize: aws.Int32(250)})
	if len(got) != 28 {
		t.Errorf("second listing = %d certificates, want 28", len(got))
	}
}

// TestListPrincipalThingsIndex: the principal index follows attach, detach (after AWS's detach delay) and delete.
func TestListPrincipalThingsIndex(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	srv.IoT.SetDetachDelay(0)
	ids := importN(t, srv, 2)
	arn := "arn:aws:iot:" + awsfake.Region + ":" + awsfake.AccountID + ":cert/" + ids[0]
	things := func() []string {
		out, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Things
	}
	for _, name := range []string{"b", "a"} {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := things(); len(got) != 0 {
		t.Fatalf("things of a fresh certificate = %v", got)
	}
	for _, name := range []string{"b", "a"} {
		if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(name), Principal: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := things(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("things after attach = %v, want [a b]", got)
	}
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("b"), Principal: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if got := things(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("things after detaching b = %v, want [a]", got)
	}
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("a"), Principal: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if got := things(); len(got) != 0 {
		t.Errorf("things after detach and delete = %v, want none", got)
	}
}
