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

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

var tool = cli.Tool{
	Name: "vend-token",
	Synopsis: `vend-token add    --secret-id ARN [--prefix p] [--expires 720h] [--single-use] [--id id]
	vend-token revoke --secret-id ARN --id id
	vend-token list   --secret-id ARN`,
	About: `manages the device tokens of the certificate vending API. The tokens secret (the stack's TokensSecretArn
output) keeps only SHA-256 hashes: add prints a new token once, revoke removes one, list shows ids, prefixes and
expiry. AWS credentials, region and endpoint come from the standard SDK environment.`,
	Examples: []string{
		"vend-token add --secret-id <TokensSecretArn> --prefix sensor- --expires 720h --single-use",
		"vend-token list --secret-id <TokensSecretArn>",
		"vend-token revoke --secret-id <TokensSecretArn> --id <id>",
	},
}

// commands are vend-token's commands, in help order.
var commands = []string{"add", "revoke", "list"}

type flags struct {
	secretID, prefix, id *string
	expires              *time.Duration
	singleUse            *bool
}

// commandFlags defines the flags of one command; nil for an unknown command.
func commandFlags(cmd string) (*flag.FlagSet, *flags) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f := &flags{secretID: fs.String("secret-id", "", "ARN or name of the tokens secret (required)")}
	switch cmd {
	case "add":
		f.prefix = fs.String("prefix", "", "thing names this token may register must start with this prefix (default: any name)")
		f.expires = fs.Duration("expires", 720*time.Hour, "lifetime of the token; 0 for no expiry")
		f.singleUse = fs.Bool("single-use", false, "the token registers one thing only")
		f.id = fs.String("id", "", "token id (default: random)")
	case "revoke":
		f.id = fs.String("id", "", "id of the token to revoke (required)")
	case "list":
	default:
		return nil, nil
	}
	return fs, f
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return tool.UsageError(stderr, "give a command (usage: vend-token add|revoke|list --secret-id ARN ...)")
	}
	cmd := args[0]
	switch cmd {
	case "-h", "-help", "--help", "help":
		var sets []*flag.FlagSet
		for _, c := range commands {
			fs, _ := commandFlags(c)
			sets = append(sets, fs)
		}
		tool.Help(stdout, sets...)
		return 0
	}
	fs, f := commandFlags(cmd)
	if fs == nil {
		return tool.UsageError(stderr, "unknown command %q: use add, revoke or list", cmd)
	}
	sub := tool
	sub.Name = "vend-token " + cmd
	if code, done := sub.Parse(fs, args[1:], stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return sub.UsageError(stderr, "unexpected argument %q", fs.Arg(0))
	case *f.secretID == "":
		return sub.UsageError(stderr, "--secret-id is required")
	case cmd == "revoke" && *f.id == "":
		return sub.UsageError(stderr, "--id is required")
	case cmd == "add" && *f.expires < 0:
		return sub.UsageError(stderr, "--expires must not be negative, got %v", *f.expires)
	}
	secretID, prefix, expires, singleUse, id := f.secretID, f.prefix, f.expires, f.singleUse, f.id
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
