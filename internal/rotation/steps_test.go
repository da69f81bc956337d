package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

const (
	csrDocName     = "CertRotation-CSR"
	installDocName = "CertRotation-Install"
	manifestBucket = "rotation-manifests"
	topicARN       = "arn:aws:sns:us-east-1:123456789012:FailedCertRotationTopic"
)

var tableSeq atomic.Int64

// fleet is an environment for the workflow's steps: the fake AWS (with SSM hosts that run the documents for real),
// DynamoDB Local with the inventory table, and SDK clients configured explicitly (not from the process environment),
// so fleet tests run in parallel.
type fleet struct {
	*env
	cfg    aws.Config // the fake's endpoint
	ddbURL string     // DynamoDB Local's endpoint
	ddb    *dynamodb.Client
	table  string
	steps  *rotation.Steps
	sel    *rotation.Selector
	now    time.Time
	// dirs are the directories of the hosts added after the first (see addHost).
	dirs  map[string]rotation.DocumentDefaults
	added int
}

// fastRetryer is the SDK's standard retryer with a millisecond backoff.
func fastRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
	})
}

// fastConfig is the SDK configuration from the process environment (awsfake's SetEnv), with fastRetryer.
func fastConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRetryer(fastRetryer))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// dynamoDB is a DynamoDB client of cfg (its retryer and middleware) that reaches the fleet's DynamoDB Local.
func (f *fleet) dynamoDB(cfg aws.Config) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(f.ddbURL) })
}

// createTable makes the inventory table as the stack defines it: key hostID, index renewAt-index over
// (renewShard, renewAt) projecting keys only.
func createTable(t testing.TB, ddb *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("certificates-%d-%d", os.Getpid(), tableSeq.Add(1))
	_, err := ddb.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(rotation.AttrHostID), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(rotation.AttrRenewShard), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(rotation.AttrRenewAt), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String(rotation.AttrHostID), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(rotation.RenewIndexName),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(rotation.AttrRenewShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(rotation.AttrRenewAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	})
	if err != nil {
		t.Fatalf("CreateTable() error = %v", err)
	}
	return name
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	e := newHostEnv(t)
	ddbURL := testsvc.DynamoDBEndpoint(t)
	cfg := e.srv.Config(context.Background())
	cfg.Retryer = fastRetryer
	f := &fleet{env: e, cfg: cfg, ddbURL: ddbURL, now: time.Now().UTC(), dirs: map[string]rotation.DocumentDefaults{}}
	ddb := f.dynamoDB(cfg)
	f.ddb, f.table = ddb, createTable(t, ddb)
	e.srv.Commands.PutDocument(csrDocName, rotation.CSRDocument(e.defaults))
	e.srv.Commands.PutDocument(installDocName, rotation.InstallDocument(e.defaults))
	e.srv.S3.CreateBucket(manifestBucket)
	t.Cleanup(e.srv.Commands.Wait)
	c := rotation.Config{
		TableName: f.table, Documents: e.defaults, CSRDocument: csrDocName, InstallDocument: installDocName,
		PCAARN: e.srv.PCA.CAARN(), SigningAlgorithm: "SHA256WITHRSA", TemplateARN: rotation.DefaultTemplateARN,
		ValidityDays: 7, ProfileARN: e.profile, RoleARN: e.role, TrustAnchorARN: e.anchor, TopicARN: topicARN,
		Schedule: rotation.DefaultSchedule, RenewShards: rotation.DefaultRenewShards, MaxHosts: rotation.DefaultMaxHosts,
		ManifestBucket: manifestBucket,
	}
	f.steps = &rotation.Steps{
		Table: ddb, Commands: ssm.NewFromConfig(cfg), PCA: acmpca.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: c,
	}
	f.sel = &rotation.Selector{Table: ddb, Objects: s3.NewFromConfig(cfg), CA: acmpca.NewFromConfig(cfg), Config: c,
		Now: func() time.Time { return f.now }}
	return f
}

// addHost writes a host item as rotation-hosts add does (due now) and registers the host with the fake SSM.
//
// The fleet's hosts share one directory tree, but a host is a machine of its own: the CA chain
// (<CACertDir>/ca_chain_certificate.crt) is one per machine, and two hosts installing into the same one at once would
// race on it. The first host added uses the deployment's directories (no path attributes, as rotation-hosts add
// writes it by default); each later one gets directories of its own through the item's path attributes.
func (f *fleet) addHost(t testing.TB, id string, extra map[string]string, offline bool) {
	t.Helper()
	item := map[string]types.AttributeValue{
		rotation.AttrHostID:     &types.AttributeValueMemberS{Value: id},
		rotation.AttrRenewAt:    &types.AttributeValueMemberS{Value: f.now.Add(-time.Minute).Format(rotation.RenewAtLayout)},
		rotation.AttrRenewShard: &types.AttributeValueMemberN{Value: fmt.Sprint(rotation.RenewShard(id, rotation.DefaultRenewShards))},
	}
	if f.added++; f.added > 1 && ValidHost(id) {
		own := filepath.Join(f.root, "hosts", id, "etc", "pki")
		d := f.defaults
		d.CertDir, d.KeyDir, d.CACertDir = filepath.Join(own, "certs"), filepath.Join(own, "iamra"), filepath.Join(own, "ca")
		f.dirs[id] = d
		for attr, dir := range map[string]string{rotation.AttrCertPath: d.CertDir, rotation.AttrKeyPath: d.KeyDir, rotation.AttrCACertPath: d.CACertDir} {
			item[attr] = &types.AttributeValueMemberS{Value: dir}
		}
	}
	for k, v := range extra {
		item[k] = &types.AttributeValueMemberS{Value: v}
	}
	if _, err := f.ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if ValidHost(id) {
		// The host's time is the workflow's polls, not the wall clock: each command is InProgress to the first poll and
		// ends by the second, however long the script takes on a loaded machine (PollCSR and PollInstall allow 30).
		f.srv.Commands.AddHost(id, awsfake.SSMHost{WorkDir: f.root, Env: f.hostEnv, Offline: offline, PollDriven: true, InProgressReads: 1})
	}
}

// live is env.live in the host's own directories.
func (f *fleet) live(id string) string {
	e := *f.env
	if d, ok := f.dirs[id]; ok {
		e.defaults = d
	}
	return e.live(id)
}

// ValidHost is rotation.ValidHostID, for readability in tests.
func ValidHost(id string) bool { return rotation.ValidHostID(id) }

func (f *fleet) item(t testing.TB, id string) map[string]string {
	t.Helper()
	out, err := f.ddb.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(f.table), Key: map[string]types.AttributeValue{rotation.AttrHostID: &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for k, v := range out.Item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			m[k] = v.Value
		case *types.AttributeValueMemberN:
			m[k] = v.Value
		}
	}
	return m
}

func errName(err error) string {
	var e *rotation.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return ""
}

// retried runs a step as the state machine's Retry does for the "wait" errors (CommandInProgress,
// CertificateInProgress): again, at most 30 times (PollCSR's and PollInstall's budget). No pause is needed: the
// fleet's hosts and Private CA answer by poll count, not by the wall clock.
func retried(step func(context.Context, rotation.State) (rotation.State, error), st rotation.State) (rotation.State, error) {
	for i := 0; ; i++ {
		out, err := step(context.Background(), st)
		n := errName(err)
		if (n != rotation.ErrCommandInProgress && n != rotation.ErrCertificateInProgress) || i == 30 {
			return out, err
		}
	}
}

// rotateHost runs one host's steps in the state machine's order; a failure goes to NotifyFailure, as the Catch does.
func (f *fleet) rotateHost(t *testing.T, id string) (rotation.RecordOutput, error) {
	t.Helper()
	st := rotation.State{HostID: id}
	var err error
	for _, step := range []func(context.Context, rotation.State) (rotation.State, error){
		f.steps.SendCSR, f.steps.CommandResult, f.steps.CheckCSR, f.steps.Issue, f.steps.GetCertificate,
		f.steps.SendInstall, f.steps.CommandResult,
	} {
		if st, err = retried(step, st); err != nil {
			break
		}
	}
	var rec rotation.RecordOutput
	if err == nil {
		rec, err = f.steps.Record(context.Background(), st)
	}
	if err != nil {
		var le interface{ Error() string } = err
		name := errName(err)
		if name == "" {
			name = "States.TaskFailed"
		}
		cause, _ := json.Marshal(map[string]string{"errorMessage": le.Error(), "errorType": name})
		if _, nerr := f.steps.NotifyFailure(context.Background(), rotation.Failure{HostID: id, Error: rotation.TaskError{Error: name, Cause: string(cause)}}); nerr != nil {
			t.Fatalf("NotifyFailure() error = %v", nerr)
		}
	}
	return rec, err
}

func hostN(i int) string { return fmt.Sprintf("i-%017d", i) }

func TestRotateThreeHosts(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.srv.PCA.SetPendingGets(2) // Private CA signs asynchronously: GetCertificate waits twice
	hosts := []string{hostN(1), hostN(2), "mi-0123456789abcdef0"}
	for _, h := range hosts {
		f.addHost(t, h, nil, false)
	}
	ctx := context.Background()
	sel, err := f.sel.Select(ctx, rotation.SelectInput{})
	if err != nil {
		t.Fatalf("Select() error = %v", err)
	}
	if sel.Count != 3 || sel.Overdue != 3 || sel.ItemsRead != 3 || sel.Bucket != manifestBucket {
		t.Fatalf("Select() = %+v, want 3 hosts from 3 index items in %s", sel, manifestBucket)
	}
	if sel.CADaysLeft == nil || *sel.CADaysLeft < 3000 {
		t.Errorf("Select().CADaysLeft = %v, want the fake CA's ten years", sel.CADaysLeft)
	}
	raw, ok := f.srv.S3.Object(sel.Bucket, sel.Key)
	if !ok {
		t.Fatalf("manifest s3://%s/%s not written", sel.Bucket, sel.Key)
	}
	var items []rotation.HostItem
	if err := json.Unmarshal(raw, &items); err != nil || len(items) != 3 {
		t.Fatalf("manifest = %s (%v), want 3 items", raw, err)
	}
	for _, it := range items {
		rec, err := f.rotateHost(t, it.HostID)
		if err != nil {
			t.Fatalf("rotate %s: %v", it.HostID, err)
		}
		item := f.item(t, it.HostID)
		if item[rotation.AttrSerial] != rec.Serial || f.live(it.HostID) != rec.Serial {
			t.Errorf("%s: item serial %s, live %s, want %s", it.HostID, item[rotation.AttrSerial], f.live(it.HostID), rec.Serial)
		}
		exp, err := time.Parse(rotation.ExpiryLayout, item[rotation.AttrExpiry])
		if err != nil {
			t.Errorf("%s: expiry %q not in the sample's format: %v", it.HostID, item[rotation.AttrExpiry], err)
		}
		renew, _ := time.Parse(rotation.RenewAtLayout, item[rotation.AttrRenewAt])
		life := exp.Sub(f.now)
		if lo, hi := f.now.Add(life*60/100), f.now.Add(life*72/100); renew.Before(lo) || renew.After(hi) {
			t.Errorf("%s: renewAt %v, want about two thirds of the lifetime (%v to %v)", it.HostID, renew, lo, hi)
		}
		for _, gone := range []string{rotation.AttrPendingCertARN, rotation.AttrPendingCSRHash, rotation.AttrLastError} {
			if _, ok := item[gone]; ok {
				t.Errorf("%s: %s still set after the rotation", it.HostID, gone)
			}
		}
		if item[rotation.AttrStatus] != rotation.StatusRotated || item[rotation.AttrLastRotation] == "" {
			t.Errorf("%s: status %q lastRotation %q", it.HostID, item[rotation.AttrStatus], item[rotation.AttrLastRotation])
		}
	}
	if n := f.srv.PCA.Issued(); n != 3 {
		t.Errorf("certificates issued = %d, want 3", n)
	}
	if n := len(f.srv.RolesAnywhere.Sessions()); n != 3 {
		t.Errorf("CreateSession calls = %d, want 3 (one test per host)", n)
	}
	for _, c := range f.srv.Commands.Sent() {
		if c.DocumentName != csrDocName && c.DocumentName != installDocName {
			t.Errorf("command used document %s", c.DocumentName)
		}
	}
	// Nothing is due any more.
	sel, err = f.sel.Select(ctx, rotation.SelectInput{})
	if err != nil || sel.Count != 0 || sel.ItemsRead != 0 {
		t.Errorf("second Select() = %+v, %v; want nothing due and nothing read", sel, err)
	}
}

func TestOfflineHost(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	id := hostN(9)
	f.addHost(t, id, nil, true)
	ctx := context.Background()
	st, err := f.steps.SendCSR(ctx, rotation.State{HostID: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.steps.CommandResult(ctx, st); errName(err) != rotation.ErrCommandInProgress {
		t.Fatalf("CommandResult() on an offline host = %v, want CommandInProgress", err)
	}
	f.srv.Commands.SetNow(func() time.Time { return time.Now().Add(time.Hour) })
	_, err = f.steps.CommandResult(ctx, st)
	if errName(err) != rotation.ErrCommandFailed || !strings.Contains(err.Error(), "TimedOut") {
		t.Fatalf("CommandResult() after the delivery timeout = %v, want CommandFailed TimedOut", err)
	}
	out, err := f.steps.NotifyFailure(ctx, rotation.Failure{HostID: id, Error: rotation.TaskError{Error: "CommandFailed",
		Cause: `{"errorType":"CommandFailed","errorMessage":"` + err.Error() + `"}`}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.srv.SNS.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Certificate rotation failed for "+id+": CommandFailed") {
		t.Fatalf("SNS messages = %+v, want the sample's prefix", msgs)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(msgs[0].Message), &body); err != nil || body["default"] != out.Message {
		t.Errorf("SNS message %q is not {\"default\": message} (MessageStructure json)", msgs[0].Message)
	}
	item := f.item(t, id)
	if item[rotation.AttrStatus] != rotation.StatusFailed || !strings.Contains(item[rotation.AttrLastError], "TimedOut") {
		t.Errorf("item = %v, want status FAILED and the error", item)
	}
	// The host stays due: the next run retries it.
	if sel, err := f.sel.Select(ctx, rotation.SelectInput{}); err != nil || sel.Count != 1 {
		t.Errorf("Select() after the failure = %+v, %v; want the host still due", sel, err)
	}
}

func TestHostItemRefusedBeforeSendCommand(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	ctx := context.Background()
	bad := map[string]map[string]string{
		hostN(20): {rotation.AttrKeyPath: "/tmp;touch PWNED"},
		hostN(21): {rotation.AttrCertPath: "/etc/$(id)"},
		hostN(22): {rotation.AttrCACertPath: "../ca"},
		hostN(23): {rotation.AttrSigningHelper: "/root\nreboot"},
	}
	for id, attrs := range bad {
		f.addHost(t, id, attrs, false)
		_, err1 := f.steps.SendCSR(ctx, rotation.State{HostID: id})
		_, err2 := f.steps.SendInstall(ctx, rotation.State{HostID: id, Certificate: "x", Chain: "y", Serial: "AB"})
		if errName(err1) != rotation.ErrHostInvalid || errName(err2) != rotation.ErrHostInvalid {
			t.Errorf("%s %v: SendCSR %v, SendInstall %v; want HostInvalid", id, attrs, err1, err2)
		}
	}
	for _, id := range []string{"i-123;reboot", "$(reboot)", hostN(99)} { // the last is not in the table
		if _, err := f.steps.SendCSR(ctx, rotation.State{HostID: id}); errName(err) != rotation.ErrHostInvalid {
			t.Errorf("SendCSR(%q) = %v, want HostInvalid", id, err)
		}
	}
	if sent := f.srv.Commands.Sent(); len(sent) != 0 {
		t.Fatalf("commands sent = %+v, want none", sent)
	}
	if n := f.srv.Calls(awsfake.ServiceSSM, "SendCommand"); n != 0 {
		t.Fatalf("SendCommand calls = %d, want 0", n)
	}
}

func TestIssueIdempotent(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	id := hostN(30)
	f.addHost(t, id, nil, false)
	ctx := context.Background()
	st, err := retried(f.steps.CommandResult, mustState(t)(f.steps.SendCSR(ctx, rotation.State{HostID: id})))
	if err != nil {
		t.Fatal(err)
	}
	st = mustState(t)(f.steps.CheckCSR(ctx, st))
	if len(st.IdempotencyToken) != 36 {
		t.Fatalf("idempotency token %q, want 36 characters", st.IdempotencyToken)
	}
	first := mustState(t)(f.steps.Issue(ctx, st))
	again := mustState(t)(f.steps.Issue(ctx, st)) // a retry after the 5-minute token window: the record answers
	if !again.Reused || again.CertificateARN != first.CertificateARN {
		t.Errorf("second Issue() = %+v, want the recorded %s reused", again, first.CertificateARN)
	}
	if n := f.srv.PCA.Issued(); n != 1 {
		t.Errorf("certificates issued = %d, want 1", n)
	}
	if n := f.srv.Calls(awsfake.ServicePCA, "IssueCertificate"); n != 1 {
		t.Errorf("IssueCertificate calls = %d, want 1", n)
	}
	if it := f.item(t, id); it[rotation.AttrPendingCSRHash] != st.IdempotencyToken || it[rotation.AttrPendingCertARN] != first.CertificateARN {
		t.Errorf("item = %v, want the token and ARN recorded", it)
	}
}

func mustState(t *testing.T) func(rotation.State, error) rotation.State {
	return func(st rotation.State, err error) rotation.State {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

func TestIssueErrors(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	id := hostN(31)
	f.addHost(t, id, nil, false)
	ctx := context.Background()
	st, err := retried(f.steps.CommandResult, mustState(t)(f.steps.SendCSR(ctx, rotation.State{HostID: id})))
	if err != nil {
		t.Fatal(err)
	}
	st = mustState(t)(f.steps.CheckCSR(ctx, st))

	f.srv.Inject(awsfake.ServicePCA, "IssueCertificate", awsfake.Fault{Status: 400, Code: "ThrottlingException"})
	if _, err := f.steps.Issue(ctx, st); errName(err) != rotation.ErrThrottled {
		t.Errorf("Issue() throttled = %v, want Throttled", err)
	}
	f.srv.ClearFaults()

	f.srv.PCA.SetUsageMode("SHORT_LIVED_CERTIFICATE")
	long := *f.steps
	long.Config.ValidityDays = 30
	if _, err := long.Issue(ctx, st); errName(err) != rotation.ErrIssuanceFailed {
		t.Errorf("Issue() of 30 days on a short-lived CA = %v, want IssuanceFailed", err)
	}
	if n := f.srv.PCA.Issued(); n != 0 {
		t.Errorf("certificates issued = %d, want 0", n)
	}

	issued := mustState(t)(f.steps.Issue(ctx, st))
	f.srv.PCA.SetPendingGets(1)
	if _, err := f.steps.GetCertificate(ctx, issued); err != nil {
		t.Fatalf("GetCertificate() = %v", err) // the pending count applies to later issues
	}
	other := rotation.State{HostID: hostN(32), CSR: st.CSR, CertificateARN: issued.CertificateARN}
	if _, err := f.steps.GetCertificate(ctx, other); errName(err) != rotation.ErrIssuanceFailed {
		t.Errorf("GetCertificate() for another host = %v, want IssuanceFailed (the certificate names %s)", err, id)
	}
}

func TestCheckCSR(t *testing.T) {
	t.Parallel()
	e := newHostEnv(t)
	good := e.phase1(host, "RSA_2048")
	otherHost := e.phase1("i-0fedcba9876543210", "EC_prime256v1")
	weak := csrPEM(t, host, 1024, nil)
	withSAN := csrPEM(t, host, 2048, []string{"evil.example.com"})
	cases := []struct {
		name, output, want string
	}{
		{"wrong CN", otherHost, `CN "i-0fedcba9876543210" is not the host id`},
		{"weak key", weak, "RSA key of 1024 bits"},
		{"alternative names", withSAN, "subject alternative names"},
		{"no CSR", "openssl: error\n", "no PEM CERTIFICATE REQUEST"},
		{"two CSRs", good + otherHost, "more than one CSR"},
		{"a key in the output", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PRIVATE KEY"},
	}
	s := &rotation.Steps{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CheckCSR(context.Background(), rotation.State{HostID: host, Output: tc.output})
			if errName(err) != rotation.ErrCSRRejected || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckCSR() = %v, want CSRRejected containing %q", err, tc.want)
			}
		})
	}
	st, err := s.CheckCSR(context.Background(), rotation.State{HostID: host, Output: "noise\n" + good, CommandID: "c"})
	if err != nil || st.CSR == "" || st.CommandID != "" || st.Output != "" {
		t.Errorf("CheckCSR(good) = %+v, %v", st, err)
	}
}

func TestTrigger(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	cfg := fastConfig(t)
	tr := &rotation.Trigger{SFN: sfn.NewFromConfig(cfg), Topic: sns.NewFromConfig(cfg), Config: rotation.Config{
		StateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:CertRotation-Workflow", TopicARN: topicARN,
	}}
	ctx := context.Background()
	out, err := tr.Handle(ctx, rotation.TriggerInput{})
	if err != nil || !strings.HasPrefix(out.ExecutionARN, "arn:aws:states:") {
		t.Fatalf("Handle({}) = %+v, %v", out, err)
	}
	if _, err := tr.Handle(ctx, rotation.TriggerInput{HostID: "mi-0123456789abcdef0"}); err != nil {
		t.Fatal(err)
	}
	ex := srv.SFN.Executions()
	if len(ex) != 2 || ex[0].Input != "{}" || ex[1].Input != `{"hostID":"mi-0123456789abcdef0"}` {
		t.Fatalf("executions = %+v", ex)
	}
	if _, err := tr.Handle(ctx, rotation.TriggerInput{HostID: "i-1;reboot"}); err == nil {
		t.Fatal("Handle with a bad host id = nil error")
	}
	msgs := srv.SNS.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Certificate rotation trigger failed: host id") {
		t.Fatalf("SNS messages = %+v, want the trigger failure prefix", msgs)
	}
	if n := len(srv.SFN.Executions()); n != 2 {
		t.Errorf("executions = %d after a refused id, want 2", n)
	}
}

func TestFailureText(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	s := &rotation.Steps{Topic: sns.NewFromConfig(fastConfig(t)), Config: rotation.Config{TopicARN: topicARN}}
	for _, tc := range []struct {
		in   rotation.TaskError
		want string
	}{
		{rotation.TaskError{Error: "States.Timeout"}, "States.Timeout"},
		{rotation.TaskError{Error: "CSRRejected", Cause: `{"errorType":"CSRRejected","errorMessage":"host x: CSR subject CN"}`}, "CSRRejected: host x: CSR subject CN"},
		{rotation.TaskError{Error: "States.TaskFailed", Cause: "plain text cause"}, "States.TaskFailed: plain text cause"},
	} {
		// An id that is not valid keeps the table out of the test.
		out, err := s.NotifyFailure(context.Background(), rotation.Failure{HostID: "bad id", Error: tc.in})
		if err != nil {
			t.Fatal(err)
		}
		if want := `Certificate rotation failed for "bad id": ` + tc.want; out.Message != want {
			t.Errorf("NotifyFailure(%+v) message = %q, want %q", tc.in, out.Message, want)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	ctx := context.Background()
	for i := range 30 {
		f.addHost(t, hostN(100+i), nil, false)
		var renewAt time.Time
		switch {
		case i >= 10: // not due for a day
			renewAt = f.now.Add(24 * time.Hour)
		case i < 3: // missed two scheduled runs and more: stale
			renewAt = f.now.Add(-rotation.StaleAfter - time.Minute)
		case i == 3: // just inside the bound: due, not stale
			renewAt = f.now.Add(-rotation.StaleAfter + time.Minute)
		default:
			continue
		}
		_, err := f.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(f.table), Key: map[string]types.AttributeValue{rotation.AttrHostID: &types.AttributeValueMemberS{Value: hostN(100 + i)}},
			UpdateExpression:          aws.String("SET renewAt = :r"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: renewAt.Format(rotation.RenewAtLayout)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.addHost(t, "i-bad;reboot", nil, false) // written by hand, due, refused
	out, err := f.sel.Select(ctx, rotation.SelectInput{})
	if err != nil || out.Count != 10 || out.Overdue != 10 || out.Stale != 3 || out.Truncated || out.ItemsRead != 11 {
		t.Fatalf("Select() = %+v, %v; want 10 due hosts (3 stale) from 11 index items (one refused)", out, err)
	}
	if ids, due, read, err := f.sel.Due(ctx, f.now); err != nil || len(ids) != 10 || due != 10 || read != 11 {
		t.Errorf("Due() = %d ids, %d due, %d read, %v; want 10, 10, 11", len(ids), due, read, err)
	}
	raw, _ := f.srv.S3.Object(out.Bucket, out.Key)
	if strings.Contains(string(raw), "reboot") {
		t.Fatalf("manifest holds the refused id: %s", raw)
	}
	small := *f.sel
	small.Config.MaxHosts = 4
	if out, err := small.Select(ctx, rotation.SelectInput{}); err != nil || out.Count != 4 || out.Overdue != 10 || !out.Truncated {
		t.Errorf("Select() with MaxHosts 4 = %+v, %v; want 4 of 10, truncated", out, err)
	}
	if out, err := f.sel.Select(ctx, rotation.SelectInput{HostID: hostN(125)}); err != nil || out.Count != 1 || out.ItemsRead != 0 {
		t.Errorf("Select(rotate now) = %+v, %v; want the one host and no query", out, err)
	}
	if _, err := f.sel.Select(ctx, rotation.SelectInput{HostID: "i-1`reboot`"}); errName(err) != rotation.ErrHostInvalid {
		t.Errorf("Select(bad id) = %v, want HostInvalid", err)
	}
}

func TestCommandNotVisibleYet(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	id := hostN(40)
	f.addHost(t, id, nil, false)
	f.srv.Commands.SetInvisibleReads(2)
	ctx := context.Background()
	st := mustState(t)(f.steps.SendCSR(ctx, rotation.State{HostID: id}))
	for range 2 {
		if _, err := f.steps.CommandResult(ctx, st); errName(err) != rotation.ErrCommandInProgress {
			t.Fatalf("CommandResult() right after SendCommand = %v, want CommandInProgress", err)
		}
	}
	st, err := retried(f.steps.CommandResult, st)
	if err != nil || !strings.Contains(st.Output, "BEGIN CERTIFICATE REQUEST") {
		t.Fatalf("CommandResult() = %v, output %q", err, st.Output)
	}
}

// The host's lease: one run at a time; the same run takes it again (a retried step); an expired lease is taken over;
// a run that lost the lease issues nothing; the failure and the record release it.
func TestHostLease(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	id := hostN(50)
	f.addHost(t, id, nil, false)
	ctx := context.Background()
	const runA, runB = "arn:aws:states:us-east-1:123456789012:execution:CertRotation-Workflow:a", "arn:aws:states:us-east-1:123456789012:execution:CertRotation-Workflow:b"
	st := mustState(t)(f.steps.SendCSR(ctx, rotation.State{HostID: id, Run: runA}))
	if _, err := f.steps.SendCSR(ctx, rotation.State{HostID: id, Run: runB}); errName(err) != rotation.ErrHostBusy {
		t.Fatalf("SendCSR() by a second run = %v, want HostBusy", err)
	}
	if _, err := f.steps.SendCSR(ctx, rotation.State{HostID: id, Run: runA}); err != nil {
		t.Fatalf("SendCSR() retried by the lease's run = %v", err)
	}
	if it := f.item(t, id); it[rotation.AttrLeaseOwner] != runA || it[rotation.AttrLeaseUntil] == "" {
		t.Fatalf("item %v, want the lease of run a", it)
	}
	st, err := retried(f.steps.CommandResult, st)
	if err != nil {
		t.Fatal(err)
	}
	st = mustState(t)(f.steps.CheckCSR(ctx, st))
	if st.Run != runA {
		t.Fatalf("CheckCSR() dropped the run: %+v", st)
	}
	// Run a's lease expires (a run that died); run b takes the host over, and run a may no longer issue.
	later := *f.steps
	later.Now = func() time.Time { return time.Now().Add(rotation.LeaseDuration + time.Minute) }
	if _, err := later.SendCSR(ctx, rotation.State{HostID: id, Run: runB}); err != nil {
		t.Fatalf("SendCSR() after the lease expired = %v", err)
	}
	if _, err := f.steps.Issue(ctx, st); errName(err) != rotation.ErrHostBusy || f.srv.PCA.Issued() != 0 {
		t.Fatalf("Issue() by the run that lost the lease = %v (issued %d), want HostBusy and nothing issued", err, f.srv.PCA.Issued())
	}
	// Run b fails: its failure record releases the lease; run a's stale failure does not touch run b's.
	if _, err := f.steps.NotifyFailure(ctx, rotation.Failure{HostID: id, Run: runA, Error: rotation.TaskError{Error: "States.Timeout"}}); err != nil {
		t.Fatal(err)
	}
	if it := f.item(t, id); it[rotation.AttrLeaseOwner] != runB {
		t.Fatalf("item %v, want run b's lease kept", it)
	}
	if _, err := f.steps.NotifyFailure(ctx, rotation.Failure{HostID: id, Run: runB, Error: rotation.TaskError{Error: "States.Timeout"}}); err != nil {
		t.Fatal(err)
	}
	if it := f.item(t, id); it[rotation.AttrLeaseOwner] != "" || it[rotation.AttrLeaseUntil] != "" {
		t.Fatalf("item %v, want the lease released", it)
	}
	// A lease written by hand with a number for leaseUntil does not hold the host forever.
	_, err = f.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(f.table), Key: map[string]types.AttributeValue{rotation.AttrHostID: &types.AttributeValueMemberS{Value: id}},
		UpdateExpression: aws.String("SET leaseOwner = :o, leaseUntil = :u"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: "someone"}, ":u": &types.AttributeValueMemberN{Value: "99999999999"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.steps.SendCSR(ctx, rotation.State{HostID: id, Run: runA}); err != nil {
		t.Errorf("SendCSR() over a hand-written lease = %v", err)
	}
}

func TestRunFailureText(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	s := &rotation.Steps{Topic: sns.NewFromConfig(fastConfig(t)), Config: rotation.Config{TopicARN: topicARN}}
	many := make([]string, 12)
	for i := range many {
		many[i] = hostN(i)
	}
	for _, tc := range []struct {
		input string
		err   rotation.TaskError
		want  string
	}{
		{`{}`, rotation.TaskError{Error: "States.ExceedToleratedFailureThreshold", Cause: "3 of 3 items failed"},
			"Certificate rotation run failed for the due hosts: States.ExceedToleratedFailureThreshold: 3 of 3 items failed"},
		{`{"hostID":"mi-0123456789abcdef0"}`, rotation.TaskError{Error: "Lambda.ServiceException", Cause: `{"errorMessage":"Lambda is unavailable","errorType":"ServiceException"}`},
			"Certificate rotation run failed for mi-0123456789abcdef0: Lambda.ServiceException: Lambda is unavailable"},
		{`{"hostIDs":` + mustJSONText(many) + `}`, rotation.TaskError{Error: "States.Timeout"},
			"Certificate rotation run failed for " + strings.Join(many[:10], ", ") + " and 2 more: States.Timeout"},
		{`"not an object"`, rotation.TaskError{Error: "States.Runtime", Cause: "bad"}, "Certificate rotation run failed for the due hosts: States.Runtime: bad"},
	} {
		out, err := s.NotifyRunFailure(context.Background(), rotation.RunFailure{Input: json.RawMessage(tc.input), Error: tc.err})
		if err != nil || out.Message != tc.want {
			t.Errorf("NotifyRunFailure(%s, %+v) = %q, %v; want %q", tc.input, tc.err, out.Message, err, tc.want)
		}
	}
	if n := len(srv.SNS.Messages()); n != 4 {
		t.Errorf("%d notifications, want 4", n)
	}
}

func mustJSONText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
