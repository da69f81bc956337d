// Package vendtest sets up, for tests of the certificate vending API, the AWS side its functions expect: the
// configuration parameter, the tokens secret, a thing type and policy in the fake AWS IoT, and a registrations
// table on DynamoDB Local.
package vendtest

import (
	"context"
	"fmt"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/testsvc"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/internal/vending/vendaws"
)

// Names used by the environment.
const (
	ThingType  = "CvmGenericType"
	PolicyName = "multa_backend_policy_dev"
	ConfigPath = "/multa-cvm/test/config-parameters"
	SecretName = "vending-tokens"
)

// SeedConfig is the seed's default appConfig.
const SeedConfig = `{"AWS_ROOT_CA": {"PREFERRED": "https://www.amazontrust.com/repository/AmazonRootCA1.pem",
 "BACKUP": "https://www.amazontrust.com/repository/AmazonRootCA3.pem"},
 "POLICIES": {"CvmGenericType": {"name": "multa_backend_policy_dev"}},
 "ATTRIBUTES": {"CvmGenericType": [{"name": "creationDate"}, {"name": "version"}]},
 "DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "2",
 "DEVICE_AUTHORIZER_TOKEN_IDENTIFIER": "DeviceToken",
 "DEVICE_AUTHORIZER_VALID_TOKENS": []}`

const policyDocument = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],` +
	`"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}]}`

// Env is a prepared environment. The function environment variables (APP_CONFIG_PATH, TOKENS_SECRET_ARN,
// REGISTRATIONS_TABLE) and the SDK endpoints are set for the duration of the test.
type Env struct {
	Srv       *awsfake.Server
	DynamoDB  *dynamodb.Client
	Table     string
	SecretARN string
}

var tableSeq atomic.Int64

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// New prepares an environment. It skips the test when DynamoDB Local is not installed (fails under CI=true).
func New(t testing.TB) *Env {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	// The servers are plain HTTP on loopback, and Lambda sets no custom CA bundle: a bundle inherited from the
	// shell would only add its parsing time to every SDK configuration (and to the cold-start benchmarks).
	t.Setenv("AWS_CA_BUNDLE", "")
	testsvc.DynamoDB(t)
	ctx := context.Background()
	cfg, err := vendaws.LoadAWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Srv: srv, DynamoDB: dynamodb.NewFromConfig(cfg)}
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 200 {
		name = name[:200]
	}
	e.Table = fmt.Sprintf("reg-%d-%s", tableSeq.Add(1), name)
	if err := CreateTable(ctx, e.DynamoDB, e.Table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.Table)})
	})
	srv.SSM.Put(ConfigPath+"/"+vending.ConfigParameterName, SeedConfig)
	srv.IoT.PutThingType(ThingType)
	srv.IoT.PutPolicy(PolicyName, policyDocument)
	e.SecretARN = srv.Secrets.Put(SecretName, `{"tokens":[]}`)
	t.Setenv("APP_CONFIG_PATH", ConfigPath)
	t.Setenv("TOKENS_SECRET_ARN", e.SecretARN)
	t.Setenv("REGISTRATIONS_TABLE", e.Table)
	return e
}

// CreateTable defines the registrations table as the stack does: partition key thingName (S), on demand.
func CreateTable(ctx context.Context, api *dynamodb.Client, name string) error {
	_, err := api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(vending.TableKey), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(vending.TableKey), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}

// AddToken stores a new token in the tokens secret and returns its id and plaintext.
func (e *Env) AddToken(t testing.TB, thingPrefix string, expires time.Time, singleUse bool) (id, token string) {
	t.Helper()
	sec, _ := e.Srv.Secrets.Secret(e.SecretARN)
	set, err := vending.ParseTokens([]byte(sec.String))
	if err != nil {
		t.Fatalf("tokens secret: %v", err)
	}
	id, token, err = vending.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Add(id, token, thingPrefix, expires, singleUse); err != nil {
		t.Fatal(err)
	}
	b, err := set.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e.Srv.Secrets.Put(SecretName, string(b))
	return id, token
}

// Item returns the registrations table item with the given key, or nil.
func (e *Env) Item(t testing.TB, key string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := e.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(e.Table),
		Key:            map[string]ddbtypes.AttributeValue{vending.TableKey: &ddbtypes.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("get item %s: %v", key, err)
	}
	return out.Item
}
