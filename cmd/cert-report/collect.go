package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/iotcert/iotcert/internal/capability"
)

// IoTAPI is what the report calls.
type IoTAPI interface {
	iot.ListCertificatesAPIClient
	iot.ListPrincipalThingsAPIClient
	iot.ListAttachedPoliciesAPIClient
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	DescribeThing(context.Context, *iot.DescribeThingInput, ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
}

// The operations the report calls, in the order of its API-call summary.
var operations = []string{"ListCertificates", "DescribeCertificate", "ListPrincipalThings", "ListAttachedPolicies", "DescribeThing"}

// certRow is one certificate of the report: only what it shows, since a report holds one per certificate.
type certRow struct {
	ID, Status, Mode   string
	CAID               string
	NotAfter           time.Time
	IssuerKind, Issuer string
	Capability, Basis  string
	Things, Policies   []string
}

// thingInfo is what the report keeps of a thing attached to a certificate: its capability mark, if any.
type thingInfo struct {
	Name, Mark string
	gone       bool
}

// stats counts the report's progress; safe for concurrent use.
type stats struct {
	listed, described, gone atomic.Int64
	calls                   sync.Map // operation → *atomic.Int64: attempts sent, retries included
}

func (s *stats) call(op string) {
	v, _ := s.calls.LoadOrStore(op, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Calls is the number of requests sent per operation, retries included.
func (s *stats) Calls(op string) int64 {
	if v, ok := s.calls.Load(op); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// limitAndCount is an SDK middleware placed after the retryer, so that every attempt, retries included, waits for its
// operation's limiter and is counted.
func limitAndCount(limits map[string]*limiter, st *stats) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Finalize.Insert(middleware.FinalizeMiddlewareFunc("CertReportRateLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				op := awsmiddleware.GetOperationName(ctx)
				if err := limits[op].Wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
				st.call(op)
				return next.HandleFinalize(ctx, in)
			}), "Retry", middleware.After)
	}
}

// collector gathers every certificate of the account and region with its things and policies.
type collector struct {
	IoT        IoTAPI
	Workers    int
	JITRPolicy string
	Stats      *stats
	// Gone receives the id of each certificate deleted while the report ran (skipped, not an error).
	Gone func(id string)
	// Keep, when set, says which described certificates the report keeps: memory grows with what is shown, not with
	// the account.
	Keep func(certRow) bool

	mu     sync.Mutex
	things map[string]*thingEntry
}

type thingEntry struct {
	once sync.Once
	info thingInfo
	err  error
}

// collect lists every certificate and describes them concurrently (Workers at a time; the limiters bound the rate).
func (c *collector) collect(ctx context.Context) ([]certRow, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.things = map[string]*thingEntry{}
	ids := make(chan iottypes.Certificate, 500)
	go func() {
		defer close(ids)
		p := iot.NewListCertificatesPaginator(c.IoT, &iot.ListCertificatesInput{PageSize: aws.Int32(250)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				cancel(fmt.Errorf("list certificates: %w", err))
				return
			}
			for _, s := range out.Certificates {
				c.Stats.listed.Add(1)
				select {
				case ids <- s:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	var (
		mu   sync.Mutex
		rows []certRow
		wg   sync.WaitGroup
	)
	for range max(c.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ids {
				row, ok, err := c.one(ctx, s)
				if err != nil {
					cancel(err)
					return
				}
				if !ok {
					c.Stats.gone.Add(1)
					if c.Gone != nil {
						c.Gone(aws.ToString(s.CertificateId))
					}
					continue
				}
				c.Stats.described.Add(1)
				if c.Keep != nil && !c.Keep(row) {
					continue
				}
				mu.Lock()
				rows = append(rows, row)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return rows, nil
}

func notFound(err error) bool {
	var nf *iottypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// one describes a certificate; ok is false when it no longer exists.
func (c *collector) one(ctx context.Context, s iottypes.Certificate) (row certRow, ok bool, err error) {
	id := aws.ToString(s.CertificateId)
	d, err := c.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if notFound(err) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	desc := d.CertificateDescription
	if desc == nil {
		return row, false, fmt.Errorf("describe certificate %s: the answer has no certificateDescription", id)
	}
	arn := aws.ToString(desc.CertificateArn)
	row = certRow{ID: id, Status: string(desc.Status), Mode: string(desc.CertificateMode), CAID: aws.ToString(desc.CaCertificateId)}
	var cert *x509.Certificate
	if b, _ := pem.Decode([]byte(aws.ToString(desc.CertificatePem))); b != nil {
		cert, _ = x509.ParseCertificate(b.Bytes)
	}
	if v := desc.Validity; v != nil {
		row.NotAfter = aws.ToTime(v.NotAfter)
	}
	if cert != nil && row.NotAfter.IsZero() {
		row.NotAfter = cert.NotAfter
	}
	row.IssuerKind, row.Issuer = classifyIssuer(cert, row.CAID)

	things, err := c.principalThings(ctx, arn)
	if notFound(err) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("list things of certificate %s: %w", id, err)
	}
	row.Policies, err = c.policies(ctx, arn)
	if notFound(err) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("list policies of certificate %s: %w", id, err)
	}
	infos := make([]thingInfo, 0, len(things))
	for _, t := range things {
		info, err := c.thing(ctx, t)
		if err != nil {
			return row, false, fmt.Errorf("describe thing %s of certificate %s: %w", t, id, err)
		}
		if !info.gone {
			infos = append(infos, info)
			row.Things = append(row.Things, t)
		}
	}
	row.Capability, row.Basis = attribute(&row, infos, c.JITRPolicy)
	return row, true, nil
}

func (c *collector) principalThings(ctx context.Context, arn string) ([]string, error) {
	var out []string
	p := iot.NewListPrincipalThingsPaginator(c.IoT, &iot.ListPrincipalThingsInput{Principal: aws.String(arn), MaxResults: aws.Int32(250)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Things...)
	}
	slices.Sort(out)
	return out, nil
}

func (c *collector) policies(ctx context.Context, arn string) ([]string, error) {
	var out []string
	p := iot.NewListAttachedPoliciesPaginator(c.IoT, &iot.ListAttachedPoliciesInput{Target: aws.String(arn), PageSize: aws.Int32(250)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, pol := range page.Policies {
			out = append(out, aws.ToString(pol.PolicyName))
		}
	}
	slices.Sort(out)
	return out, nil
}

// thing describes a thing once per report: many certificates of a rotation share one thing.
func (c *collector) thing(ctx context.Context, name string) (thingInfo, error) {
	c.mu.Lock()
	e := c.things[name]
	if e == nil {
		e = &thingEntry{}
		c.things[name] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		d, err := c.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)})
		switch {
		case notFound(err):
			e.info = thingInfo{Name: name, gone: true}
		case err != nil:
			e.err = err
		default:
			e.info = thingInfo{Name: name, Mark: d.Attributes[capability.ThingAttribute]}
		}
	})
	return e.info, e.err
}

// progress writes a line to w every interval until ctx ends.
func progress(ctx context.Context, w io.Writer, st *stats, interval time.Duration, start time.Time) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(w, "cert-report: %d listed, %d described, %d deleted meanwhile, %s\n",
				st.listed.Load(), st.described.Load(), st.gone.Load(), time.Since(start).Round(time.Second))
		}
	}
}
