// Command cert-report lists every AWS IoT certificate of an account and region: id, status, issuer, the capability
// that made it, not-after, attached things and policies, sorted by expiry.
//
//	cert-report [-region R] [-profile P] [-expiring 30d] [-format table|csv|json] [-now RFC3339]
//
// It pages through ListCertificates (250 a page) and describes the certificates concurrently, each API under a
// client-side rate limit at AWS IoT's default quota; throttling answers are retried by the SDK's standard retryer with
// backoff. A certificate deleted while the report runs is reported on stderr and skipped. AWS credentials, region and
// endpoint come from the standard SDK environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/policies"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

var tool = cli.Tool{
	Name:     "cert-report",
	Synopsis: `cert-report [-region R] [-profile P] [-expiring 30d] [-format table|csv|json] [-now RFC3339]`,
	About: `lists every AWS IoT certificate of the account and region: id, status, issuer, the capability that made
it, not-after, attached things and policies, sorted by expiry. Each API is called under a client-side rate limit at
AWS IoT's default quota (raise the -*-tps flags only after raising the quota); throttling answers are retried with
backoff. A certificate deleted while the report runs is reported on stderr and skipped. Progress goes to stderr.
AWS credentials, region and endpoint come from the standard SDK environment.`,
	Examples: []string{
		"cert-report -region eu-west-1",
		"cert-report -expiring 30d -format csv > expiring.csv",
		"cert-report -format json | jq '.[] | select(.capability == \"C\")'",
	},
}

// Default rates: AWS IoT's default per-account, per-Region quotas (https://docs.aws.amazon.com/general/latest/gr/iot-core.html,
// Service Quotas: DescribeCertificate L-FC864907, ListPrincipalThings L-C481616A 10 TPS, DescribeThing L-0EF0F5EE
// 350 TPS). ListCertificates (L-97DA2C60) and ListAttachedPolicies (L-B2DA2A45) are taken at 10 TPS, the lowest
// rate of the certificate and policy APIs, so the report stays inside the quota whatever its exact value.
const (
	defaultListTPS     = 10
	defaultDescribeTPS = 10
	defaultThingsTPS   = 10
	defaultPolicyTPS   = 10
	defaultThingTPS    = 350
)

type options struct {
	region, profile, format, jitrPolicy string
	expiring                            time.Duration
	now                                 time.Time
	workers, maxAttempts                int
	maxBackoff, progress                time.Duration
	tps                                 map[string]float64
}

func parseFlags(args []string, stdout, stderr io.Writer) (*options, int, bool) {
	fs := flag.NewFlagSet("cert-report", flag.ContinueOnError)
	o := &options{tps: map[string]float64{}}
	fs.StringVar(&o.region, "region", "", "AWS Region (default: the SDK's, from AWS_REGION or the profile)")
	fs.StringVar(&o.profile, "profile", "", "shared-config profile (default: the SDK's)")
	fs.StringVar(&o.format, "format", "table", "output format: table, csv or json")
	expiring := fs.String("expiring", "", "only certificates whose not-after falls within this time from now, expired ones included: 30d, 12h, 2w (default: all)")
	now := fs.String("now", "", "evaluate expiry as of this RFC 3339 time (default: the current time)")
	fs.StringVar(&o.jitrPolicy, "jitr-policy", policies.JITRPolicyName, "the JITR policy name of the multi-region stacks, which attributes a certificate to D")
	fs.IntVar(&o.workers, "workers", 8, "certificates described at the same time")
	fs.IntVar(&o.maxAttempts, "max-attempts", 10, "attempts per request, throttled ones included")
	fs.DurationVar(&o.maxBackoff, "max-backoff", 20*time.Second, "longest wait before retrying a throttled request")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "how often to write progress to stderr; 0 for never")
	listTPS := fs.Float64("list-tps", defaultListTPS, "ListCertificates requests per second")
	describeTPS := fs.Float64("describe-tps", defaultDescribeTPS, "DescribeCertificate requests per second")
	thingsTPS := fs.Float64("things-tps", defaultThingsTPS, "ListPrincipalThings requests per second")
	policyTPS := fs.Float64("policies-tps", defaultPolicyTPS, "ListAttachedPolicies requests per second")
	thingTPS := fs.Float64("thing-tps", defaultThingTPS, "DescribeThing requests per second")
	if code, done := tool.Parse(fs, args, stdout, stderr); done {
		return nil, code, true
	}
	if fs.NArg() > 0 {
		return nil, tool.UsageError(stderr, "unexpected argument %q", fs.Arg(0)), true
	}
	if !slices.Contains([]string{"table", "csv", "json"}, o.format) {
		return nil, tool.UsageError(stderr, "-format must be table, csv or json, got %q", o.format), true
	}
	if *expiring != "" {
		d, err := parseWithin(*expiring)
		if err != nil {
			return nil, tool.UsageError(stderr, "-expiring: %v", err), true
		}
		o.expiring = d
	}
	o.now = time.Now().UTC()
	if *now != "" {
		t, err := time.Parse(time.RFC3339, *now)
		if err != nil {
			return nil, tool.UsageError(stderr, "-now must be an RFC 3339 time such as 2026-01-31T00:00:00Z, got %q", *now), true
		}
		o.now = t.UTC()
	}
	for name, v := range map[string]float64{"list-tps": *listTPS, "describe-tps": *describeTPS, "things-tps": *thingsTPS,
		"policies-tps": *policyTPS, "thing-tps": *thingTPS} {
		if v <= 0 {
			return nil, tool.UsageError(stderr, "-%s must be more than 0, got %v", name, v), true
		}
	}
	if o.workers < 1 || o.maxAttempts < 1 {
		return nil, tool.UsageError(stderr, "-workers and -max-attempts must be at least 1"), true
	}
	o.tps = map[string]float64{"ListCertificates": *listTPS, "DescribeCertificate": *describeTPS,
		"ListPrincipalThings": *thingsTPS, "ListAttachedPolicies": *policyTPS, "DescribeThing": *thingTPS}
	return o, 0, false
}

// parseWithin reads a span as a number of days (30d), weeks (2w) or a Go duration (12h).
func parseWithin(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("want a whole number of days or weeks such as 30d or 2w, got %q", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want 30d, 2w or a duration such as 12h, got %q", s)
	}
	return d, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code, done := parseFlags(args, stdout, stderr)
	if done {
		return code
	}
	// One idle connection per worker and API at least, so that concurrent requests reuse connections.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, 4*o.workers)
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.maxAttempts
				so.MaxBackoff = o.maxBackoff
				// The client-side limiters keep the rate inside the quota; a long report must not give up because
				// the SDK's retry budget ran dry after a burst of throttles.
				so.RateLimiter = ratelimit.None
			})
		}),
	}
	if o.region != "" {
		opts = append(opts, config.WithRegion(o.region))
	}
	if o.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "cert-report: load AWS configuration: %v\n", err)
		return 1
	}
	if cfg.Region == "" {
		return tool.UsageError(stderr, "no AWS Region: set -region or AWS_REGION")
	}
	st := &stats{}
	limits := map[string]*limiter{}
	for op, tps := range o.tps {
		limits[op] = newLimiter(tps, 1) // evenly spaced: never more than tps requests in any second
	}
	client := iot.NewFromConfig(cfg, func(io *iot.Options) {
		io.APIOptions = append(io.APIOptions, limitAndCount(limits, st))
	})
	start := time.Now()
	pctx, stopProgress := context.WithCancel(ctx)
	go progress(pctx, stderr, st, o.progress, start)
	c := &collector{IoT: client, Workers: o.workers, JITRPolicy: o.jitrPolicy, Stats: st,
		Gone: func(id string) {
			fmt.Fprintf(stderr, "cert-report: certificate %s was deleted while the report ran: skipped\n", id)
		},
		Keep: func(r certRow) bool { return o.expiring == 0 || !r.NotAfter.After(o.now.Add(o.expiring)) }}
	rows, err := c.collect(ctx)
	stopProgress()
	if err != nil {
		fmt.Fprintf(stderr, "cert-report: %v\n", err)
		return 1
	}
	total := st.described.Load()
	rows = selectAndSort(rows, o.now, o.expiring)
	if err := write(stdout, o.format, rows, o.now); err != nil {
		fmt.Fprintf(stderr, "cert-report: write report: %v\n", err)
		return 1
	}
	var calls []string
	for _, op := range operations {
		calls = append(calls, fmt.Sprintf("%s %d", op, st.Calls(op)))
	}
	fmt.Fprintf(stderr, "cert-report: %d certificates, %d shown, %d deleted while listing, in %s; API calls: %s\n",
		total, len(rows), st.gone.Load(), time.Since(start).Round(time.Millisecond), strings.Join(calls, ", "))
	counts := map[string]int64{}
	for _, op := range operations {
		counts[op] = st.Calls(op)
	}
	bound, op := quotaBound(counts, o.tps)
	fmt.Fprintf(stderr, "cert-report: at the configured rates these calls need at least %s (%s)\n", bound.Round(time.Millisecond), op)
	return 0
}

// quotaBound is the least time calls can take when each API runs at its own rate, all APIs at once: the time of the
// busiest one, which it names.
func quotaBound(calls map[string]int64, tps map[string]float64) (time.Duration, string) {
	var (
		bound time.Duration
		which string
	)
	for _, op := range operations {
		if r := tps[op]; r > 0 {
			if d := time.Duration(float64(calls[op]) / r * float64(time.Second)); d > bound {
				bound, which = d, op
			}
		}
	}
	return bound, which
}

// selectAndSort keeps the certificates whose not-after falls before now+within (all when within is 0), soonest
// expiry first, then by id.
func selectAndSort(rows []certRow, now time.Time, within time.Duration) []certRow {
	if within > 0 {
		limit := now.Add(within)
		rows = slices.DeleteFunc(rows, func(r certRow) bool { return r.NotAfter.After(limit) })
	}
	slices.SortFunc(rows, func(a, b certRow) int {
		if c := a.NotAfter.Compare(b.NotAfter); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return rows
}
