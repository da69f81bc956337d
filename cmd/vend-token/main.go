// Command vend-token manages the device tokens of the certificate vending API. The tokens secret keeps only
// SHA-256 hashes; a new token is printed once, when it is made.
//
//	vend-token add    --secret-id ARN [--prefix p] [--expires 720h] [--single-use] [--id id]
//	vend-token revoke --secret-id ARN --id id
//	vend-token list   --secret-id ARN
//
// AWS credentials, region and endpoint come from the standard SDK environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  vend-token add    --secret-id ARN [--prefix p] [--expires 720h] [--single-use] [--id id]
  vend-token revoke --secret-id ARN --id id
  vend-token list   --secret-id ARN
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("vend-token "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	secretID := fs.String("secret-id", "", "ARN or name of the tokens secret (required)")
	var (
		prefix    *string
		expires   *time.Duration
		singleUse *bool
		id        *string
	)
	switch cmd {
	case "add":
		prefix = fs.String("prefix", "", "thing names this token may register must start with this prefix")
		expires = fs.Duration("expires", 720*time.Hour, "lifetime of the token; 0 for no expiry")
		singleUse = fs.Bool("single-use", false, "the token registers one thing only")
		id = fs.String("id", "", "token id (default: random)")
	case "revoke":
		id = fs.String("id", "", "id of the token to revoke (required)")
	case "list":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vend-token: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vend-token %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	if *secretID == "" {
		fmt.Fprintf(stderr, "vend-token %s: --secret-id is required\n", cmd)
		return 2
	}
	ctx := context.Background()
	cfg, err := vendaws.LoadAWSConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "vend-token: %v\n", err)
		return 1
	}
	api := secretsmanager.NewFromConfig(cfg)
	set, err := vendaws.LoadTokens(ctx, api, *secretID)
	if err != nil && !errors.Is(err, vending.ErrEmptyTokenSecret) {
		fmt.Fprintf(stderr, "vend-token: %v\n", err)
		return 1
	}
	switch cmd {
	case "add":
		if *expires < 0 {
			fmt.Fprintf(stderr, "vend-token add: --expires must not be negative, got %v\n", *expires)
			return 2
		}
		newID, token, err := vending.NewToken()
		if err != nil {
			fmt.Fprintf(stderr, "vend-token: %v\n", err)
			return 1
		}
		if *id != "" {
			newID = *id
		}
		var exp time.Time
		if *expires > 0 {
			exp = time.Now().Add(*expires).Truncate(time.Second)
		}
		rec, err := set.Add(newID, token, *prefix, exp, *singleUse)
		if err != nil {
			fmt.Fprintf(stderr, "vend-token add: %v\n", err)
			return 1
		}
		if err := vendaws.SaveTokens(ctx, api, *secretID, set); err != nil {
			fmt.Fprintf(stderr, "vend-token: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "id: %s\ntoken: %s\n", rec.ID, token)
		fmt.Fprintln(stderr, "vend-token: the token is shown only now; the secret keeps its hash")
	case "revoke":
		if *id == "" {
			fmt.Fprintln(stderr, "vend-token revoke: --id is required")
			return 2
		}
		if !set.Remove(*id) {
			fmt.Fprintf(stderr, "vend-token revoke: no token with id %q\n", *id)
			return 1
		}
		if err := vendaws.SaveTokens(ctx, api, *secretID, set); err != nil {
			fmt.Fprintf(stderr, "vend-token: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s\n", *id)
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTHING PREFIX\tEXPIRES\tSINGLE USE")
		for _, r := range set.Tokens {
			exp := r.Expires
			if exp == "" {
				exp = "never"
			} else if !r.ExpiresAt().After(time.Now()) {
				exp += " (expired)"
			}
			prefix := r.ThingPrefix
			if prefix == "" {
				prefix = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", r.ID, prefix, exp, r.SingleUse)
		}
		_ = tw.Flush()
	}
	return 0
}
