package stacks

import (
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/policies"
)

var defaultVending = sync.OnceValues(func() (assertions.Template, string) {
	tpls, dir, err := synthApp(nil)
	if err != nil {
		panic(err)
	}
	return tpls["CertVending-dev"], dir
})

func TestVendingStackAPI(t *testing.T) {
	tpl, _ := defaultVending()
	if tpl == nil {
		t.Fatal("no CertVending-dev stack in the platform app")
	}
	check(t, "regional REST API", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), map[string]interface{}{
			"EndpointConfiguration": map[string]interface{}{"Types": []interface{}{"REGIONAL"}},
		})
	})
	check(t, "stage prod throttled below the IoT quotas, traced, access-logged, no data trace", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Stage"), map[string]interface{}{
			"StageName":      "prod",
			"TracingEnabled": true,
			"AccessLogSetting": assertions.Match_ObjectLike(&map[string]interface{}{
				"DestinationArn": assertions.Match_AnyValue(),
			}),
			"MethodSettings": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
				"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20, "DataTraceEnabled": false, "LoggingLevel": "INFO",
			})}),
		})
	})
	check(t, "token authorizer with cache off and the seed's header shape", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Authorizer"), map[string]interface{}{
			"Type":                         "TOKEN",
			"Name":                         "api_authorizer",
			"AuthorizerResultTtlInSeconds": 0,
			"IdentitySource":               "method.request.header.Authorization",
			"IdentityValidationExpression": "^DeviceToken [A-Za-z0-9._~+/=-]+$",
		})
	})
	check(t, "POST /register and GET / need the authorizer; POST validates its body", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Method"), map[string]interface{}{
			"HttpMethod": "POST", "AuthorizationType": "CUSTOM",
			"RequestValidatorId": assertions.Match_AnyValue(),
			"RequestModels":      map[string]interface{}{"application/json": assertions.Match_AnyValue()},
		})
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Method"), map[string]interface{}{"HttpMethod": "GET", "AuthorizationType": "CUSTOM"})
		tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Method"), jsii.Number(2)) // no wildcard CORS preflight
	})
	check(t, "request model", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Model"), map[string]interface{}{
			"Schema": assertions.Match_ObjectLike(&map[string]interface{}{
				"required": []interface{}{"thingName", "version"}, "additionalProperties": false,
			}),
		})
	})
	check(t, "gateway errors in the API's JSON error shape", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::GatewayResponse"), map[string]interface{}{
			"ResponseType":      "DEFAULT_4XX",
			"ResponseTemplates": map[string]interface{}{"application/json": `{"status": false, "error": $context.error.messageString}`},
		})
	})
}

func TestVendingStackState(t *testing.T) {
	tpl, _ := defaultVending()
	check(t, "seed config parameter path", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SSM::Parameter"), map[string]interface{}{
			"Name": "/multa-cvm/dev/config-parameters/appConfig", "Type": "String",
		})
	})
	check(t, "registrations table keyed by thing name with PITR and a TTL on expiresAt", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::GlobalTable"), map[string]interface{}{
			"KeySchema":               []interface{}{map[string]interface{}{"AttributeName": "thingName", "KeyType": "HASH"}},
			"BillingMode":             "PAY_PER_REQUEST",
			"TimeToLiveSpecification": map[string]interface{}{"AttributeName": "expiresAt", "Enabled": true},
		})
	})
	check(t, "managed thing type and policy of the seed's configuration, kept when the stack goes", func() {
		tpl.HasResource(jsii.String("AWS::IoT::ThingType"), map[string]interface{}{
			"Properties": map[string]interface{}{"ThingTypeName": "CvmGenericType"}, "DeletionPolicy": "Retain",
		})
		tpl.HasResource(jsii.String("AWS::IoT::Policy"), map[string]interface{}{
			"Properties": map[string]interface{}{"PolicyName": "multa_backend_policy_dev"}, "DeletionPolicy": "Retain",
		})
	})
	check(t, "registry events into Firehose, errors logged", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::TopicRule"), map[string]interface{}{
			"RuleName": "multa_cvm_registry_events_dev",
			"TopicRulePayload": assertions.Match_ObjectLike(&map[string]interface{}{
				"Sql":         "SELECT * FROM '$aws/events/thing/#'",
				"Actions":     []interface{}{map[string]interface{}{"Firehose": assertions.Match_ObjectLike(&map[string]interface{}{})}},
				"ErrorAction": map[string]interface{}{"CloudwatchLogs": assertions.Match_ObjectLike(&map[string]interface{}{})},
			}),
		})
		tpl.HasResourceProperties(jsii.String("Custom::AWS"), map[string]interface{}{
			"Create": assertions.Match_StringLikeRegexp(jsii.String(`UpdateEventConfigurations.*THING.*Enabled.*true`)),
		})
	})
	check(t, "archive bucket encrypted, private, expiring", func() {
		tpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]interface{}{
			"BucketEncryption": assertions.Match_AnyValue(),
			"PublicAccessBlockConfiguration": map[string]interface{}{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
			"LifecycleConfiguration": map[string]interface{}{"Rules": assertions.Match_ArrayWith(&[]interface{}{
				assertions.Match_ObjectLike(&map[string]interface{}{"ExpirationInDays": 90, "Status": "Enabled"}),
			})},
		})
	})
	check(t, "functions know the config path and table, not any token", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"APP_CONFIG_PATH": "/multa-cvm/dev/config-parameters", "TOKENS_SECRET_ARN": map[string]interface{}{"Ref": assertions.Match_AnyValue()},
			})},
		})
	})
	for id, props := range resourcesOfType(tpl, "AWS::Lambda::Permission") {
		if props["SourceAccount"] == nil || props["SourceArn"] == nil {
			t.Errorf("Lambda permission %s = %v, want SourceAccount and SourceArn (confused-deputy guard)", id, props)
		}
	}
	text := string(mustJSON(templateJSON(tpl)))
	if strings.Contains(text, "DEVICE_AUTHORIZER_VALID_TOKENS") {
		t.Errorf("template carries a token list")
	}
	if strings.Contains(text, `"iot:*"`) {
		t.Errorf("template grants iot:*")
	}
}

func TestVendingEnvironments(t *testing.T) {
	envs, err := vendingEnvironments(map[string]interface{}{
		"prod": map[string]interface{}{"throttle_rate": 5.0, "authorizer_cache_seconds": 60.0, "cors_origins": []interface{}{"https://ops.example.com"}},
		"old":  nil,
	})
	if err != nil || len(envs) != 1 || envs[0].name != "prod" || envs[0].props.RateLimit != 5 || envs[0].props.AuthorizerCacheSeconds != 60 {
		t.Fatalf("vendingEnvironments() = %+v, %v, want one prod environment with its settings", envs, err)
	}
	for _, tc := range []struct {
		raw     interface{}
		wantErr string
	}{
		{map[string]interface{}{"Prod": map[string]interface{}{}}, `environment name "Prod" is not valid`},
		{map[string]interface{}{"dev": map[string]interface{}{"throttle": 1.0}}, `context environments.dev: json: unknown field "throttle"`},
		{map[string]interface{}{"dev": map[string]interface{}{"authorizer_cache_seconds": 7200.0}}, "authorizer_cache_seconds at most 3600"},
		{map[string]interface{}{"dev": map[string]interface{}{"config": map[string]interface{}{"DEVICE_AUTHORIZER_VALID_TOKENS": []interface{}{"abc"}}}}, "context environments.dev.config"},
		{map[string]interface{}{"old": nil}, "names no environment"},
	} {
		if _, err := vendingEnvironments(tc.raw); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("vendingEnvironments(%v) error = %v, want one containing %q", tc.raw, err, tc.wantErr)
		}
	}
	if envs, err := vendingEnvironments("dev, prod"); err != nil || len(envs) != 2 {
		t.Errorf(`vendingEnvironments("dev, prod") = %d environments, %v, want 2`, len(envs), err)
	}
}

// Every AWS::IoT::Policy the app defines passes the app's own IoT policy rules.
func TestEveryIoTPolicyPassesTheRules(t *testing.T) {
	vend, _ := defaultVending()
	cross, _ := defaultCrossAccount()
	thing, _ := defaultThing()
	for name, tpl := range map[string]assertions.Template{"CertVending-dev": vend, "certificate-based-stack": cross, "device1234": thing} {
		n, err := policies.CheckTemplate(mustJSON(templateJSON(tpl)), policies.CheckOptions{})
		if err != nil || n == 0 {
			t.Errorf("%s: CheckTemplate() = %d policies, %v; want at least one and no finding", name, n, err)
		}
	}
}
