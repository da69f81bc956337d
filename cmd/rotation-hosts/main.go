// Command rotation-hosts manages the host inventory of certificate rotation (the table "certificates") and starts a
// rotation for one host. Host ids and paths are checked with the same patterns the rotation functions and the SSM
// documents use, before anything is written.
//
//	rotation-hosts add        [-table t] [-shards n] [-cert-path p] [-key-path p] [-cacert-path p] [-signinghelper-path p] <host-id>
//	                          (flags may also follow the host id)
//	rotation-hosts list       [-table t]
//	rotation-hosts remove     [-table t] <host-id>
//	rotation-hosts rotate-now -state-machine ARN [-table t] [-wait 0] <host-id>
//
// AWS credentials, region and endpoints come from the standard SDK environment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/rotation"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const help = `rotation-hosts manages the hosts whose IAM Roles Anywhere certificates the CertRotation stack rotates.

Commands:
  add <host-id>         add a host (an SSM managed node: i-… or mi-…); it is due at once
  list                  list the hosts with their certificate, next renewal and last error
  remove <host-id>      remove a host (its certificate stays valid until it expires)
  rotate-now <host-id>  start a rotation of this host now and show its state

Flags (each command takes those that apply, before or after the host id):
  -table name                 host table (default "certificates"; certificates-<rotation_name> for a named stack)
  -shards n                   shards of the renewAt index, as the stack's rotation_renew_shards (default 16)
  -cert-path, -key-path, -cacert-path, -signinghelper-path dir
                              per-host directories (default: the stack's CertPath, KeyPath, CACertPath, AWSSigningHelperPath)
  -state-machine ARN          the rotation workflow (the stack's output StateMachineArn); required by rotate-now
  -wait duration              rotate-now: wait up to this long for the run to end (default 0: show its state and return)

Example:
  rotation-hosts add -key-path /etc/pki/iamra i-0123456789abcdef0
  rotation-hosts rotate-now -state-machine arn:aws:states:eu-west-1:123456789012:stateMachine:CertRotation-Workflow i-0123456789abcdef0

AWS credentials, region and endpoints come from the standard SDK environment.
`

// parseInterspersed parses flags before and after the positional arguments (`add i-0123 -key-path /x` as well as
// `add -key-path /x i-0123`), which the flag package alone stops at; after "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError is a bad command line: one line, then the pointer to -h, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, help)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "rotation-hosts: %s\nrun 'rotation-hosts -h' for help\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "rotation-hosts: %v\n", err)
		return 1
	}
}

type options struct {
	table, stateMachine                           string
	shards                                        int
	certPath, keyPath, cacertPath, signingHelpers string
	wait                                          time.Duration
}

func dispatch(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"a command is required: add, list, remove or rotate-now"}
	}
	cmd := args[0]
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		return flag.ErrHelp
	}
	var o options
	fs := flag.NewFlagSet("rotation-hosts "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.table, "table", "certificates", "")
	nargs := 1
	switch cmd {
	case "add":
		fs.IntVar(&o.shards, "shards", rotation.DefaultRenewShards, "")
		fs.StringVar(&o.certPath, "cert-path", "", "")
		fs.StringVar(&o.keyPath, "key-path", "", "")
		fs.StringVar(&o.cacertPath, "cacert-path", "", "")
		fs.StringVar(&o.signingHelpers, "signinghelper-path", "", "")
	case "list":
		nargs = 0
	case "remove":
	case "rotate-now":
		fs.StringVar(&o.stateMachine, "state-machine", "", "")
		fs.DurationVar(&o.wait, "wait", 0, "")
	default:
		return usageError{fmt.Sprintf("unknown command %q: use add, list, remove or rotate-now", cmd)}
	}
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if len(positional) != nargs {
		if nargs == 0 {
			return usageError{fmt.Sprintf("%s takes no arguments, got %q", cmd, strings.Join(positional, " "))}
		}
		return usageError{fmt.Sprintf("%s needs exactly one host id", cmd)}
	}
	var host string
	if nargs == 1 {
		host = positional[0]
		if err := rotation.CheckHostID(host); err != nil {
			return usageError{err.Error()}
		}
	}
	if o.table == "" || strings.ContainsAny(o.table, " /") {
		return usageError{fmt.Sprintf("-table %q is not a table name", o.table)}
	}
	if cmd == "add" {
		if o.shards < 1 || o.shards > rotation.MaxRenewShards {
			return usageError{fmt.Sprintf("-shards must be from 1 to %d, got %d", rotation.MaxRenewShards, o.shards)}
		}
		for _, p := range []struct{ flag, v string }{{"-cert-path", o.certPath}, {"-key-path", o.keyPath}, {"-cacert-path", o.cacertPath}, {"-signinghelper-path", o.signingHelpers}} {
			if p.v != "" {
				if err := rotation.CheckPath(p.flag, p.v); err != nil {
					return usageError{err.Error()}
				}
			}
		}
	}
	if cmd == "rotate-now" && !strings.Contains(o.stateMachine, ":stateMachine:") {
		return usageError{fmt.Sprintf("-state-machine must be the workflow's ARN (output StateMachineArn), got %q", o.stateMachine)}
	}

	cfg, err := awsconfig.Load(ctx, 5*time.Second)
	if err != nil {
		return err
	}
	t := &tool{db: dynamodb.NewFromConfig(cfg), sfn: sfn.NewFromConfig(cfg), out: stdout, now: time.Now}
	switch cmd {
	case "add":
		return t.add(ctx, o, host)
	case "list":
		return t.list(ctx, o)
	case "remove":
		return t.remove(ctx, o, host)
	default:
		return t.rotateNow(ctx, o, host)
	}
}

// Narrow interfaces: the calls the tool makes.
type (
	tableAPI interface {
		PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
		GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
		DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
		Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	}
	workflowAPI interface {
		StartExecution(context.Context, *sfn.StartExecutionInput, ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
		DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	}
)

type tool struct {
	db  tableAPI
	sfn workflowAPI
	out io.Writer
	now func() time.Time
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// add writes a new host item, due now. It never overwrites a host: the item's certificate record would be lost.
func (t *tool) add(ctx context.Context, o options, host string) error {
	item := map[string]types.AttributeValue{
		rotation.AttrHostID:     s(host),
		rotation.AttrRenewAt:    s(t.now().UTC().Format(rotation.RenewAtLayout)),
		rotation.AttrRenewShard: &types.AttributeValueMemberN{Value: strconv.Itoa(rotation.RenewShard(host, o.shards))},
	}
	for attr, v := range map[string]string{rotation.AttrCertPath: o.certPath, rotation.AttrKeyPath: o.keyPath, rotation.AttrCACertPath: o.cacertPath, rotation.AttrSigningHelper: o.signingHelpers} {
		if v != "" {
			item[attr] = s(v)
		}
	}
	_, err := t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(o.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": rotation.AttrHostID},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("host %s is already in table %s (remove it first to change its paths)", host, o.table)
	}
	if err != nil {
		return fmt.Errorf("add host %s to %s: %w", host, o.table, err)
	}
	fmt.Fprintf(t.out, "added %s to %s: due now (the next scheduled run, or rotation-hosts rotate-now %s)\n", host, o.table, host)
	return nil
}

// list prints every host of the table, paging through it. It reads the whole table, which suits an operator's
// look; the workflow itself selects due hosts from the renewAt index.
func (t *tool) list(ctx context.Context, o options) error {
	w := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tSTATUS\tSERIAL\tEXPIRY\tRENEW AT\tLAST ERROR")
	var start map[string]types.AttributeValue
	n := 0
	for {
		page, err := t.db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(o.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("list hosts of %s: %w", o.table, err)
		}
		for _, it := range page.Items {
			id := str(it, rotation.AttrHostID)
			if !rotation.ValidHostID(id) {
				continue // the issuance counter, or an item that is not a host
			}
			n++
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", id, dash(str(it, rotation.AttrStatus)), dash(str(it, rotation.AttrSerial)),
				dash(str(it, rotation.AttrExpiry)), dash(str(it, rotation.AttrRenewAt)), dash(oneLine(str(it, rotation.AttrLastError), 80)))
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(t.out, "%d hosts\n", n)
	return nil
}

func (t *tool) remove(ctx context.Context, o options, host string) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(o.table),
		Key:                      map[string]types.AttributeValue{rotation.AttrHostID: s(host)},
		ConditionExpression:      aws.String("attribute_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": rotation.AttrHostID},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("host %s is not in table %s", host, o.table)
	}
	if err != nil {
		return fmt.Errorf("remove host %s from %s: %w", host, o.table, err)
	}
	fmt.Fprintf(t.out, "removed %s from %s\n", host, o.table)
	return nil
}

// rotateNow starts the workflow for this one host (due or not) and shows the run's state and the host's record.
func (t *tool) rotateNow(ctx context.Context, o options, host string) error {
	got, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(o.table), Key: map[string]types.AttributeValue{rotation.AttrHostID: s(host)}, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("read host %s from %s: %w", host, o.table, err)
	}
	if got.Item == nil {
		return fmt.Errorf("host %s is not in table %s: add it first", host, o.table)
	}
	input, _ := json.Marshal(map[string][]string{"hostIDs": {host}})
	name := fmt.Sprintf("rotate-now-%s-%d", host, t.now().Unix())
	start, err := t.sfn.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(o.stateMachine), Name: aws.String(name), Input: aws.String(string(input)),
	})
	if err != nil {
		return fmt.Errorf("start rotation of %s: %w", host, err)
	}
	arn := aws.ToString(start.ExecutionArn)
	fmt.Fprintf(t.out, "started %s\n", arn)
	deadline := t.now().Add(o.wait)
	var desc *sfn.DescribeExecutionOutput
	for {
		desc, err = t.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("describe %s: %w", arn, err)
		}
		if desc.Status != sfntypes.ExecutionStatusRunning || !t.now().Before(deadline) {
			break
		}
		pause := min(2*time.Second, deadline.Sub(t.now()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
	fmt.Fprintf(t.out, "run:  %s\n", desc.Status)
	if desc.Status != sfntypes.ExecutionStatusRunning {
		got, err = t.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(o.table), Key: map[string]types.AttributeValue{rotation.AttrHostID: s(host)}, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("read host %s from %s: %w", host, o.table, err)
		}
	}
	it := got.Item
	fmt.Fprintf(t.out, "host: %s status=%s serial=%s expiry=%s renewAt=%s\n", host, dash(str(it, rotation.AttrStatus)),
		dash(str(it, rotation.AttrSerial)), dash(str(it, rotation.AttrExpiry)), dash(str(it, rotation.AttrRenewAt)))
	if e := str(it, rotation.AttrLastError); e != "" {
		fmt.Fprintf(t.out, "lastError: %s\n", oneLine(e, 400))
	}
	if desc.Status == sfntypes.ExecutionStatusFailed || desc.Status == sfntypes.ExecutionStatusTimedOut || desc.Status == sfntypes.ExecutionStatusAborted {
		return fmt.Errorf("rotation of %s ended %s", host, desc.Status)
	}
	return nil
}

func str(item map[string]types.AttributeValue, attr string) string {
	if v, ok := item[attr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func dash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func oneLine(v string, n int) string {
	v = strings.Join(strings.Fields(v), " ")
	if len(v) > n {
		v = v[:n] + "…"
	}
	return v
}
