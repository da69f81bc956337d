package testsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// recordingTB captures how Require ends a test.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name        string
		ci          string
		wantSkipped bool
		wantFailed  bool
	}{
		{name: "local run skips", ci: "", wantSkipped: true},
		{name: "CI=false skips", ci: "false", wantSkipped: true},
		{name: "CI=true fails", ci: "true", wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recordingTB{TB: t}
			Require(r, "frobnicator", "apt-get install frobnicator")
			if r.skipped != tt.wantSkipped || r.failed != tt.wantFailed {
				t.Errorf("Require with CI=%q: skipped=%v failed=%v, want skipped=%v failed=%v",
					tt.ci, r.skipped, r.failed, tt.wantSkipped, tt.wantFailed)
			}
			for _, want := range []string{"frobnicator", "apt-get install frobnicator"} {
				if !strings.Contains(r.msg, want) {
					t.Errorf("Require message = %q, want it to contain %q", r.msg, want)
				}
			}
		})
	}
}

func TestCheckCAPEM(t *testing.T) {
	ca, err := newTestCA("check CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := newTestCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{name: "one CA", in: ca.pem},
		{name: "two CAs", in: append(append([]byte{}, ca.pem...), other.pem...)},
		{name: "empty", in: nil, wantErr: true},
		{name: "not PEM", in: []byte("hello"), wantErr: true},
		{name: "a key", in: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), wantErr: true},
		{name: "trailing garbage", in: append(append([]byte{}, ca.pem...), "junk"...), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCAPEM(tt.in)
			if (err != nil) != tt.wantErr {
				t.Errorf("checkCAPEM(%.40q) = %v, want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

// dynamoClient builds a client the way a Lambda's main.go does, with the endpoint from the environment only.
func dynamoClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTESTSVC")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	return dynamodb.NewFromConfig(cfg)
}

func TestDynamoDB(t *testing.T) {
	endpoint := DynamoDB(t)
	if got := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); got != endpoint {
		t.Errorf("AWS_ENDPOINT_URL_DYNAMODB = %q, want %q", got, endpoint)
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Errorf("DynamoDB() = %q, want http://127.0.0.1:port", endpoint)
	}
	if again := DynamoDB(t); again != endpoint {
		t.Errorf("second DynamoDB() = %q, want the shared %q", again, endpoint)
	}

	ctx := context.Background()
	db := dynamoClient(t)
	table := fmt.Sprintf("testsvc-%d", time.Now().UnixNano())
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("CreateTable(%s) = %v, want success", table, err)
	}

	item := map[string]types.AttributeValue{
		"pk":    &types.AttributeValueMemberS{Value: "thing-1"},
		"state": &types.AttributeValueMemberS{Value: "first"},
	}
	put := func(state string) error {
		item["state"] = &types.AttributeValueMemberS{Value: state}
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(table),
			Item:                item,
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatalf("first conditional PutItem = %v, want success", err)
	}
	var ccf *types.ConditionalCheckFailedException
	if err := put("second"); !errors.As(err, &ccf) {
		t.Errorf("second conditional PutItem = %v, want ConditionalCheckFailedException", err)
	}

	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "thing-1"}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem = %v, want success", err)
	}
	state, _ := out.Item["state"].(*types.AttributeValueMemberS)
	if state == nil || state.Value != "first" {
		t.Errorf("GetItem state = %v, want \"first\" (the failed write must not have landed)", out.Item["state"])
	}
}

// mqttConnect connects a paho client to b over TLS, presenting cert unless it is nil, and returns it or the CONNECT
// error. maxVersion, when not zero, caps the TLS version the client offers.
func mqttConnect(b *Broker, clientID string, cert *leaf, maxVersion uint16) (mqtt.Client, error) {
	cfg := b.tlsProbeConfig()
	if cert != nil {
		cfg = b.TLSConfig(cert.tls)
	}
	if maxVersion != 0 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, maxVersion
	}
	opts := mqtt.NewClientOptions().
		AddBroker(b.URL()).
		SetClientID(clientID).
		SetTLSConfig(cfg).
		SetConnectTimeout(5 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func TestMosquitto(t *testing.T) {
	caA, err := newTestCA("client CA A")
	if err != nil {
		t.Fatal(err)
	}
	caB, err := newTestCA("client CA B")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := newTestCA("unknown CA")
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := append(append([]byte{}, caA.pem...), caB.pem...)
	b := Mosquitto(t, MosquittoOptions{ClientCAPEM: clientCAs})
	if !strings.HasPrefix(b.Addr, "127.0.0.1:") {
		t.Errorf("Broker.Addr = %q, want 127.0.0.1:port", b.Addr)
	}

	issue := func(ca *testCA, cn string) *leaf {
		t.Helper()
		l, err := ca.issueClient(cn)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// A refused client sees a TLS alert or a reset connection, depending on timing; the broker's log says why.
	tests := []struct {
		name       string
		cert       *leaf
		maxVersion uint16
		wantLog    string // empty: the client connects and round-trips a message; else the broker's refusal reason
	}{
		{name: "certificate from the first client CA", cert: issue(caA, "device-a")},
		{name: "certificate from the second client CA", cert: issue(caB, "device-b")},
		{name: "TLS 1.2 client", cert: issue(caA, "device-tls12"), maxVersion: tls.VersionTLS12},
		{name: "TLS 1.1 client", cert: issue(caA, "device-tls11"), maxVersion: tls.VersionTLS11, wantLog: "unsupported protocol"},
		{name: "certificate from another CA", cert: issue(stranger, "intruder"), wantLog: "certificate verify failed"},
		{name: "no certificate", cert: nil, wantLog: "peer did not return a certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientID := strings.ReplaceAll(tt.name, " ", "-")
			before := strings.Count(b.Log(), tt.wantLog)
			c, err := mqttConnect(b, clientID, tt.cert, tt.maxVersion)
			if tt.wantLog != "" {
				if err == nil {
					c.Disconnect(0)
					t.Fatalf("Connect(%s) = success, want refused", tt.name)
				}
				if !waitFor(func() bool { return strings.Count(b.Log(), tt.wantLog) > before }) {
					t.Errorf("Connect(%s) = %v; broker log has no new %q, want that refusal reason:\n%s",
						tt.name, err, tt.wantLog, b.Log())
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect(%s) = %v, want success", tt.name, err)
			}
			defer c.Disconnect(250)
			roundTrip(t, c, "testsvc/"+clientID)
			// use_identity_as_username: the broker logs the certificate's CN as the username.
			user := "u'" + tt.cert.tls.Leaf.Subject.CommonName + "'"
			if !waitFor(func() bool { return strings.Contains(b.Log(), user) }) {
				t.Errorf("broker log has no %s, want the certificate CN as username:\n%s", user, b.Log())
			}
		})
	}
}

// waitFor polls cond for up to 2s: the broker's log reaches us through a pipe, a little after the event.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// roundTrip subscribes to topic, publishes to it and waits for the message to come back.
func roundTrip(t *testing.T, c mqtt.Client, topic string) {
	t.Helper()
	got := make(chan string, 1)
	sub := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	if !sub.WaitTimeout(5*time.Second) || sub.Error() != nil {
		t.Fatalf("Subscribe(%s) = %v, want success", topic, sub.Error())
	}
	const payload = `{"hello":"world"}`
	pub := c.Publish(topic, 1, false, payload)
	if !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
		t.Fatalf("Publish(%s) = %v, want success", topic, pub.Error())
	}
	select {
	case msg := <-got:
		if msg != payload {
			t.Errorf("received %q on %s, want %q", msg, topic, payload)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no message on %s within 5s, want %q", topic, payload)
	}
}
