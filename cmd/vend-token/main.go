// Command vend-token manages the device tokens of the certificate vending API. The tokens secret keeps only
// SHA-256 hashes; a new token is printed once, when it is made.
//
//	vend-token add    --secret-id ARN [--table NAME] [--prefix p] [--expires 720h] [--single-use] [--id id]
//	vend-token revoke --secret-id ARN [--table NAME] --id id
//	vend-token list   --secret-id ARN
//
// Changes to the secret are a compare-and-swap on its version, so concurrent adds and revokes never undo each
// other. With --table (the stack's registrations table), revoke also records the revocation there, which the
// authorizer and the registration function read on every request: the token stops working at once.
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
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `vend-token manages the device tokens of the certificate vending API (hashes in a Secrets Manager secret).

usage:
  vend-token add    --secret-id ARN [--table NAME] [--prefix p] [--expires 720h] [--single-use] [--id id]
  vend-token revoke --secret-id ARN [--table NAME] --id id
  vend-token list   --secret-id ARN

flags:
  --secret-id ARN   ARN or name of the tokens secret (the stack's TokensSecretArn output); required
  --table NAME      registrations table; revoke records the revocation there so that the token stops at once,
                    add refuses the id of a revoked token (default: $REGISTRATIONS_TABLE)
  --prefix p        add: thing names the token may register must start with p (default: "", any name)
  --expires d       add: lifetime of the token, 0 for no expiry (default: 720h)
  --single-use      add: the token registers one thing only (default: false)
  --id id           add: token id (default: random); revoke: id of the token to revoke (required)

examples:
  vend-token add --secret-id "$TOKENS_SECRET_ARN" --prefix sensor- --expires 24h --single-use
  vend-token revoke --secret-id "$TOKENS_SECRET_ARN" --table "$REGISTRATIONS_TABLE" --id 1a2b3c4d
`

func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, format+"\n", args...)
	fmt.Fprintln(stderr, "run 'vend-token -h' for help")
	return 2
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "vend-token: a command is required: add, revoke or list")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("vend-token "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	secretID := fs.String("secret-id", "", "")
	var (
		table     *string
		prefix    *string
		expires   *time.Duration
		singleUse *bool
		id        *string
	)
	switch cmd {
	case "add":
		table = fs.String("table", os.Getenv("REGISTRATIONS_TABLE"), "")
		prefix = fs.String("prefix", "", "")
		expires = fs.Duration("expires", 720*time.Hour, "")
		singleUse = fs.Bool("single-use", false, "")
		id = fs.String("id", "", "")
	case "revoke":
		table = fs.String("table", os.Getenv("REGISTRATIONS_TABLE"), "")
		id = fs.String("id", "", "")
	case "list":
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		return usageError(stderr, "vend-token: unknown command %q", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		return usageError(stderr, "vend-token %s: %v", cmd, err)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "vend-token %s: unexpected argument %q", cmd, fs.Arg(0))
	}
	if *secretID == "" {
		return usageError(stderr, "vend-token %s: --secret-id is required", cmd)
	}
	if cmd == "revoke" && *id == "" {
		return usageError(stderr, "vend-token revoke: --id is required")
	}
	if cmd == "add" && *expires < 0 {
		return usageError(stderr, "vend-token add: --expires must not be negative, got %v", *expires)
	}
	ctx := context.Background()
	cfg, err := vendaws.LoadAWSConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "vend-token: %v\n", err)
		return 1
	}
	api := secretsmanager.NewFromConfig(cfg)
	var db *dynamodb.Client
	if table != nil && *table != "" {
		db = dynamodb.NewFromConfig(cfg)
	}
	switch cmd {
	case "add":
		return add(ctx, api, db, *secretID, *table, *id, *prefix, *expires, *singleUse, stdout, stderr)
	case "revoke":
		return revoke(ctx, api, db, *secretID, *table, *id, stdout, stderr)
	}
	set, err := vendaws.LoadTokens(ctx, api, *secretID)
	if err != nil && !errors.Is(err, vending.ErrEmptyTokenSecret) {
		fmt.Fprintf(stderr, "vend-token: %v\n", err)
		return 1
	}
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
	return 0
}

func add(ctx context.Context, api vendaws.SecretsWriteAPI, db *dynamodb.Client, secretID, table, id, prefix string,
	expires time.Duration, singleUse bool, stdout, stderr io.Writer) int {
	newID, token, err := vending.NewToken()
	if err != nil {
		fmt.Fprintf(stderr, "vend-token: %v\n", err)
		return 1
	}
	if id != "" {
		newID = id
	}
	if db != nil {
		status, err := tokenStatus(ctx, db, table, newID)
		if err != nil {
			fmt.Fprintf(stderr, "vend-token: %v\n", err)
			return 1
		}
		if status == vending.StatusRevoked {
			fmt.Fprintf(stderr, "vend-token add: token id %q was revoked: choose another id\n", newID)
			return 1
		}
	}
	var exp time.Time
	if expires > 0 {
		exp = time.Now().Add(expires).Truncate(time.Second)
	}
	var rec *vending.TokenRecord
	err = vendaws.UpdateTokens(ctx, api, secretID, func(set *vending.TokenSet) error {
		r, err := set.Add(newID, token, prefix, exp, singleUse)
		rec = r
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "vend-token add: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "id: %s\ntoken: %s\n", rec.ID, token)
	fmt.Fprintln(stderr, "vend-token: the token is shown only now; the secret keeps its hash")
	return 0
}

func revoke(ctx context.Context, api vendaws.SecretsWriteAPI, db *dynamodb.Client, secretID, table, id string,
	stdout, stderr io.Writer) int {
	set, err := vendaws.LoadTokens(ctx, api, secretID)
	if err != nil && !errors.Is(err, vending.ErrEmptyTokenSecret) {
		fmt.Fprintf(stderr, "vend-token: %v\n", err)
		return 1
	}
	var rec *vending.TokenRecord
	for _, r := range set.Tokens {
		if r.ID == id {
			rec = r
		}
	}
	if rec == nil {
		fmt.Fprintf(stderr, "vend-token revoke: no token with id %q\n", id)
		return 1
	}
	// The table first: from this write on, the authorizer and the registration function refuse the token.
	if db != nil {
		if err := recordRevocation(ctx, db, table, rec); err != nil {
			fmt.Fprintf(stderr, "vend-token: %v\n", err)
			return 1
		}
	}
	err = vendaws.UpdateTokens(ctx, api, secretID, func(set *vending.TokenSet) error {
		set.Remove(id) // a concurrent revoke of the same id is the same outcome
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "vend-token revoke: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "revoked %s\n", id)
	if db == nil {
		fmt.Fprintln(stderr, "vend-token: without --table the token keeps working until the authorizer reloads the secret (60 s by default)")
	}
	return 0
}

func tokenKey(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: vending.TokenItemKey(id)}}
}

func tokenStatus(ctx context.Context, db *dynamodb.Client, table, id string) (string, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: tokenKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read token %s in table %s: %w", id, table, err)
	}
	if v, ok := out.Item["status"].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value, nil
	}
	return "", nil
}

// recordRevocation marks the token REVOKED in the registrations table, keeping what a registration recorded.
// The record expires (TTL) when the token would have: after that the token is refused as expired anyway.
func recordRevocation(ctx context.Context, db *dynamodb.Client, table string, rec *vending.TokenRecord) error {
	update := "SET #s = :revoked, tokenId = :id, revokedAt = :at"
	values := map[string]ddbtypes.AttributeValue{
		":revoked": &ddbtypes.AttributeValueMemberS{Value: vending.StatusRevoked},
		":id":      &ddbtypes.AttributeValueMemberS{Value: rec.ID},
		":at":      &ddbtypes.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339)},
	}
	if exp := rec.ExpiresAt(); !exp.IsZero() {
		update += ", " + vending.TTLAttribute + " = :exp"
		values[":exp"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(exp.Add(time.Hour).Unix(), 10)}
	}
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: tokenKey(rec.ID), UpdateExpression: aws.String(update),
		ExpressionAttributeNames: map[string]string{"#s": "status"}, ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("record revocation of token %s in table %s: %w", rec.ID, table, err)
	}
	return nil
}
