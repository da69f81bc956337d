package stacks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/naming"
	"github.com/iotcert/iotcert/internal/vending"
	"github.com/iotcert/iotcert/policies"
)

// Context keys of the vending stacks.
const (
	ctxPrefix       = "prefix"
	ctxEnvironments = "environments"
)

// Vending defaults. The stage throttle sits below AWS IoT's control-plane quotas (CreateCertificateFromCsr and
// AttachPolicy: 15 requests per second per account), so a burst of devices is slowed at the API instead of failing
// half-way inside AWS IoT.
const (
	DefaultVendingRate    = 10
	DefaultVendingBurst   = 20
	DefaultArchiveDays    = 90
	defaultVendingEnvName = "dev"
)

var envNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)

// VendingStackProps configures NewVendingStack.
type VendingStackProps struct {
	awscdk.StackProps
	// Prefix of the configuration path /<prefix>/<env>/config-parameters (the seed's "prefix"). Default: multa-cvm.
	Prefix string
	// Env names the environment: the stack is CertVending-<Env>. Required.
	Env string
	// ConfigJSON is the seed's appConfig document, validated by vending.ParseConfig. Default: the seed's dev configuration.
	ConfigJSON []byte
	// ManageIoTObjects defines the thing types and policies the configuration names. Default: true (the seed left
	// them to be made by hand in the console).
	ManageIoTObjects *bool
	// RateLimit and BurstLimit of the API stage, in requests per second.
	RateLimit, BurstLimit float64
	// AuthorizerCacheSeconds caches the authorizer's answer per token. Default: 0, which single-use tokens require.
	AuthorizerCacheSeconds float64
	// CorsOrigins allowed to call the API from a browser. Default: none (devices are not browsers).
	CorsOrigins []string
	// WebACLArn associates a WAFv2 web ACL with the stage.
	WebACLArn string
	// ArchiveDays keeps registry events in the archive bucket this many days. Default: 90 (the seed's retention).
	ArchiveDays float64
	// ThingNamePrefix, when set, is the prefix of every thing name this environment registers: the API refuses other
	// names and the registration function's IAM grants on things name only thing/<prefix>*, so it cannot touch another
	// environment's or stack's things. Default: none (any thing name, as the seed allowed; the grants then cover every
	// thing of the account and region).
	ThingNamePrefix string
	// CSRAllowSANs accepts subject alternative names in a device's CSR. Default: refused.
	CSRAllowSANs bool
}

// thingPrefixRE bounds a thing-name prefix: thing-name characters, leaving room for a name after it.
var thingPrefixRE = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,64}$`)

// VendingStack is the certificate vending API: devices call POST /register with a token and get a certificate.
type VendingStack struct {
	awscdk.Stack
	Api           awsapigateway.RestApi
	Table         awsdynamodb.TableV2
	Tokens        awssecretsmanager.Secret
	Config        awsssm.StringParameter
	Authorizer    *iotcert.GoFunction
	Registrar     *iotcert.GoFunction
	ArchiveBucket awss3.Bucket
}

// DefaultVendingConfig is the seed's appConfig for an environment, without its plaintext token list.
func DefaultVendingConfig(env string) []byte {
	c := map[string]interface{}{
		"AWS_ROOT_CA": map[string]string{
			"PREFERRED": "https://www.amazontrust.com/repository/AmazonRootCA1.pem",
			"BACKUP":    "https://www.amazontrust.com/repository/AmazonRootCA3.pem",
		},
		"POLICIES":                               map[string]interface{}{"CvmGenericType": map[string]string{"name": "multa_backend_policy_" + env}},
		"ATTRIBUTES":                             map[string]interface{}{"CvmGenericType": []map[string]string{{"name": "creationDate"}, {"name": "version"}}},
		"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "2",
		"DEVICE_AUTHORIZER_TOKEN_IDENTIFIER":     "DeviceToken",
	}
	b, _ := json.Marshal(c)
	return b
}

// NewVendingStack defines the API, its two functions, the registrations table, the token secret, the configuration
// parameter and the registry-event archive.
func NewVendingStack(scope constructs.Construct, id string, props *VendingStackProps) *VendingStack {
	p := *props
	if p.Prefix == "" {
		p.Prefix = vending.DefaultPrefix
	}
	if p.ConfigJSON == nil {
		p.ConfigJSON = DefaultVendingConfig(p.Env)
	}
	if p.RateLimit == 0 {
		p.RateLimit = DefaultVendingRate
	}
	if p.BurstLimit == 0 {
		p.BurstLimit = DefaultVendingBurst
	}
	if p.ArchiveDays == 0 {
		p.ArchiveDays = DefaultArchiveDays
	}
	conf, err := vending.ParseConfig(p.ConfigJSON)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", id, err))
	}
	if p.ThingNamePrefix != "" && !thingPrefixRE.MatchString(p.ThingNamePrefix) {
		panic(fmt.Sprintf("%s: thing_name_prefix %q is not valid: use 1 to 64 characters of a-z, A-Z, 0-9, ':', '_' and '-'", id, p.ThingNamePrefix))
	}
	sp := p.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Certificate vending API (" + p.Env + "): devices register with a token and get an AWS IoT certificate")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	s := &VendingStack{Stack: stack}

	// The seed's configuration parameter, at the seed's path; tokens are not in it.
	s.Config = awsssm.NewStringParameter(stack, jsii.String("AppConfig"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(vending.ConfigParameter(p.Prefix, p.Env)),
		StringValue:   jsii.String(string(p.ConfigJSON)),
		Description:   jsii.String("Certificate vending configuration (" + p.Env + "): root CAs, policies and attributes per thing type"),
	})
	s.Tokens = awssecretsmanager.NewSecret(stack, jsii.String("DeviceTokens"), &awssecretsmanager.SecretProps{
		Description: jsii.String("SHA-256 hashes of the device registration tokens (" + p.Env + "); managed with vend-token"),
	})
	iotcert.Acknowledge(s.Tokens, "AwsSolutions-SMG4",
		"the secret holds hashes of operator-issued tokens, added and revoked with vend-token; tokens carry their own expiry")
	s.Table = awsdynamodb.NewTableV2(stack, jsii.String("Registrations"), &awsdynamodb.TablePropsV2{
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(vending.TableKey), Type: awsdynamodb.AttributeType_STRING},
		Billing:                          awsdynamodb.Billing_OnDemand(nil),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN,
		// Guards that record nothing to clean up, and revocation records, expire on their own.
		TimeToLiveAttribute: jsii.String(vending.TTLAttribute),
	})

	configPath := vending.ConfigPath(p.Prefix, p.Env)
	configArn := stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ssm"), Resource: jsii.String("parameter"),
		ResourceName: jsii.String(strings.TrimPrefix(configPath, "/"))})
	readConfig := awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("ssm:GetParametersByPath"), Resources: &[]*string{configArn},
	})

	s.Authorizer = iotcert.NewGoFunction(stack, "AuthorizerFunction", &iotcert.GoFunctionProps{
		Handler:     "vendauth",
		Description: "Checks device registration tokens against their hashes",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(10)),
		MemorySize:  256,
		Environment: map[string]*string{
			"APP_CONFIG_PATH":     jsii.String(configPath),
			"TOKENS_SECRET_ARN":   s.Tokens.SecretArn(),
			"REGISTRATIONS_TABLE": s.Table.TableName(),
		},
	})
	s.Authorizer.Role.AddToPolicy(readConfig)
	// GetSecretValue only (GrantRead would add DescribeSecret, which the authorizer never calls).
	s.Authorizer.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("secretsmanager:GetSecretValue"), Resources: &[]*string{s.Tokens.SecretArn()},
	}))
	// The authorizer only looks up single-use token records (GrantReadData would add Scan, Query, BatchGetItem and
	// stream reads).
	s.Table.Grant(s.Authorizer.Role, jsii.String("dynamodb:GetItem"))

	s.Registrar = iotcert.NewGoFunction(stack, "RegisterFunction", &iotcert.GoFunctionProps{
		Handler:         "vendregister",
		Description:     "Registers a device: thing, certificate and policy, with no orphans on failure",
		Timeout:         awscdk.Duration_Seconds(jsii.Number(25)), // under API Gateway's 29 s integration timeout
		MemorySize:      512,
		Environment:     registrarEnvironment(&p, configPath, s.Table.TableName()),
		UnscopedActions: []string{"iot:CreateKeysAndCertificate", "iot:CreateCertificateFromCsr", "iot:ListThingTypes"},
	})
	s.Registrar.Role.AddToPolicy(readConfig)
	s.Table.GrantReadWriteData(s.Registrar.Role)
	arn := func(resource, name string) *string { return iotArn(stack, resource, name) }
	policyArns := []*string{}
	for _, name := range sortedValues(conf.Policies) {
		policyArns = append(policyArns, arn("policy", name))
	}
	s.Registrar.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:GetPolicy"), Resources: &policyArns,
	}))
	s.Registrar.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:AttachPolicy", "iot:DetachPolicy"),
		Resources: &[]*string{arn("cert", "*")},
	}))
	s.Registrar.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:UpdateCertificate", "iot:DeleteCertificate", "iot:DescribeCertificate"),
		Resources: &[]*string{arn("cert", "*")},
	}))
	thingTypeArns := []*string{}
	for _, t := range sortedKeys(conf.Policies) {
		thingTypeArns = append(thingTypeArns, arn("thingtype", t))
	}
	// Things are not taggable and IAM has no thing-type condition for DeleteThing or DetachThingPrincipal: the thing
	// name in the ARN is the only scope IAM offers, hence the environment's thing-name prefix.
	s.Registrar.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeThing", "iot:CreateThing", "iot:DeleteThing", "iot:AttachThingPrincipal", "iot:DetachThingPrincipal"),
		Resources: &[]*string{arn("thing", p.ThingNamePrefix+"*")},
	}))
	s.Registrar.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:CreateThing"), Resources: &thingTypeArns,
	}))
	iotcert.Acknowledge(s.Registrar.Role, "AwsSolutions-IAM5",
		"devices choose their thing names at registration and AWS IoT chooses certificate ids, so these grants name the thing and cert "+
			"resource types of this account and region (things by the environment's thing_name_prefix when set); the function deletes "+
			"and detaches only what the request itself created and recorded",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/"+p.ThingNamePrefix+"*",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*")

	if p.ManageIoTObjects == nil || *p.ManageIoTObjects {
		defineVendingIoTObjects(stack, conf)
	}
	s.Api = defineVendingAPI(stack, s, &p, conf)
	s.ArchiveBucket = defineRegistryArchive(stack, &p)
	iotcert.ScopeServicePermissions(stack)
	return s
}

// defineVendingIoTObjects defines the thing types and policies the configuration names, which the seed expected to be
// made by hand. Their names are part of the configuration's contract, hence physical names.
func defineVendingIoTObjects(stack awscdk.Stack, conf *vending.Config) {
	doc, err := policies.VendingDevicePolicy(*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())
	if err != nil {
		panic(fmt.Sprintf("%s: %v", *stack.StackName(), err))
	}
	// Retained on delete: the things and certificates registered through the API are not the stack's, and they keep
	// using both (a policy still attached to certificates could not be deleted anyway).
	for i, typ := range sortedKeys(conf.Policies) {
		tt := awsiot.NewCfnThingType(stack, jsii.String(fmt.Sprintf("ThingType%d", i+1)), &awsiot.CfnThingTypeProps{
			ThingTypeName: jsii.String(typ),
			ThingTypeProperties: &awsiot.CfnThingType_ThingTypePropertiesProperty{
				ThingTypeDescription: jsii.String("Devices registered through the certificate vending API"),
				SearchableAttributes: jsii.Strings(limit(conf.Attributes[typ], 3)...),
			},
		})
		tt.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
		pol := awsiot.NewCfnPolicy(stack, jsii.String(fmt.Sprintf("DevicePolicy%d", i+1)), &awsiot.CfnPolicyProps{
			PolicyName:     jsii.String(conf.Policies[typ]),
			PolicyDocument: doc,
		})
		pol.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	}
}

func defineVendingAPI(stack awscdk.Stack, s *VendingStack, p *VendingStackProps, conf *vending.Config) awsapigateway.RestApi {
	accessLogs := awslogs.NewLogGroup(stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	iotcert.AcknowledgeGuard(accessLogs, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
		"access logs record request metadata only (no bodies, no Authorization header); CloudWatch Logs encrypts them at rest")
	api := awsapigateway.NewRestApi(stack, jsii.String("Api"), &awsapigateway.RestApiProps{
		Description:                 jsii.String("Certificate vending API (" + p.Env + ")"),
		EndpointTypes:               &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		CloudWatchRole:              jsii.Bool(true), // stage logging needs the account's API Gateway CloudWatch role
		CloudWatchRoleRemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String("prod"), // the seed's stage
			ThrottlingRateLimit:  jsii.Number(p.RateLimit),
			ThrottlingBurstLimit: jsii.Number(p.BurstLimit),
			TracingEnabled:       jsii.Bool(true),
			LoggingLevel:         awsapigateway.MethodLoggingLevel_INFO,
			DataTraceEnabled:     jsii.Bool(false), // bodies carry private keys
			MetricsEnabled:       jsii.Bool(true),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat:      awsapigateway.AccessLogFormat_JsonWithStandardFields(standardAccessLogFields()),
		},
	})
	iotcert.Acknowledge(api, "AwsSolutions-IAM4",
		"API Gateway's account-level CloudWatch role uses the AWS managed AmazonAPIGatewayPushToCloudWatchLogs policy, as the service documents",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
	if len(p.CorsOrigins) > 0 {
		api.Root().AddCorsPreflight(&awsapigateway.CorsOptions{
			AllowOrigins: jsii.Strings(p.CorsOrigins...),
			AllowMethods: jsii.Strings("GET", "POST"),
			AllowHeaders: jsii.Strings("Authorization", "Content-Type"),
		})
	}

	// The seed's header format; a header of another shape is refused by API Gateway itself (401) without a Lambda call.
	authorizer := awsapigateway.NewTokenAuthorizer(stack, jsii.String("DeviceTokenAuthorizer"), &awsapigateway.TokenAuthorizerProps{
		Handler:         s.Authorizer.Function,
		AuthorizerName:  jsii.String("api_authorizer"),
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(p.AuthorizerCacheSeconds)),
		ValidationRegex: jsii.String("^" + regexp.QuoteMeta(conf.TokenIdentifier) + strings.Repeat(" [A-Za-z0-9._~+/=-]+", conf.TokenPayloadLength-1) + "$"),
	})
	// No test-invoke-stage permission: the console's test invoke calls the function without the authorizer.
	integration := awsapigateway.NewLambdaIntegration(s.Registrar.Function, &awsapigateway.LambdaIntegrationOptions{AllowTestInvoke: jsii.Bool(false)})
	methodOpts := &awsapigateway.MethodOptions{Authorizer: authorizer, AuthorizationType: awsapigateway.AuthorizationType_CUSTOM}

	model := api.AddModel(jsii.String("RegisterRequest"), &awsapigateway.ModelOptions{
		ContentType: jsii.String("application/json"),
		ModelName:   jsii.String("RegisterRequest"),
		Schema: &awsapigateway.JsonSchema{
			Schema:               awsapigateway.JsonSchemaVersion_DRAFT4,
			Title:                jsii.String("RegisterRequest"),
			Type:                 awsapigateway.JsonSchemaType_OBJECT,
			Required:             jsii.Strings("thingName", "version"),
			AdditionalProperties: jsii.Bool(false),
			Properties: &map[string]*awsapigateway.JsonSchema{
				"thingName": {Type: awsapigateway.JsonSchemaType_STRING, Pattern: jsii.String(thingNamePattern(p.ThingNamePrefix))},
				"version":   {Type: awsapigateway.JsonSchemaType_STRING, MinLength: jsii.Number(1), MaxLength: jsii.Number(vending.MaxVersionLength)},
				"csr":       {Type: awsapigateway.JsonSchemaType_STRING, MaxLength: jsii.Number(vending.MaxBodyBytes)},
			},
		},
	})
	validator := api.AddRequestValidator(jsii.String("BodyValidator"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestBody: jsii.Bool(true), ValidateRequestParameters: jsii.Bool(true),
	})
	api.Root().AddMethod(jsii.String("GET"), integration, methodOpts)
	api.Root().AddResource(jsii.String("register"), nil).AddMethod(jsii.String("POST"), integration, &awsapigateway.MethodOptions{
		Authorizer: authorizer, AuthorizationType: awsapigateway.AuthorizationType_CUSTOM,
		RequestValidator: validator,
		RequestModels:    &map[string]awsapigateway.IModel{"application/json": model},
	})
	iotcert.Acknowledge(api, "AwsSolutions-COG4",
		"devices are not Cognito users: they authenticate with operator-issued tokens checked by the Lambda token authorizer")

	// Errors that API Gateway answers itself (401, 403, 400 from validation, 429, 5xx) in the API's JSON error shape.
	// messageString is already a quoted JSON string; validationErrorString is not escaped, so it is not used.
	for _, r := range []struct {
		id  string
		typ awsapigateway.ResponseType
	}{{"Default4xx", awsapigateway.ResponseType_DEFAULT_4XX()}, {"Default5xx", awsapigateway.ResponseType_DEFAULT_5XX()}} {
		api.AddGatewayResponse(jsii.String(r.id), &awsapigateway.GatewayResponseOptions{
			Type:      r.typ,
			Templates: &map[string]*string{"application/json": jsii.String(`{"status": false, "error": $context.error.messageString}`)},
		})
	}
	if p.WebACLArn != "" {
		awswafv2.NewCfnWebACLAssociation(stack, jsii.String("WebACL"), &awswafv2.CfnWebACLAssociationProps{
			ResourceArn: api.DeploymentStage().StageArn(), WebAclArn: jsii.String(p.WebACLArn),
		})
	} else {
		iotcert.Acknowledge(api, "AwsSolutions-APIG3",
			"the stage is throttled below AWS IoT's quotas and every method needs a device token; a WAFv2 web ACL is attached when web_acl_arn is given")
	}
	awscdk.NewCfnOutput(stack, jsii.String("ApiUrl"), &awscdk.CfnOutputProps{
		Value: api.Url(), Description: jsii.String("Stage URL: cmd/register --url <this>"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("RegisterUrl"), &awscdk.CfnOutputProps{
		Value:       api.UrlForPath(jsii.String("/register")),
		Description: jsii.String("POST here with Authorization: DeviceToken <token>"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("TokensSecretArn"), &awscdk.CfnOutputProps{
		Value: s.Tokens.SecretArn(), Description: jsii.String("vend-token add --secret-id <this>"),
	})
	return api
}

// registrarEnvironment is the registration function's environment; the optional settings appear only when set.
func registrarEnvironment(p *VendingStackProps, configPath string, table *string) map[string]*string {
	env := map[string]*string{"APP_CONFIG_PATH": jsii.String(configPath), "REGISTRATIONS_TABLE": table}
	if p.ThingNamePrefix != "" {
		env["THING_NAME_PREFIX"] = jsii.String(p.ThingNamePrefix)
	}
	if p.CSRAllowSANs {
		env["CSR_ALLOW_SANS"] = jsii.String("true")
	}
	return env
}

// thingNamePattern is AWS IoT's thing-name rule, narrowed to names that start with prefix.
func thingNamePattern(prefix string) string {
	if prefix == "" {
		return naming.ThingNamePattern
	}
	return fmt.Sprintf("^%s[a-zA-Z0-9:_-]{0,%d}$", regexp.QuoteMeta(prefix), 128-len(prefix))
}

func standardAccessLogFields() *awsapigateway.JsonWithStandardFieldProps {
	t := jsii.Bool(true)
	return &awsapigateway.JsonWithStandardFieldProps{Caller: t, HttpMethod: t, Ip: t, Protocol: t, RequestTime: t,
		ResourcePath: t, ResponseLength: t, Status: t, User: t}
}

const reasonArchiveNoAccessLog = "the archive is written only by its Firehose stream and read by operators; " +
	"S3 server access logging would need a second bucket, and API access to the bucket is already recorded by CloudTrail"

// defineRegistryArchive turns on AWS IoT's THING registry events and archives $aws/events/thing/# through Firehose into
// an encrypted bucket with a lifecycle. It replaces the seed's AWS IoT Analytics pipeline (end of support 2025-12-15).
func defineRegistryArchive(stack awscdk.Stack, p *VendingStackProps) awss3.Bucket {
	// An account setting: turned on for THING, never turned off (see enableRegistryEvents).
	events := enableRegistryEvents(stack, "THING")

	bucket := awss3.NewBucket(stack, jsii.String("RegistryEventArchive"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_KMS_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                  awscdk.Duration_Days(jsii.Number(p.ArchiveDays)),
			NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(1)),
		}},
	})
	iotcert.Acknowledge(bucket, "AwsSolutions-S1", reasonArchiveNoAccessLog)
	iotcert.AcknowledgeGuard(bucket, "S3_BUCKET_LOGGING_ENABLED_CHECK", reasonArchiveNoAccessLog)
	iotcert.AcknowledgeGuard(bucket, "S3_BUCKET_OBJECT_LOCK_ENABLED_CHECK",
		"registry events are an operational record that expires after archive_days, not a compliance record that must resist deletion")
	iotcert.AcknowledgeGuard(bucket, "S3_EVENT_NOTIFICATIONS_ENABLED_CHECK",
		"nothing consumes the archive as it is written; events are also on the MQTT topic for any live consumer")

	stream := awskinesisfirehose.NewDeliveryStream(stack, jsii.String("RegistryEventStream"), &awskinesisfirehose.DeliveryStreamProps{
		Destination: awskinesisfirehose.NewS3Bucket(bucket, &awskinesisfirehose.S3BucketProps{
			DataOutputPrefix:  jsii.String("thing-events/"),
			ErrorOutputPrefix: jsii.String("errors/"),
			Compression:       awskinesisfirehose.Compression_GZIP(),
			BufferingInterval: awscdk.Duration_Seconds(jsii.Number(300)),
		}),
		Encryption: awskinesisfirehose.StreamEncryption_AwsOwnedKey(),
	})
	if lg := stream.Node().TryFindChild(jsii.String("LogGroup")); lg != nil {
		iotcert.AcknowledgeGuard(lg, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
			"Firehose's delivery-error log group holds error messages, not records; CloudWatch Logs encrypts it at rest")
	}
	iotcert.Acknowledge(stream, "AwsSolutions-IAM5",
		"aws-cdk-lib's S3 destination grant for Firehose (BucketGrants.readWrite) on this one archive bucket and its objects",
		"Action::s3:Abort*", "Action::s3:DeleteObject*", "Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*",
		"Resource::<RegistryEventArchive808C0D5D.Arn>/*")
	// Firehose's L2 adds a region-to-CIDR mapping for its optional VPC destinations; an S3 destination never reads it.
	awscdk.Validations_Of(stack).Acknowledge(&awscdk.Acknowledgment{
		Id:     jsii.String("CloudFormation-Validate::W7001"),
		Reason: jsii.String("Firehose's CIDR-block mapping is added by aws-cdk-lib and unused for an S3 destination"),
	})

	errors := awslogs.NewLogGroup(stack, jsii.String("RegistryEventRuleErrors"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	iotcert.AcknowledgeGuard(errors, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
		"holds the rule's delivery errors for registry events (names and attributes, no secrets); CloudWatch Logs encrypts them at rest")
	role := awsiam.NewRole(stack, jsii.String("RegistryEventRuleRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}},
		}),
	})
	stream.GrantPutRecords(role)
	errors.GrantWrite(role)
	ruleName := strings.NewReplacer("-", "_").Replace(p.Prefix) + "_registry_events_" + strings.NewReplacer("-", "_").Replace(p.Env)
	rule := awsiot.NewCfnTopicRule(stack, jsii.String("RegistryEventRule"), &awsiot.CfnTopicRuleProps{
		RuleName: jsii.String(ruleName), // the seed's rule name
		TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
			Description:      jsii.String("IoT Rule for MQTT Broker Registry Events"),
			Sql:              jsii.String("SELECT * FROM '$aws/events/thing/#'"),
			AwsIotSqlVersion: jsii.String("2016-03-23"),
			RuleDisabled:     jsii.Bool(false),
			Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
				Firehose: &awsiot.CfnTopicRule_FirehoseActionProperty{
					DeliveryStreamName: stream.DeliveryStreamName(), RoleArn: role.RoleArn(), Separator: jsii.String("\n"),
				},
			}},
			ErrorAction: &awsiot.CfnTopicRule_ActionProperty{
				CloudwatchLogs: &awsiot.CfnTopicRule_CloudwatchLogsActionProperty{LogGroupName: errors.LogGroupName(), RoleArn: role.RoleArn()},
			},
		},
	})
	rule.Node().AddDependency(events)
	return bucket
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedValues(m map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func limit(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
