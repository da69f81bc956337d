package stacks

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsacmpca"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrolesanywhere"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/selection"
)

// Context keys of the rotation stack. The first group are the sample's CloudFormation parameters, under the same
// names and with the same defaults (except the directories: the sample's /tmp is world-writable).
const (
	ctxSigningAlgorithm     = "SigningAlgorithm"
	ctxRotationKeyAlgorithm = "KeyAlgorithm"
	ctxCACountry            = "CACountry"
	ctxOrgName              = "OrgName"
	ctxCACommonName         = "CACommonName"
	ctxCACertValidity       = "CACertValidity"
	ctxCertPath             = "CertPath"
	ctxCACertPath           = "CACertPath"
	ctxKeyPath              = "KeyPath"
	ctxSigningHelperPath    = "AWSSigningHelperPath"
	ctxSNSSubscriberEmail   = "SNSSubscriberEmail"
	ctxRotationName         = "rotation_name"
	ctxRotationCAMode       = "rotation_ca_mode"
	ctxRotationValidityDays = "rotation_validity_days"
	ctxRotationRenewPercent = "rotation_renew_percent"
	ctxRotationHostKey      = "rotation_host_key_algorithm"
	ctxRotationSession      = "rotation_session_seconds"
	ctxRotationConcurrency  = "rotation_max_concurrency"
	ctxRotationShards       = "rotation_renew_shards"
	ctxPCACertificateQuota  = "pca_certificate_quota"
)

// Rotation defaults.
const (
	// DefaultHostDir holds a host's certificate generations. The sample used /tmp; this directory is created
	// root-only (0700) by the host script.
	DefaultHostDir              = rotation.DefaultDir
	DefaultSigningHelperPath    = rotation.DefaultSigningHelperDir // the sample's
	DefaultRotationValidityDays = 7                                // the sample's, and short-lived mode's maximum
	DefaultRenewPercent         = 67                               // renew at two thirds of the lifetime
	DefaultSessionSeconds       = 900                              // the sample's profile duration
	// DefaultRotationConcurrency keeps IssueCertificate under Private CA's rate quota (25 per second in the
	// documented defaults) even if every host in flight issued in the same second.
	DefaultRotationConcurrency = 20
	DefaultRenewShards         = rotation.DefaultRenewShards
	DefaultCertificateQuota    = 1000000 // Private CA's default lifetime quota of certificates per CA
	// RenewIndexName is the index over (renewShard, renewAt) that due-host selection queries.
	RenewIndexName = rotation.RenewIndexName
	// CAModeShortLived and CAModeGeneral are the values of rotation_ca_mode.
	CAModeShortLived = "short_lived"
	CAModeGeneral    = "general_purpose"
)

var (
	rotationNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,15}$`)
	caSubjectRE    = regexp.MustCompile(`^[A-Za-z0-9 .,'()+:=?/@_-]{1,64}$`)
	countryRE      = regexp.MustCompile(`^[A-Z]{2}$`)
)

// RotationStackProps configures NewRotationStack. Zero values take the defaults named on each field.
type RotationStackProps struct {
	awscdk.StackProps
	// Name suffixes every fixed name and export, so that two rotation stacks fit one account and region.
	// Default: none (the sample's names).
	Name string
	// CAMode is CAModeShortLived (certificates of at most 7 days, cheaper) or CAModeGeneral. Default: short-lived.
	CAMode string
	// SigningAlgorithm, KeyAlgorithm and the subject of the root CA, and its validity in years: the sample's
	// parameters. Defaults: SHA256WITHRSA, RSA_2048, US, Example Corp, pca.example.com, 10.
	SigningAlgorithm, KeyAlgorithm, CACountry, OrgName, CACommonName string
	CACertValidityYears                                              int
	// ValidityDays of the host certificates. Default: 7.
	ValidityDays int
	// RenewPercent of the lifetime after which a host is due (with jitter). Default: 67.
	RenewPercent int
	// HostKeyAlgorithm of the keys the hosts make: RSA_2048 or EC_prime256v1. Default: RSA_2048 (the sample's).
	HostKeyAlgorithm string
	// SessionSeconds of the Roles Anywhere profile (900 to 43200). Default: 900.
	SessionSeconds int
	// CertPath, CACertPath, KeyPath and SigningHelperPath are the host directories used when a host's item names
	// none. Defaults: DefaultHostDir and /root.
	CertPath, CACertPath, KeyPath, SigningHelperPath string
	// SubscriberEmail receives the failure notifications. Default: no subscription.
	SubscriberEmail string
	// MaxConcurrency of the hosts rotated at once. Default: 20.
	MaxConcurrency int
	// RenewShards spreads the renewAt index over this many partitions. Default: 16.
	RenewShards int
	// CertificateQuota is the CA's lifetime certificate quota; the stack alarms at 80 %. Default: 1,000,000.
	CertificateQuota int
	// HostRoles are IAM roles the Roles Anywhere profile vends besides its test role; each must trust
	// rolesanywhere.amazonaws.com for this trust anchor. Default: none.
	HostRoles []string
	// HostPolicies are managed policies of a host role the stack makes and the profile vends. Default: none (no host
	// role).
	HostPolicies []string
}

// RotationStack is capability E: certificate rotation with AWS Private CA, SSM Run Command and IAM Roles Anywhere.
type RotationStack struct {
	awscdk.Stack
	CA           awsacmpca.CfnCertificateAuthority
	CRLBucket    awss3.Bucket
	Manifests    awss3.Bucket
	TrustAnchor  awsrolesanywhere.CfnTrustAnchor
	Profile      awsrolesanywhere.CfnProfile
	Role         awsiam.Role
	Table        awsdynamodb.Table
	Key          awskms.Key
	Topic        awssns.Topic
	DeadLetters  awssqs.Queue
	ExpiryRule   awsevents.Rule
	StateMachine awsstepfunctions.StateMachine
	Trigger      *iotcert.GoFunction
	Select       *iotcert.GoFunction
	// Normalize brings hand-written host items into the rotation schedule (from the table's stream).
	Normalize *iotcert.GoFunction
	// Steps are the per-host functions, by the substitution variable of their states.
	Steps        map[string]*iotcert.GoFunction
	CRLProcessor *iotcert.GoFunction
	// CRLTable keeps each trust anchor's CRL record and the lock of a CRL delivery.
	CRLTable awsdynamodb.Table
	// HostRole is the role made from HostPolicies, or nil.
	HostRole  awsiam.Role
	Documents HostDocuments
}

func (p RotationStackProps) withDefaults() RotationStackProps {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	defInt := func(n *int, d int) {
		if *n == 0 {
			*n = d
		}
	}
	def(&p.CAMode, CAModeShortLived)
	def(&p.SigningAlgorithm, "SHA256WITHRSA")
	def(&p.KeyAlgorithm, "RSA_2048")
	def(&p.CACountry, "US")
	def(&p.OrgName, "Example Corp")
	def(&p.CACommonName, "pca.example.com")
	defInt(&p.CACertValidityYears, 10)
	defInt(&p.ValidityDays, DefaultRotationValidityDays)
	defInt(&p.RenewPercent, DefaultRenewPercent)
	def(&p.HostKeyAlgorithm, "RSA_2048")
	defInt(&p.SessionSeconds, DefaultSessionSeconds)
	def(&p.CertPath, DefaultHostDir)
	def(&p.CACertPath, DefaultHostDir)
	def(&p.KeyPath, DefaultHostDir)
	def(&p.SigningHelperPath, DefaultSigningHelperPath)
	defInt(&p.MaxConcurrency, DefaultRotationConcurrency)
	defInt(&p.RenewShards, DefaultRenewShards)
	defInt(&p.CertificateQuota, DefaultCertificateQuota)
	return p
}

// caKeyFamily maps the CA's KeyAlgorithm to the signing algorithms it can use.
var caKeyFamily = map[string]string{
	"RSA_2048": "RSA", "RSA_3072": "RSA", "RSA_4096": "RSA", "EC_prime256v1": "ECDSA", "EC_secp384r1": "ECDSA",
}

// validate returns the first bad setting as a one-line error that names the setting and the value.
func (p RotationStackProps) validate() error {
	switch {
	case p.Name != "" && !rotationNameRE.MatchString(p.Name):
		return fmt.Errorf("context %s must be 1 to 16 letters, digits and '-', starting with a letter, got %q", ctxRotationName, p.Name)
	case p.CAMode != CAModeShortLived && p.CAMode != CAModeGeneral:
		return fmt.Errorf("context %s must be %s or %s, got %q", ctxRotationCAMode, CAModeShortLived, CAModeGeneral, p.CAMode)
	case caKeyFamily[p.KeyAlgorithm] == "":
		return fmt.Errorf("context %s must be one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, got %q", ctxRotationKeyAlgorithm, p.KeyAlgorithm)
	}
	switch p.SigningAlgorithm {
	case "SHA256WITHRSA", "SHA384WITHRSA", "SHA512WITHRSA", "SHA256WITHECDSA", "SHA384WITHECDSA", "SHA512WITHECDSA":
	default:
		return fmt.Errorf("context %s must be one of SHA256WITHRSA, SHA384WITHRSA, SHA512WITHRSA, SHA256WITHECDSA, SHA384WITHECDSA, SHA512WITHECDSA, got %q", ctxSigningAlgorithm, p.SigningAlgorithm)
	}
	if !strings.HasSuffix(p.SigningAlgorithm, "WITH"+caKeyFamily[p.KeyAlgorithm]) {
		return fmt.Errorf("context %s %q cannot sign with a %s key (%s %q)", ctxSigningAlgorithm, p.SigningAlgorithm, caKeyFamily[p.KeyAlgorithm], ctxRotationKeyAlgorithm, p.KeyAlgorithm)
	}
	if !countryRE.MatchString(p.CACountry) {
		return fmt.Errorf("context %s must be a two-letter country code, got %q", ctxCACountry, p.CACountry)
	}
	for k, v := range map[string]string{ctxOrgName: p.OrgName, ctxCACommonName: p.CACommonName} {
		if !caSubjectRE.MatchString(v) {
			return fmt.Errorf("context %s must be 1 to 64 printable characters, got %q", k, v)
		}
	}
	maxDays := 365
	if p.CAMode == CAModeShortLived {
		maxDays = 7 // short-lived mode issues certificates of at most 7 days
	}
	switch {
	case p.CACertValidityYears < 1 || p.CACertValidityYears > 30:
		return fmt.Errorf("context %s must be a whole number of years from 1 to 30, got %d", ctxCACertValidity, p.CACertValidityYears)
	case p.ValidityDays < 1 || p.ValidityDays > maxDays:
		return fmt.Errorf("context %s must be from 1 to %d days in %s mode, got %d", ctxRotationValidityDays, maxDays, p.CAMode, p.ValidityDays)
	case p.RenewPercent < 34 || p.RenewPercent > 90:
		return fmt.Errorf("context %s must be from 34 to 90 (percent of the lifetime), got %d", ctxRotationRenewPercent, p.RenewPercent)
	case p.HostKeyAlgorithm != "RSA_2048" && p.HostKeyAlgorithm != "EC_prime256v1":
		return fmt.Errorf("context %s must be RSA_2048 or EC_prime256v1, got %q", ctxRotationHostKey, p.HostKeyAlgorithm)
	case p.SessionSeconds < 900 || p.SessionSeconds > 43200:
		return fmt.Errorf("context %s must be from 900 to 43200 (Roles Anywhere's profile limits), got %d", ctxRotationSession, p.SessionSeconds)
	case p.MaxConcurrency < 1 || p.MaxConcurrency > 1000:
		return fmt.Errorf("context %s must be from 1 to 1000, got %d", ctxRotationConcurrency, p.MaxConcurrency)
	case p.RenewShards < 1 || p.RenewShards > rotation.MaxRenewShards:
		return fmt.Errorf("context %s must be from 1 to %d, got %d", ctxRotationShards, rotation.MaxRenewShards, p.RenewShards)
	case p.CertificateQuota < 1000:
		return fmt.Errorf("context %s must be at least 1000 certificates, got %d", ctxPCACertificateQuota, p.CertificateQuota)
	}
	// With a 12-hourly schedule a host must be picked up at least twice before its certificate expires, and the
	// end-entity expiry notification (1 day) must come after the renewal point, or every certificate alerts.
	leadHours := float64(p.ValidityDays*24) * float64(100-p.RenewPercent) / 100
	if leadHours < 36 {
		return fmt.Errorf("context %s %d with %s %d leaves %.0f hours to renew: at least 36 are needed (three scheduled runs)",
			ctxRotationValidityDays, p.ValidityDays, ctxRotationRenewPercent, p.RenewPercent, leadHours)
	}
	for k, v := range map[string]string{ctxCertPath: p.CertPath, ctxCACertPath: p.CACertPath, ctxKeyPath: p.KeyPath, ctxSigningHelperPath: p.SigningHelperPath} {
		if err := rotation.CheckPath("context "+k, v); err != nil {
			return err
		}
	}
	if err := p.validateHostAccess(); err != nil {
		return err
	}
	if p.SubscriberEmail != "" {
		if a, err := mail.ParseAddress(p.SubscriberEmail); err != nil || a.Address != p.SubscriberEmail {
			return fmt.Errorf("context %s must be one email address, got %q", ctxSNSSubscriberEmail, p.SubscriberEmail)
		}
	}
	return nil
}

// suffix is appended to fixed names and exports: "" or "-<name>".
func (p RotationStackProps) suffix() string {
	if p.Name == "" {
		return ""
	}
	return "-" + p.Name
}

// RotationStackName is the stack id for a rotation name: CertRotation, or CertRotation-<name>.
func RotationStackName(name string) string {
	if name == "" {
		return "CertRotation"
	}
	return "CertRotation-" + name
}

// rotationPropsFromContext reads the rotation stack's context keys.
func rotationPropsFromContext(ctx selection.Lookup) (*RotationStackProps, error) {
	p := &RotationStackProps{
		Name:              optString(ctx, ctxRotationName, ""),
		CAMode:            optString(ctx, ctxRotationCAMode, ""),
		SigningAlgorithm:  optString(ctx, ctxSigningAlgorithm, ""),
		KeyAlgorithm:      optString(ctx, ctxRotationKeyAlgorithm, ""),
		CACountry:         optString(ctx, ctxCACountry, ""),
		OrgName:           optString(ctx, ctxOrgName, ""),
		CACommonName:      optString(ctx, ctxCACommonName, ""),
		HostKeyAlgorithm:  optString(ctx, ctxRotationHostKey, ""),
		CertPath:          optString(ctx, ctxCertPath, ""),
		CACertPath:        optString(ctx, ctxCACertPath, ""),
		KeyPath:           optString(ctx, ctxKeyPath, ""),
		SigningHelperPath: optString(ctx, ctxSigningHelperPath, ""),
		SubscriberEmail:   optString(ctx, ctxSNSSubscriberEmail, ""),
	}
	ints := []struct {
		key  string
		dst  *int
		def  int
		lo   int
		high int
	}{
		{ctxCACertValidity, &p.CACertValidityYears, 10, 1, 30},
		{ctxRotationValidityDays, &p.ValidityDays, DefaultRotationValidityDays, 1, 365},
		{ctxRotationRenewPercent, &p.RenewPercent, DefaultRenewPercent, 34, 90},
		{ctxRotationSession, &p.SessionSeconds, DefaultSessionSeconds, 900, 43200},
		{ctxRotationConcurrency, &p.MaxConcurrency, DefaultRotationConcurrency, 1, 1000},
		{ctxRotationShards, &p.RenewShards, DefaultRenewShards, 1, 256},
		{ctxPCACertificateQuota, &p.CertificateQuota, DefaultCertificateQuota, 1000, 1 << 30},
	}
	for _, i := range ints {
		n, err := optInt(ctx, i.key, i.def, i.lo, i.high)
		if err != nil {
			return nil, err
		}
		*i.dst = n
	}
	if err := hostAccessFromContext(ctx, p); err != nil {
		return nil, err
	}
	if err := p.withDefaults().validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// NewRotationStack defines the CA, the Roles Anywhere trust anchor, profile and test role, the host inventory, the
// host documents, the workflow with its schedule, the CRL forwarding, and the alarms.
func NewRotationStack(scope constructs.Construct, id string, props *RotationStackProps) *RotationStack {
	p := props.withDefaults()
	if err := p.validate(); err != nil {
		panic(fmt.Sprintf("%s: %v", id, err))
	}
	sp := p.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Certificate rotation with AWS Private CA, SSM Run Command and IAM Roles Anywhere")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	s := &RotationStack{Stack: stack}
	sfx := p.suffix()
	rotationLabel := p.Name
	if rotationLabel == "" {
		rotationLabel = "default"
	}

	// One customer-managed key for the tables and the topic. CloudWatch publishes the alarms to the topic on its own
	// and needs the key too, for this account's alarms only. EventBridge publishes through a role of its own (the
	// expiry rule's target), so no statement names events.amazonaws.com: one without aws:SourceArn/aws:SourceAccount
	// would let rules of any account mail through the topic (TestRotationServicePrincipalsScoped).
	s.Key = awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("Certificate rotation" + sfx + ": host inventory and failure notifications"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	// Only AWS services (here DynamoDB) may create grants on the key (AWS Control Tower CT.KMS.PR.3).
	iotcert.DenyForeignGrants(s.Key)
	s.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"), // in a key policy, "*" is this key
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()},
			"ArnLike": map[string]interface{}{"aws:SourceArn": stack.FormatArn(&awscdk.ArnComponents{
				Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"), ResourceName: jsii.String("*"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
			})},
		},
	}), nil)

	s.Topic = awssns.NewTopic(stack, jsii.String("FailedCertRotationSNSTopic"), &awssns.TopicProps{
		TopicName:  jsii.String("FailedCertRotationTopic" + sfx), // the sample's name
		MasterKey:  s.Key,
		EnforceSSL: jsii.Bool(true),
	})
	// Deliveries that fail for good (the email subscription, the EventBridge targets) are kept here.
	s.DeadLetters = awssqs.NewQueue(stack, jsii.String("DeliveryDeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	reasonIsDLQ := "this queue is itself the dead-letter queue of the topic's subscription and the EventBridge targets"
	iotcert.Acknowledge(s.DeadLetters, "AwsSolutions-SQS3", reasonIsDLQ)
	iotcert.Acknowledge(s.DeadLetters, "Serverless-SQSRedrivePolicy", reasonIsDLQ)
	iotcert.AcknowledgeGuard(s.DeadLetters, "SQS_DLQ_CHECK", reasonIsDLQ)
	if p.SubscriberEmail != "" {
		s.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.SubscriberEmail), &awssnssubscriptions.EmailSubscriptionProps{
			DeadLetterQueue: s.DeadLetters,
		}))
	}

	s.defineCA(&p)
	s.defineRolesAnywhere(&p)
	// A Table, not a TableV2: TableV2 cannot render a customer-managed key in an environment-agnostic stack.
	s.Table = awsdynamodb.NewTable(stack, jsii.String("DynamoDBCertificateTable"), &awsdynamodb.TableProps{
		TableName:                        jsii.String("certificates" + sfx), // the sample's name: its operators' commands use it
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(rotation.AttrHostID), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Encryption:                       awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey:                    s.Key,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		DeletionProtection:               jsii.Bool(true),
		RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN,
		// Every write reaches the normalizer, which brings hand-written items into the renewAt index (no scan).
		Stream: awsdynamodb.StreamViewType_NEW_IMAGE,
	})
	// Due hosts come from a Query per shard on this index, never a Scan: renewShard spreads the fleet over
	// RenewShards partitions so that no single partition holds it.
	s.Table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(RenewIndexName),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(rotation.AttrRenewShard), Type: awsdynamodb.AttributeType_NUMBER},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String(rotation.AttrRenewAt), Type: awsdynamodb.AttributeType_STRING},
		ProjectionType: awsdynamodb.ProjectionType_KEYS_ONLY,
	})

	s.Manifests = awss3.NewBucket(stack, jsii.String("RotationManifests"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_KMS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
		AutoDeleteObjects: jsii.Bool(false),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration: awscdk.Duration_Days(jsii.Number(30)),
		}},
	})
	reasonManifests := "holds the workflow's own host lists and per-run results for 30 days; the workflow's execution history and CloudTrail record every access"
	iotcert.Acknowledge(s.Manifests, "AwsSolutions-S1", reasonManifests)
	iotcert.AcknowledgeGuard(s.Manifests, "S3_BUCKET_LOGGING_ENABLED_CHECK", reasonManifests)
	iotcert.AcknowledgeGuard(s.Manifests, "S3_BUCKET_VERSIONING_ENABLED_CHECK",
		"each run writes new objects under new keys and nothing is overwritten; they are working files that expire after 30 days")
	iotcert.AcknowledgeGuard(s.Manifests, "S3_BUCKET_OBJECT_LOCK_ENABLED_CHECK",
		"working files of the workflow that expire after 30 days, not a compliance record that must resist deletion")
	iotcert.AcknowledgeGuard(s.Manifests, "S3_EVENT_NOTIFICATIONS_ENABLED_CHECK",
		"the workflow reads the objects it writes; nothing else reacts to them")

	s.Documents = defineHostDocuments(stack, &p)
	s.defineFunctions(&p)
	s.defineWorkflow(&p, rotationLabel)
	s.defineSchedule(&p)
	s.defineCRLForwarding(&p)
	s.defineAlarms(&p, rotationLabel)

	out := func(id, export string, value *string, desc string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{
			Value: value, ExportName: jsii.String(export + sfx), Description: jsii.String(desc),
		})
	}
	// The sample's outputs and export names.
	out("IAMRATrustAnchorARN", "IAMRATrustAnchorARN", s.TrustAnchor.AttrTrustAnchorArn(), "IAM Roles Anywhere trust anchor on the private CA")
	out("IAMRAProfileARN", "IAMRAProfileARN", s.Profile.AttrProfileArn(), "IAM Roles Anywhere profile")
	out("IAMRARoleARN", "IAMRARoleARN", s.Role.RoleArn(), "Test role a host's new certificate must be able to assume")
	out("PCAARN", "PCA-ARN", s.CA.AttrArn(), "The private CA")
	out("CertificatesTableName", "CertRotation-CertificatesTable", s.Table.TableName(), "Host inventory (rotation-hosts -table)")
	out("StateMachineArn", "CertRotation-StateMachine", s.StateMachine.StateMachineArn(), "Rotation workflow (rotation-hosts -state-machine)")
	iotcert.ScopeServicePermissions(stack)
	return s
}

// defineCA defines the root CA, its self-signed certificate and activation, and the CRL bucket.
func (s *RotationStack) defineCA(p *RotationStackProps) {
	stack := s.Stack
	s.CRLBucket = awss3.NewBucket(stack, jsii.String("CRLBucket"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:         jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		// Private CA rewrites the same object for each new CRL: previous versions are kept a month.
		LifecycleRules: &[]*awss3.LifecycleRule{{NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(30))}},
	})
	// "Object Created" events reach the CRL processor. Set on the bucket itself: the L2's eventBridgeEnabled adds a
	// custom resource and its function for what CloudFormation can say directly.
	s.CRLBucket.Node().DefaultChild().(awss3.CfnBucket).AddPropertyOverride(
		jsii.String("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled"), jsii.Bool(true))
	reasonCRLLogs := "only Private CA writes here (bucket policy) and each write is an EventBridge event the CRL processor logs"
	iotcert.Acknowledge(s.CRLBucket, "AwsSolutions-S1", reasonCRLLogs)
	iotcert.AcknowledgeGuard(s.CRLBucket, "S3_BUCKET_LOGGING_ENABLED_CHECK", reasonCRLLogs)
	iotcert.AcknowledgeGuard(s.CRLBucket, "S3_BUCKET_DEFAULT_ENCRYPTION_KMS_CHECK",
		"Private CA writes CRLs with SSE-S3 or a customer key whose policy admits it; a CRL is public information by design, so SSE-S3 suffices")
	iotcert.AcknowledgeGuard(s.CRLBucket, "S3_BUCKET_OBJECT_LOCK_ENABLED_CHECK",
		"Private CA must be able to replace the CRL object; versioning keeps the previous CRLs for a month")

	usage := "SHORT_LIVED_CERTIFICATE"
	if p.CAMode == CAModeGeneral {
		usage = "GENERAL_PURPOSE"
	}
	s.CA = awsacmpca.NewCfnCertificateAuthority(stack, jsii.String("PCA"), &awsacmpca.CfnCertificateAuthorityProps{
		Type:             jsii.String("ROOT"),
		KeyAlgorithm:     jsii.String(p.KeyAlgorithm),
		SigningAlgorithm: jsii.String(p.SigningAlgorithm),
		UsageMode:        jsii.String(usage),
		Subject: &awsacmpca.CfnCertificateAuthority_SubjectProperty{
			Country: jsii.String(p.CACountry), Organization: jsii.String(p.OrgName), CommonName: jsii.String(p.CACommonName),
		},
		// No RevocationConfiguration here: defineCRLWrites turns CRLs on once the bucket's policy names this CA.
	})
	cert := awsacmpca.NewCfnCertificate(stack, jsii.String("PCACert"), &awsacmpca.CfnCertificateProps{
		CertificateAuthorityArn:   s.CA.AttrArn(),
		CertificateSigningRequest: s.CA.AttrCertificateSigningRequest(),
		SigningAlgorithm:          jsii.String(p.SigningAlgorithm),
		TemplateArn:               jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":acm-pca:::template/RootCACertificate/V1"),
		Validity:                  &awsacmpca.CfnCertificate_ValidityProperty{Type: jsii.String("YEARS"), Value: jsii.Number(float64(p.CACertValidityYears))},
	})
	act := awsacmpca.NewCfnCertificateAuthorityActivation(stack, jsii.String("PCAActivation"), &awsacmpca.CfnCertificateAuthorityActivationProps{
		CertificateAuthorityArn: s.CA.AttrArn(),
		Certificate:             cert.AttrCertificate(),
		Status:                  jsii.String("ACTIVE"),
	})
	act.Node().AddDependency(cert)
	s.defineCRLWrites()
}

// roleName is a fixed role name that is unique per account: IAM names are global, so it carries the region too.
func roleName(base string, p *RotationStackProps) *string {
	return jsii.String(base + "-" + *awscdk.Aws_REGION() + p.suffix())
}

// defineRolesAnywhere defines the trust anchor on the CA, the test role and the profile, and forwards the trust
// anchor's expiry notifications to the topic.
func (s *RotationStack) defineRolesAnywhere(p *RotationStackProps) {
	stack := s.Stack
	endEntityThresholdDays := 1.0 // below the renewal lead time (checked in validate), so only missed renewals alert
	s.TrustAnchor = awsrolesanywhere.NewCfnTrustAnchor(stack, jsii.String("IAMRATA"), &awsrolesanywhere.CfnTrustAnchorProps{
		Name:    jsii.String("IAMRA-TA1" + p.suffix()),
		Enabled: jsii.Bool(true),
		Source: &awsrolesanywhere.CfnTrustAnchor_SourceProperty{
			SourceType: jsii.String("AWS_ACM_PCA"),
			SourceData: &awsrolesanywhere.CfnTrustAnchor_SourceDataProperty{AcmPcaArn: s.CA.AttrArn()},
		},
		NotificationSettings: &[]interface{}{
			&awsrolesanywhere.CfnTrustAnchor_NotificationSettingProperty{
				Enabled: jsii.Bool(true), Event: jsii.String("CA_CERTIFICATE_EXPIRY"), Threshold: jsii.Number(60), Channel: jsii.String("ALL"),
			},
			&awsrolesanywhere.CfnTrustAnchor_NotificationSettingProperty{
				Enabled: jsii.Bool(true), Event: jsii.String("END_ENTITY_CERTIFICATE_EXPIRY"), Threshold: jsii.Number(endEntityThresholdDays), Channel: jsii.String("ALL"),
			},
		},
	})
	if act := stack.Node().TryFindChild(jsii.String("PCAActivation")); act != nil {
		s.TrustAnchor.Node().AddDependency(act)
	}

	// The sample's test role: no permissions, it only proves that a certificate works. Trusted only through this
	// trust anchor, and only for certificates whose subject CN has the form of an SSM managed-node id.
	s.Role = awsiam.NewRole(stack, jsii.String("IAMRARole"), &awsiam.RoleProps{
		RoleName:    roleName("IAMRA-Role", p),
		Description: jsii.String("Test role of certificate rotation: a host's new certificate must be able to assume it; it grants nothing"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("rolesanywhere.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{
				"ArnEquals":  map[string]interface{}{"aws:SourceArn": s.TrustAnchor.AttrTrustAnchorArn()},
				"StringLike": map[string]interface{}{"aws:PrincipalTag/x509Subject/CN": []string{"i-????????", "i-?????????????????", "mi-?????????????????"}},
			},
		}),
	})
	s.Role.AssumeRolePolicy().AddStatements(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("rolesanywhere.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sts:TagSession", "sts:SetSourceIdentity"),
		Conditions: &map[string]interface{}{
			"ArnEquals":  map[string]interface{}{"aws:SourceArn": s.TrustAnchor.AttrTrustAnchorArn()},
			"StringLike": map[string]interface{}{"aws:PrincipalTag/x509Subject/CN": []string{"i-????????", "i-?????????????????", "mi-?????????????????"}},
		},
	}))
	s.Profile = awsrolesanywhere.NewCfnProfile(stack, jsii.String("IAMRAProfile1"), &awsrolesanywhere.CfnProfileProps{
		Name:                      jsii.String("IAMRA-Profile" + p.suffix()),
		Enabled:                   jsii.Bool(true),
		DurationSeconds:           jsii.Number(float64(p.SessionSeconds)),
		RequireInstanceProperties: jsii.Bool(false),
		RoleArns:                  s.profileRoles(p),
	})

	s.ExpiryRule = awsevents.NewRule(stack, jsii.String("CertificateExpiryRule"), &awsevents.RuleProps{
		Description: jsii.String("IAM Roles Anywhere expiry notifications (CA and host certificates) to the failure topic"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.rolesanywhere"),
			DetailType: jsii.Strings("Roles Anywhere Certificate Expiration State Change"),
		},
	})
	// Through a role EventBridge assumes for this account's rules, not a topic and key policy for
	// events.amazonaws.com (see the key).
	eventsRole := s.eventsPublishRole()
	s.ExpiryRule.AddTarget(awseventstargets.NewSnsTopic(s.Topic, &awseventstargets.SnsTopicProps{
		AuthorizeUsingRole: jsii.Bool(true),
		Role:               eventsRole,
		DeadLetterQueue:    s.DeadLetters, RetryAttempts: jsii.Number(8), MaxEventAge: awscdk.Duration_Hours(jsii.Number(24)),
	}))
	iotcert.Acknowledge(eventsRole, "AwsSolutions-IAM5",
		"SNS publishing to a topic with a customer-managed key needs kms:GenerateDataKey* on that one key (the CDK's topic grant)",
		"Action::kms:GenerateDataKey*")
}

// documentEnv are the documents' defaults: the sending steps render the documents with the same values the stack
// defined them with, and check them at init.
var documentEnv = []string{rotation.EnvKeyAlgorithm, rotation.EnvCertPath, rotation.EnvKeyPath, rotation.EnvCACertPath, rotation.EnvSigningHelper}

// rotationSteps are the per-host Lambda tasks: the state's substitution variable, the construct id, the step of
// lambdas/rotationstep it runs (STEP) and the environment variables that step reads. One binary serves every step;
// each step is its own function with its own role.
var rotationSteps = []struct {
	sub, id, step, desc string
	env                 []string
}{
	{subSendCSR, "SendCSRFunction", "SendCSR", "Sends phase 1 (key and CSR on the host) after checking every parameter",
		append([]string{rotation.EnvTable, rotation.EnvCSRDocument}, documentEnv...)},
	{subCommandResult, "CommandResultFunction", "CommandResult", "Reads an SSM command's result once (the workflow waits, not the function)", nil},
	{subCheckCSR, "CheckCSRFunction", "CheckCSR", "Checks a host's CSR (CN = host id, key strength) and derives IssueCertificate's idempotency token", nil},
	{subIssue, "IssueFunction", "Issue", "Issues a host's certificate (once per CSR: the host's item records it) and counts the issuance",
		[]string{rotation.EnvTable, rotation.EnvPCAARN, rotation.EnvSigningAlgorithm, rotation.EnvTemplateARN, rotation.EnvValidityDays}},
	{subGetCertificate, "GetCertificateFunction", "GetCertificate", "Reads the issued certificate and checks it names the host and carries its key",
		[]string{rotation.EnvPCAARN}},
	{subSendInstall, "SendInstallFunction", "SendInstall", "Sends phase 2 (test with aws_signing_helper, then install) after checking every parameter",
		append([]string{rotation.EnvTable, rotation.EnvInstallDocument, rotation.EnvProfileARN, rotation.EnvRoleARN, rotation.EnvTrustAnchorARN},
			documentEnv...)},
	{subRecord, "RecordFunction", "Record", "Records a host's new certificate: serial, expiry, next renewal",
		[]string{rotation.EnvTable, rotation.EnvRenewFraction, rotation.EnvRenewShards}},
	{subNotifyFailure, "NotifyFailureFunction", "NotifyFailure", "Records a host's failure and notifies the failure topic",
		[]string{rotation.EnvTable, rotation.EnvTopicARN}},
	{subNotifyRun, "NotifyRunFailureFunction", "NotifyRunFailure", "Notifies the failure topic of a rotation run that failed as a whole",
		[]string{rotation.EnvTopicARN}},
}

// defineFunctions defines the workflow's functions, the on-demand trigger and the CRL processor.
func (s *RotationStack) defineFunctions(p *RotationStackProps) {
	stack := s.Stack
	// The deployment's settings, in internal/rotation's variable names; each function gets those it reads.
	all := map[string]*string{
		rotation.EnvTable:            s.Table.TableName(),
		rotation.EnvCSRDocument:      s.Documents.CSR.Ref(),
		rotation.EnvInstallDocument:  s.Documents.Install.Ref(),
		rotation.EnvKeyAlgorithm:     jsii.String(p.HostKeyAlgorithm),
		rotation.EnvCertPath:         jsii.String(p.CertPath),
		rotation.EnvKeyPath:          jsii.String(p.KeyPath),
		rotation.EnvCACertPath:       jsii.String(p.CACertPath),
		rotation.EnvSigningHelper:    jsii.String(p.SigningHelperPath),
		rotation.EnvPCAARN:           s.CA.AttrArn(),
		rotation.EnvProfileARN:       s.Profile.AttrProfileArn(),
		rotation.EnvRoleARN:          s.Role.RoleArn(),
		rotation.EnvTrustAnchorARN:   s.TrustAnchor.AttrTrustAnchorArn(),
		rotation.EnvTopicARN:         s.Topic.TopicArn(),
		rotation.EnvRenewFraction:    jsii.String(strconv.FormatFloat(float64(p.RenewPercent)/100, 'f', 2, 64)),
		rotation.EnvRenewShards:      jsii.String(strconv.Itoa(p.RenewShards)),
		rotation.EnvManifestBucket:   s.Manifests.BucketName(),
		rotation.EnvSigningAlgorithm: jsii.String(p.SigningAlgorithm),
		rotation.EnvTemplateARN:      jsii.String(clientAuthTemplate()),
		rotation.EnvValidityDays:     jsii.String(strconv.Itoa(p.ValidityDays)),
	}
	env := func(names ...string) map[string]*string {
		e := map[string]*string{}
		for _, n := range names {
			e[n] = all[n]
		}
		return e
	}
	documentArn := func(d awscdk.CfnResource) *string {
		return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ssm"), Resource: jsii.String("document"), ResourceName: d.Ref()})
	}
	hostArns := []*string{
		stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ec2"), Resource: jsii.String("instance"), ResourceName: jsii.String("*")}),
		stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ssm"), Resource: jsii.String("managed-instance"), ResourceName: jsii.String("*")}),
	}

	s.Steps = map[string]*iotcert.GoFunction{}
	for _, st := range rotationSteps {
		e := env(st.env...)
		e["STEP"] = jsii.String(st.step)
		props := &iotcert.GoFunctionProps{
			Handler: "rotationstep", Description: st.desc, Timeout: awscdk.Duration_Seconds(jsii.Number(25)), Environment: e,
			SyncCaller: "by Step Functions: the rotation workflow retries or catches each error",
		}
		if st.step == "CommandResult" {
			props.UnscopedActions = []string{"ssm:GetCommandInvocation"} // no resource-level permissions
		}
		f := iotcert.NewGoFunction(stack, st.id, props)
		s.Steps[st.sub] = f
		switch st.sub {
		case subSendCSR, subSendInstall:
			doc := s.Documents.CSR
			if st.sub == subSendInstall {
				doc = s.Documents.Install
			}
			if st.sub == subSendCSR {
				s.tableAccess(f.Role, true, "dynamodb:GetItem", "dynamodb:UpdateItem") // the host's lease
			} else {
				s.tableAccess(f.Role, false, "dynamodb:GetItem")
			}
			f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions: jsii.Strings("ssm:SendCommand"), Resources: &[]*string{documentArn(doc), hostArns[0], hostArns[1]},
			}))
			iotcert.Acknowledge(f.Role, "AwsSolutions-IAM5",
				"the hosts are the operator's EC2 instances and hybrid managed nodes of this account and region, listed in the table at "+
					"run time; SendCommand is limited to this stack's document, whose parameters are pattern-checked",
				"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*",
				"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:managed-instance/*")
		case subIssue:
			s.tableAccess(f.Role, true, "dynamodb:GetItem", "dynamodb:UpdateItem")
			// IAM spells the service acm-pca (the SDK's name acmpca is not an IAM prefix). Issuance is limited to the
			// client-authentication template.
			f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions: jsii.Strings("acm-pca:IssueCertificate"), Resources: &[]*string{s.CA.AttrArn()},
				Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"acm-pca:TemplateArn": clientAuthTemplate()}},
			}))
		case subNotifyRun:
			s.publish(f.Role)
		case subGetCertificate:
			f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions: jsii.Strings("acm-pca:GetCertificate"), Resources: &[]*string{s.CA.AttrArn()},
			}))
		case subRecord:
			s.tableAccess(f.Role, true, "dynamodb:UpdateItem")
		case subNotifyFailure:
			s.tableAccess(f.Role, true, "dynamodb:UpdateItem")
			s.publish(f.Role)
		}
	}

	s.Select = iotcert.NewGoFunction(stack, "SelectFunction", &iotcert.GoFunctionProps{
		Handler:     "rotationselect",
		Description: "Selects the hosts due for rotation (a Query per renewAt shard, never a Scan) into a manifest for the workflow",
		Timeout:     awscdk.Duration_Minutes(jsii.Number(5)),
		MemorySize:  512,
		Environment: env(rotation.EnvTable, rotation.EnvRenewShards, rotation.EnvManifestBucket, rotation.EnvPCAARN),
		SyncCaller:  "by Step Functions: the rotation workflow retries or catches each error",
	})
	s.tableAccess(s.Select.Role, false, "dynamodb:GetItem")
	s.Select.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("dynamodb:Query"), Resources: &[]*string{jsii.String(*s.Table.TableArn() + "/index/" + RenewIndexName)},
	}))
	s.Select.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("acm-pca:DescribeCertificateAuthority"), Resources: &[]*string{s.CA.AttrArn()},
	}))
	s.Select.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:PutObject"), Resources: &[]*string{s.Manifests.ArnForObjects(jsii.String(rotation.ManifestPrefix + "*"))},
	}))
	iotcert.Acknowledge(s.Select.Role, "AwsSolutions-IAM5",
		"each run writes its host list under a new key of the manifests/ prefix of this stack's bucket",
		"Resource::<RotationManifestsA5D0196D.Arn>/manifests/*")

	// Host items written by hand (the sample's instructions, the console, the CLI) lack renewAt and renewShard: the
	// normalizer gives them both from the table's stream, or marks them INVALID and notifies the topic.
	s.Normalize = iotcert.NewGoFunction(stack, "NormalizeFunction", &iotcert.GoFunctionProps{
		Handler:     "rotationnormalize",
		Description: "Brings every host item written to the inventory into the rotation schedule, or reports why it cannot be rotated",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(60)),
		Environment: env(rotation.EnvTable, rotation.EnvTopicARN, rotation.EnvRenewShards),
		SyncCaller:  "by its DynamoDB stream event source mapping, which retries a failed batch and then sends it to the stack's dead-letter queue",
	})
	s.tableAccess(s.Normalize.Role, true, "dynamodb:UpdateItem")
	s.publish(s.Normalize.Role)
	s.Normalize.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
		Resources: &[]*string{s.Table.TableStreamArn()},
	}))
	normalizeFilter := map[string]interface{}{"eventName": []interface{}{"INSERT", "MODIFY"}}
	awslambda.NewEventSourceMapping(stack, jsii.String("NormalizeStreamMapping"), &awslambda.EventSourceMappingProps{
		Target:             s.Normalize.Function,
		EventSourceArn:     s.Table.TableStreamArn(),
		StartingPosition:   awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:          jsii.Number(100),
		BisectBatchOnError: jsii.Bool(true),
		RetryAttempts:      jsii.Number(5),
		MaxRecordAge:       awscdk.Duration_Hours(jsii.Number(24)),
		OnFailure:          awslambdaeventsources.NewSqsDlq(s.DeadLetters),
		Filters:            &[]*map[string]interface{}{awslambda.FilterCriteria_Filter(&normalizeFilter)},
	})

	s.Trigger = iotcert.NewGoFunction(stack, "CertTriggerLambda", &iotcert.GoFunctionProps{
		Handler:     "rotationtrigger",
		Description: "CertCheck-Trigger: starts a rotation run and returns its execution ARN",
		OnFailure:   true, // the schedule invokes it asynchronously
		Environment: map[string]*string{rotation.EnvTopicARN: s.Topic.TopicArn()},
	})
	// The sample's README invokes the function by this name.
	s.Trigger.Function.Node().DefaultChild().(awscdk.CfnResource).AddPropertyOverride(jsii.String("FunctionName"), jsii.String("CertCheck-Trigger"+p.suffix()))
	s.publish(s.Trigger.Role)

	s.CRLProcessor = iotcert.NewGoFunction(stack, "CRLProcessorLambda", &iotcert.GoFunctionProps{
		Handler:     "crlprocessor",
		Description: "CRLProcessor: imports the CA's CRL into IAM Roles Anywhere once, then updates that CRL in place",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(30)),
		OnFailure:   true, // invoked asynchronously by EventBridge
		Environment: map[string]*string{
			rotation.EnvTrustAnchorARN: s.TrustAnchor.AttrTrustAnchorArn(),
			rotation.EnvTopicARN:       s.Topic.TopicArn(),
			rotation.EnvCRLBucket:      s.CRLBucket.BucketName(),
			rotation.EnvCRLName:        jsii.String("IAMRA-CRL" + p.suffix()),
		},
		UnscopedActions: []string{"rolesanywhere:ListCrls"},
	})
	s.CRLProcessor.Function.Node().DefaultChild().(awscdk.CfnResource).AddPropertyOverride(jsii.String("FunctionName"), jsii.String("CRLProcessor"+p.suffix()))
	s.CRLBucket.GrantRead(s.CRLProcessor.Role, jsii.String("crl/*"))
	s.publish(s.CRLProcessor.Role)
	for _, f := range []*iotcert.GoFunction{s.Trigger, s.CRLProcessor} {
		iotcert.Acknowledge(f.Function, "Serverless-LambdaDLQ",
			"failed asynchronous invocations go to an SQS on-failure destination, which keeps the error with the request (a dead-letter queue keeps only the request)")
		iotcert.Acknowledge(f.DeadLetters, "Serverless-SQSRedrivePolicy", "this queue is itself the function's on-failure destination")
		iotcert.AcknowledgeGuard(f.DeadLetters, "SQS_DLQ_CHECK", "this queue is itself the function's on-failure destination")
	}
	s.CRLProcessor.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("rolesanywhere:ImportCrl", "rolesanywhere:UpdateCrl", "rolesanywhere:TagResource"),
		Resources: &[]*string{stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("rolesanywhere"), Resource: jsii.String("crl"), ResourceName: jsii.String("*")})},
	}))
	iotcert.Acknowledge(s.CRLProcessor.Role, "AwsSolutions-IAM5",
		"Roles Anywhere chooses the CRL's id when ImportCrl creates it, so the grant names this account's crl/* resources; "+
			"the function reads only crl/ objects of this stack's CRL bucket (the CDK's read grant)")
}

// tableAccess grants actions on the host table (not its indexes) and the use of its key.
func (s *RotationStack) tableAccess(role awsiam.IRole, write bool, actions ...string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(actions...), Resources: &[]*string{s.Table.TableArn()},
	}))
	keyActions := []*string{jsii.String("kms:Decrypt"), jsii.String("kms:DescribeKey")}
	if write {
		keyActions = append(keyActions, jsii.String("kms:Encrypt"), jsii.String("kms:GenerateDataKey"))
	}
	s.Key.Grant(role, keyActions...)
}

// publish grants publishing to the failure topic and the use of its key.
func (s *RotationStack) publish(role awsiam.IRole) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("sns:Publish"), Resources: &[]*string{s.Topic.TopicArn()},
	}))
	s.Key.Grant(role, jsii.String("kms:Decrypt"), jsii.String("kms:GenerateDataKey"))
}

// clientAuthTemplate is Private CA's client-authentication end-entity template.
func clientAuthTemplate() string {
	return "arn:" + *awscdk.Aws_PARTITION() + ":acm-pca:::template/EndEntityClientAuthCertificate/V1"
}

// defineWorkflow defines the state machine and its role.
func (s *RotationStack) defineWorkflow(p *RotationStackProps, rotationLabel string) {
	stack := s.Stack
	name := "CertRotation-Workflow" + p.suffix() // a fixed name: the distributed Map's grants name its child executions
	logs := awslogs.NewLogGroup(stack, jsii.String("WorkflowLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	iotcert.AcknowledgeGuard(logs, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
		"execution events without their data (includeExecutionData is off); CloudWatch Logs encrypts them at rest")

	w := rotationWorkflow{
		MaxConcurrency: p.MaxConcurrency, SigningAlgorithm: p.SigningAlgorithm, ValidityDays: p.ValidityDays,
		PollSeconds: 10, MaxPolls: 30, TimeoutSeconds: 11 * 3600, // a run ends before the next scheduled one
	}
	subs := map[string]*string{
		subSelectFunction: s.Select.Function.FunctionArn(),
		subTopic:          s.Topic.TopicArn(),
		subManifestBucket: s.Manifests.BucketName(),
		subRotation:       jsii.String(rotationLabel),
	}
	for k, f := range s.Steps {
		subs[k] = f.Function.FunctionArn()
	}
	s.StateMachine = awsstepfunctions.NewStateMachine(stack, jsii.String("Workflow"), &awsstepfunctions.StateMachineProps{
		StateMachineName:        jsii.String(name),
		StateMachineType:        awsstepfunctions.StateMachineType_STANDARD,
		DefinitionBody:          awsstepfunctions.DefinitionBody_FromString(jsii.String(rotationDefinitionJSON(w))),
		DefinitionSubstitutions: &subs,
		TracingEnabled:          jsii.Bool(true),
		Logs: &awsstepfunctions.LogOptions{
			Destination: logs, Level: awsstepfunctions.LogLevel_ALL, IncludeExecutionData: jsii.Bool(false),
		},
	})
	role := s.StateMachine.Role()
	s.Select.Function.GrantInvoke(role)
	for _, f := range s.Steps {
		f.Function.GrantInvoke(role)
	}
	// The workflow itself calls no table and no CA: the Go steps do (their SDK retries throttling).
	s.publish(role)
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("cloudwatch:PutMetricData"), Resources: jsii.Strings("*"),
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"cloudwatch:namespace": MetricsNamespace}},
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:GetObject"), Resources: &[]*string{s.Manifests.ArnForObjects(jsii.String(rotation.ManifestPrefix + "*"))},
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"), // ResultWriter's set
		Resources: &[]*string{s.Manifests.ArnForObjects(jsii.String(rotation.ResultsPrefix + "*"))},
	}))
	// The distributed Map starts child executions of this state machine and follows them.
	arn := func(resource, rname string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("states"), Resource: jsii.String(resource), ResourceName: jsii.String(rname), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME})
	}
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("states:StartExecution"), Resources: &[]*string{arn("stateMachine", name)},
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("states:DescribeExecution", "states:StopExecution"), Resources: &[]*string{arn("execution", name+"/*")},
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("states:RedriveExecution"), Resources: &[]*string{arn("mapRun", name+"/*")},
	}))
	iotcert.Acknowledge(role, "AwsSolutions-IAM5",
		"the distributed Map's child executions and map runs get their ids at run time under this state machine's name; "+
			"cloudwatch:PutMetricData has no resource ARN and is limited to the rotation namespace by condition; S3 grants name the "+
			"manifests/ and results/ prefixes of this stack's bucket; Lambda grants cover the versions of this stack's functions")
	// The trigger starts the workflow; rotation-hosts starts it too, for one host.
	s.StateMachine.GrantStartExecution(s.Trigger.Role)
	s.Trigger.Function.AddEnvironment(jsii.String(rotation.EnvStateMachineARN), s.StateMachine.StateMachineArn(), nil)
}

// defineSchedule defines the sample's schedule, CertCheckSchedule, invoking CertCheck-Trigger.
func (s *RotationStack) defineSchedule(p *RotationStackProps) {
	stack := s.Stack
	role := awsiam.NewRole(stack, jsii.String("EventBridgeSchedulerRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}},
		}),
		Description: jsii.String("Lets CertCheckSchedule invoke CertCheck-Trigger"),
	})
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("lambda:InvokeFunction"), Resources: &[]*string{s.Trigger.Function.FunctionArn()},
	}))
	awsscheduler.NewCfnSchedule(stack, jsii.String("Schedule"), &awsscheduler.CfnScheduleProps{
		Name:               jsii.String("CertCheckSchedule" + p.suffix()),
		Description:        jsii.String("Certificate rotation: twice a day, 03:15 and 15:15 UTC (the sample's schedule)"),
		ScheduleExpression: jsii.String("cron(15 3,15 * * ? *)"),
		FlexibleTimeWindow: &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: jsii.String("FLEXIBLE"), MaximumWindowInMinutes: jsii.Number(15)},
		State:              jsii.String("ENABLED"),
		Target: &awsscheduler.CfnSchedule_TargetProperty{
			Arn:         s.Trigger.Function.FunctionArn(),
			RoleArn:     role.RoleArn(),
			Input:       jsii.String("{}"),
			RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{MaximumRetryAttempts: jsii.Number(3), MaximumEventAgeInSeconds: jsii.Number(3600)},
		},
	})
}

// defineCRLForwarding sends each new CRL object to the CRL processor.
func (s *RotationStack) defineCRLForwarding(p *RotationStackProps) {
	s.defineCRLState(p)
	rule := awsevents.NewRule(s.Stack, jsii.String("CRLBucketEventBridgeRule"), &awsevents.RuleProps{
		Description: jsii.String("A new CRL from the private CA goes to CRLProcessor"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.s3"),
			DetailType: jsii.Strings("Object Created"),
			Detail: &map[string]interface{}{
				"bucket": map[string]interface{}{"name": []interface{}{s.CRLBucket.BucketName()}},
				// Both conditions (the sample's list meant either): a .crl object under crl/.
				"object": map[string]interface{}{"key": []interface{}{map[string]interface{}{"wildcard": "crl/*.crl"}}},
			},
		},
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(s.CRLProcessor.Function, &awseventstargets.LambdaFunctionProps{
		DeadLetterQueue: s.DeadLetters, RetryAttempts: jsii.Number(4), MaxEventAge: awscdk.Duration_Hours(jsii.Number(2)),
	}))
}

// defineAlarms defines the four alarms; each notifies the topic.
func (s *RotationStack) defineAlarms(p *RotationStackProps, rotationLabel string) {
	stack := s.Stack
	action := awscloudwatchactions.NewSnsAction(s.Topic)
	dims := &map[string]interface{}{"Rotation": rotationLabel}
	metric := func(name, stat string, period awscdk.Duration) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(MetricsNamespace), MetricName: jsii.String(name), DimensionsMap: toStringMap(dims), Statistic: jsii.String(stat), Period: period,
		})
	}
	// Failed executions (a host's, or a whole run's) from the workflow's own log.
	logs := stack.Node().FindChild(jsii.String("WorkflowLogs")).(awslogs.LogGroup)
	awslogs.NewMetricFilter(stack, jsii.String("RotationFailureFilter"), &awslogs.MetricFilterProps{
		LogGroup:        logs,
		FilterPattern:   awslogs.FilterPattern_StringValue(jsii.String("$.type"), jsii.String("="), jsii.String("ExecutionFailed")),
		MetricNamespace: jsii.String(MetricsNamespace),
		MetricName:      jsii.String("RotationFailures"),
		MetricValue:     jsii.String("1"),
		Dimensions:      &map[string]*string{"Rotation": jsii.String(rotationLabel)},
		Unit:            awscloudwatch.Unit_COUNT,
	})
	// Host items the normalizer refused (an id or a path that breaks the patterns), from its own log line.
	awslogs.NewMetricFilter(stack, jsii.String("InvalidHostItemsFilter"), &awslogs.MetricFilterProps{
		LogGroup:        s.Normalize.LogGroup,
		FilterPattern:   awslogs.FilterPattern_StringValue(jsii.String("$.msg"), jsii.String("="), jsii.String("host item refused")),
		MetricNamespace: jsii.String(MetricsNamespace),
		MetricName:      jsii.String("InvalidHostItems"),
		MetricValue:     jsii.String("1"),
		Dimensions:      &map[string]*string{"Rotation": jsii.String(rotationLabel)},
		Unit:            awscloudwatch.Unit_COUNT,
	})
	alarms := []struct {
		id, desc  string
		m         awscloudwatch.Metric
		threshold float64
		cmp       awscloudwatch.ComparisonOperator
		missing   awscloudwatch.TreatMissingData
	}{
		{"RotationFailuresAlarm", "A host's rotation or a whole rotation run failed (details on the topic and in the host's lastError)",
			metric("RotationFailures", "Sum", awscdk.Duration_Hours(jsii.Number(1))), 1,
			awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.TreatMissingData_NOT_BREACHING},
		// Hosts past renewAt: every run starts with the hosts due (the OverdueHosts metric, for dashboards), so what
		// needs a person is a host still not renewed well past renewAt. IAM Roles Anywhere reports exactly that,
		// independently of this workflow: a host certificate used within a day of its expiry (at least a day and a
		// third past renewAt with the defaults). The same rule carries the CA's 60-day notice.
		{"HostsPastRenewalAlarm", "A host certificate is within a day of expiry (its renewal is long overdue: see rotation-hosts list), " +
			"or the CA certificate within 60 days (IAM Roles Anywhere expiry notifications)",
			awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace: jsii.String("AWS/Events"), MetricName: jsii.String("MatchedEvents"),
				DimensionsMap: &map[string]*string{"RuleName": s.ExpiryRule.RuleName()}, Statistic: jsii.String("Sum"), Period: awscdk.Duration_Hours(jsii.Number(6)),
			}), 1,
			awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.TreatMissingData_NOT_BREACHING},
		// Hosts past renewAt by more than two scheduled runs (rotation.StaleAfter), counted by each run's selection.
		{"StaleHostsAlarm", "Hosts are more than a day past their renewAt: at least two scheduled runs did not renew them (see rotation-hosts list and their lastError)",
			metric("StaleHosts", "Maximum", awscdk.Duration_Hours(jsii.Number(12))), 1,
			awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.TreatMissingData_NOT_BREACHING},
		// Private CA sends no expiry event: the workflow reports the CA's days left with each run's selection, and a
		// day without a report leaves the alarm in INSUFFICIENT_DATA. The trust anchor's CA_CERTIFICATE_EXPIRY
		// notification (60 days) reaches the topic as well.
		{"CAExpiryAlarm", "The private CA's certificate expires within 90 days: roll over to a new CA (README, CA roll-over)",
			metric("CADaysLeft", "Minimum", awscdk.Duration_Days(jsii.Number(1))), 90,
			awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, awscloudwatch.TreatMissingData_MISSING},
		{"InvalidHostItemsAlarm", "A host item written to the inventory cannot be rotated as written (its id or a path breaks the patterns): " +
			"see rotation-hosts list (status INVALID, lastError) and the notice on the topic",
			metric("InvalidHostItems", "Sum", awscdk.Duration_Hours(jsii.Number(1))), 1,
			awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.TreatMissingData_NOT_BREACHING},
		{"IssuanceQuotaAlarm", fmt.Sprintf("The CA has issued 80 %% of its lifetime quota of %d certificates: raise the quota or roll over to a new CA", p.CertificateQuota),
			metric("IssuedCertificates", "Maximum", awscdk.Duration_Hours(jsii.Number(1))), float64(p.CertificateQuota) * 0.8,
			awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.TreatMissingData_NOT_BREACHING},
	}
	for _, a := range alarms {
		alarm := awscloudwatch.NewAlarm(stack, jsii.String(a.id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(a.desc),
			Metric:             a.m,
			Threshold:          jsii.Number(a.threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: a.cmp,
			TreatMissingData:   a.missing,
		})
		alarm.AddAlarmAction(action)
	}
}

func toStringMap(m *map[string]interface{}) *map[string]*string {
	out := map[string]*string{}
	for k, v := range *m {
		out[k] = jsii.String(fmt.Sprint(v))
	}
	return &out
}

// HostDocuments are the two SSM Command documents of a rotation, defined from internal/rotation's Go values.
type HostDocuments struct {
	CSR, Install awsssm.CfnDocument
}

// defineHostDocuments defines the phase-1 (key and CSR) and phase-2 (test and install) documents. Their names are
// CloudFormation's: the functions receive them by reference.
func defineHostDocuments(stack awscdk.Stack, p *RotationStackProps) HostDocuments {
	defaults := rotation.DocumentDefaults{
		CertDir: p.CertPath, KeyDir: p.KeyPath, CACertDir: p.CACertPath, SigningHelperDir: p.SigningHelperPath, KeyAlgorithm: p.HostKeyAlgorithm,
	}
	if err := defaults.Validate(); err != nil {
		panic(fmt.Sprintf("%s: %v", *stack.Node().Id(), err))
	}
	doc := func(id string, d rotation.Document) awsssm.CfnDocument {
		return awsssm.NewCfnDocument(stack, jsii.String(id), &awsssm.CfnDocumentProps{
			DocumentType:   jsii.String("Command"),
			DocumentFormat: jsii.String("JSON"),
			Content:        d.Content(),
			UpdateMethod:   jsii.String("NewVersion"),
		})
	}
	return HostDocuments{
		CSR:     doc("CSRDocument", rotation.CSRDocument(defaults)),
		Install: doc("InstallDocument", rotation.InstallDocument(defaults)),
	}
}
