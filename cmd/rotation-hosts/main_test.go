package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

const smArn = "arn:aws:states:" + awsfake.Region + ":123456789012:stateMachine:CertRotation-Workflow"

// setup points the SDK at the fakes and DynamoDB Local and creates a host table shaped as the stack's.
func setup(t *testing.T) (*awsfake.Server, *dynamodb.Client, string) {
	t.Helper()
	fake := awsfake.New(t)
	fake.SetEnv(t)
	testsvc.DynamoDB(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(fake.Config(ctx), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"))
	})
	table := fmt.Sprintf("certificates-%d", time.Now().UnixNano())
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("hostID"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("renewShard"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("renewAt"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("hostID"), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(rotation.RenewIndexName),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("renewShard"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("renewAt"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	return fake, db, table
}

func runTool(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestAddListRemove(t *testing.T) {
	_, db, table := setup(t)
	const host = "i-0123456789abcdef0"
	if code, out, errs := runTool("add", "-table", table, "-key-path", "/etc/pki/iamra", host); code != 0 {
		t.Fatalf("add = %d, %s %s", code, out, errs)
	}
	got, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"hostID": s(host)}})
	if err != nil || got.Item == nil {
		t.Fatalf("item after add: %v %v", got, err)
	}
	if str(got.Item, "keyPath") != "/etc/pki/iamra" || str(got.Item, "renewAt") == "" {
		t.Errorf("item = %v, want keyPath and renewAt", got.Item)
	}
	if n := got.Item["renewShard"].(*types.AttributeValueMemberN).Value; n != fmt.Sprint(rotation.RenewShard(host, rotation.DefaultRenewShards)) {
		t.Errorf("renewShard = %s, want rotation.RenewShard's", n)
	}
	// The new host is found by the same index Query the workflow's selection makes.
	q, err := db.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(table), IndexName: aws.String(rotation.RenewIndexName),
		KeyConditionExpression:    aws.String("renewShard = :s AND renewAt <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": got.Item["renewShard"], ":now": s(time.Now().UTC().Add(time.Minute).Format(time.RFC3339))},
	})
	if err != nil || len(q.Items) != 1 {
		t.Errorf("due-host query found %v (%v), want the new host", q, err)
	}
	if code, _, errs := runTool("add", "-table", table, host); code != 1 || !strings.Contains(errs, "already in table") {
		t.Errorf("second add = %d %q, want 1 and 'already in table'", code, errs)
	}
	// Flags after the host id work too: `add <id> -key-path p`.
	const host2 = "mi-0123456789abcdef0"
	if code, out, errs := runTool("add", host2, "-table", table, "-key-path", "/opt/iamra/key"); code != 0 {
		t.Fatalf("add with flags after the host id = %d, %s %s", code, out, errs)
	}
	got2, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"hostID": s(host2)}})
	if err != nil || got2.Item == nil || str(got2.Item, "keyPath") != "/opt/iamra/key" {
		t.Fatalf("item after add with flags after the host id: %v %v, want keyPath /opt/iamra/key", got2, err)
	}
	code, out, _ := runTool("list", "-table", table)
	if code != 0 || !strings.Contains(out, host) || !strings.Contains(out, "2 hosts") {
		t.Errorf("list = %d %q", code, out)
	}
	if code, _, _ := runTool("remove", host2, "-table", table); code != 0 {
		t.Errorf("remove with the flag after the host id = %d", code)
	}
	if code, _, _ := runTool("remove", "-table", table, host); code != 0 {
		t.Errorf("remove = %d", code)
	}
	if code, _, errs := runTool("remove", "-table", table, host); code != 1 || !strings.Contains(errs, "not in table") {
		t.Errorf("second remove = %d %q", code, errs)
	}
}

// Injection: host ids and paths carrying shell syntax are refused before any AWS call, and nothing is written.
func TestRefusals(t *testing.T) {
	fake, db, table := setup(t)
	bad := [][]string{
		{"add", "-table", table, "i-0123456789abcdef0;reboot"},
		{"add", "-table", table, "$(reboot)"},
		{"add", "-table", table, "i-`id`"},
		{"add", "-table", table, "i-01234567\nreboot"},
		{"add", "-table", table, "-key-path", "/etc/$(reboot)", "i-0123456789abcdef0"},
		{"add", "-table", table, "-cert-path", "/etc/a b", "i-0123456789abcdef0"},
		{"add", "-table", table, "-cacert-path", "../etc", "i-0123456789abcdef0"},
		{"add", "-table", table, "-signinghelper-path", "/root/../tmp", "i-0123456789abcdef0"},
		{"add", "-table", table, "-shards", "0", "i-0123456789abcdef0"},
		{"add", "i-0123456789abcdef0", "-table", table, "-key-path", "/etc/$(reboot)"},
		{"add", "-table", table, "i-0123456789abcdef0", "i-0fedcba9876543210"},
		{"add", "-table", table, "--", "-key-path"},
		{"remove", "-table", table, "i-1; rm -rf /"},
		{"rotate-now", "-table", table, "i-0123456789abcdef0"},
		{"rotate-now", "-table", table, "-state-machine", smArn, "mi-123"},
		{"frobnicate"},
		{},
		{"list", "extra"},
	}
	for _, args := range bad {
		code, out, errs := runTool(args...)
		if code != 2 || out != "" || !strings.HasSuffix(errs, "run 'rotation-hosts -h' for help\n") || strings.Count(errs, "\n") != 2 {
			t.Errorf("rotation-hosts %q = %d, stdout %q, stderr %q; want 2 with one line and the help pointer", args, code, out, errs)
		}
	}
	scan, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil || len(scan.Items) != 0 {
		t.Errorf("table after refusals: %v items (%v), want none", len(scan.Items), err)
	}
	if n := len(fake.SFN.Executions()); n != 0 {
		t.Errorf("%d executions started by refused commands", n)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"add", "-h"}} {
		code, out, _ := runTool(args...)
		if code != 0 || !strings.Contains(out, "rotate-now <host-id>") || !strings.Contains(out, "Example:") || !strings.Contains(out, "default \"certificates\"") {
			t.Errorf("rotation-hosts %v = %d %q", args, code, out)
		}
	}
}

func TestRotateNow(t *testing.T) {
	fake, db, table := setup(t)
	const host = "mi-0123456789abcdef0"
	if code, _, errs := runTool("rotate-now", "-table", table, "-state-machine", smArn, host); code != 1 || !strings.Contains(errs, "add it first") {
		t.Fatalf("rotate-now of an unknown host = %d %q", code, errs)
	}
	if code, _, errs := runTool("add", "-table", table, host); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runTool("rotate-now", "-table", table, "-state-machine", smArn, host)
	if code != 0 || !strings.Contains(out, "run:  RUNNING") {
		t.Fatalf("rotate-now = %d %q %q", code, out, errs)
	}
	ex := fake.SFN.Executions()
	if len(ex) != 1 || ex[0].StateMachineArn != smArn {
		t.Fatalf("executions = %+v", ex)
	}
	var in struct{ HostIDs []string }
	if err := json.Unmarshal([]byte(ex[0].Input), &in); err != nil || len(in.HostIDs) != 1 || in.HostIDs[0] != host {
		t.Errorf("execution input %s, want {\"hostIDs\":[%q]}", ex[0].Input, host)
	}
	if !strings.Contains(out, ex[0].ARN) {
		t.Errorf("output %q does not name the execution", out)
	}

	// A finished run: the tool shows the run's end and the host's record, and a failed run is exit 1.
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: map[string]types.AttributeValue{"hostID": s(host)},
		UpdateExpression:          aws.String("SET #s = :s, lastError = :e"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": s("FAILED"), ":e": s("CommandFailed: aws_signing_helper not found")},
	})
	if err != nil {
		t.Fatal(err)
	}
	fake.SFN.Finish(ex[0].ARN, "FAILED", "")
	// rotate-now names each run by the second: a second run in the same second would reuse the name.
	time.Sleep(1100 * time.Millisecond)
	// With the run ending while the tool waits, it reports the end and the host's error.
	code, out, errs = runToolFinishing(t, fake, table, host)
	if code != 1 || !strings.Contains(out, "run:  FAILED") || !strings.Contains(out, "status=FAILED") || !strings.Contains(out, "lastError: CommandFailed") ||
		!strings.Contains(errs, "ended FAILED") {
		t.Errorf("rotate-now of a failing run = %d %q %q", code, out, errs)
	}
}

// runToolFinishing runs rotate-now with -wait while the fake run fails shortly after it starts.
func runToolFinishing(t *testing.T, fake *awsfake.Server, table, host string) (int, string, string) {
	t.Helper()
	before := len(fake.SFN.Executions())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			if ex := fake.SFN.Executions(); len(ex) > before {
				fake.SFN.Finish(ex[len(ex)-1].ARN, "FAILED", "")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	code, out, errs := runTool("rotate-now", "-table", table, "-state-machine", smArn, "-wait", "30s", host)
	<-done
	return code, out, errs
}
