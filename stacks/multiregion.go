package stacks

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsacmpca"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/crossregion"
	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/policies"
)

// Context keys of the multi-region stacks.
const (
	ctxPrimaryRegion        = "primary_region"
	ctxReplicaRegions       = "replica_regions"
	ctxCACertificateFile    = "ca_certificate_file"
	ctxCAKeyAlgorithm       = "ca_key_algorithm"
	ctxCASubject            = "ca_subject"
	ctxCAValidityYears      = "ca_validity_years"
	ctxProvisioning         = "provisioning"
	ctxJITRPolicyFile       = "jitr_policy_file"
	ctxJITRThingNamePattern = "jitr_thing_name_pattern"
	ctxReplicationTTLHours  = "replication_ttl_hours"
)

// MultiRegionContextKeys are the context keys the multi-region stacks read.
var MultiRegionContextKeys = []string{
	ctxPrimaryRegion, ctxReplicaRegions, ctxCACertificateFile, ctxCAKeyAlgorithm, ctxCASubject, ctxCAValidityYears,
	ctxProvisioning, ctxJITRPolicyFile, ctxJITRThingNamePattern, ctxReplicationTTLHours,
}

// Multi-region defaults and the seed's names (its notebooks, templates and operators use them).
const (
	DefaultPrimaryRegion   = "us-west-2" // the seed's master region
	DefaultReplicaRegion   = "us-east-1" // the seed's slave region
	DefaultCASubject       = "C=DE,O=AWS,OU=IoT,ST=Berlin,L=Berlin,CN=Multi Region CA"
	DefaultCAKeyAlgorithm  = "RSA_2048"
	DefaultCAValidityYears = 10
	// DefaultReplicationTTLHours keeps a registry event in the table for two days (the seed's successor used 48 h).
	DefaultReplicationTTLHours = 48

	ProvisioningTableName  = "IoTMRProvisioning"
	ProvisioningTableKey   = "uuid"
	ProvisioningTTLAttr    = "expires"
	ProvisioningOriginAttr = "originRegion"
	CrossRegionTopicName   = "IoTCrossRegion"
	CrossRegionTopicFilter = "cmd/+/cross/region"
	// CACertificateParameter holds, in the primary region, the PEM of the Private CA's certificate; replica stacks
	// read it at deploy time.
	CACertificateParameter = "/iotcert/multiregion/ca-certificate"

	ProvisioningJITR = "jitr"
	ProvisioningJITP = "jitp"
)

// primaryRegistryEventTypes are the registry events the primary captures into the table; CA_CERTIFICATE is on in
// every region for just-in-time registration.
var primaryRegistryEventTypes = []string{"THING", "THING_TYPE", "THING_TYPE_ASSOCIATION", "THING_GROUP",
	"THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY", "CA_CERTIFICATE"}

// registryTopics are topic(3) of the registry events the rule stores: the seed's list.
var registryTopics = []string{"thing", "thingGroup", "thingType", "thingTypeAssociation", "thingGroupMembership", "thingGroupHierarchy"}

// caKeyAlgorithms maps the Private CA key algorithms we allow to their signing algorithm.
var caKeyAlgorithms = map[string]string{
	"RSA_2048": "SHA256WITHRSA", "RSA_3072": "SHA256WITHRSA", "RSA_4096": "SHA256WITHRSA",
	"EC_prime256v1": "SHA256WITHECDSA", "EC_secp384r1": "SHA384WITHECDSA",
}

// caSubjectFields maps the ca_subject attribute names to Private CA's subject fields.
var caSubjectFields = []string{"C", "O", "OU", "ST", "L", "CN"}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[1-9]$`)

// CAOptions chooses the CA of the multi-region stacks: the operator's certificate (CertificatePEM) or, when it is
// empty, a Private CA made from the other fields.
type CAOptions struct {
	// CertificatePEM is the operator's CA certificate (ca_certificate_file). Default: a Private CA.
	CertificatePEM []byte
	// KeyAlgorithm of the Private CA. Default: RSA_2048 (the seed's).
	KeyAlgorithm string
	// Subject of the Private CA as C=..,O=..,OU=..,ST=..,L=..,CN=.. Default: the seed's, DefaultCASubject.
	Subject string
	// ValidityYears of the Private CA's self-signed certificate. Default: 10.
	ValidityYears int
}

// MultiRegionProps configures NewMultiRegionStacks.
type MultiRegionProps struct {
	// Account of every stack. Default: the account of the deploying credentials.
	Account string
	// PrimaryRegion holds the CA, the registry capture and the global table. Default: us-west-2.
	PrimaryRegion string
	// ReplicaRegions receive the registry and a registration of the CA. Default: [us-east-1].
	ReplicaRegions []string
	CA             CAOptions
	// Provisioning is "jitr" (a function registers devices) or "jitp" (AWS IoT's provisioning template). Default: jitr.
	Provisioning string
	// PolicyDocument is the device policy jitr-mr-policy, with the ${AWS::...} placeholders of package policies.
	// Default: the seed's document.
	PolicyDocument []byte
	// ThingNamePattern, a Go regular expression, further restricts the thing names JITR accepts. Default: none.
	ThingNamePattern string
	// ReplicationTTLHours keeps registry events in the table this long. Default: 48.
	ReplicationTTLHours int
}

func (p MultiRegionProps) withDefaults() MultiRegionProps {
	if p.PrimaryRegion == "" {
		p.PrimaryRegion = DefaultPrimaryRegion
	}
	if len(p.ReplicaRegions) == 0 {
		p.ReplicaRegions = []string{DefaultReplicaRegion}
	}
	p.ReplicaRegions = append([]string(nil), p.ReplicaRegions...)
	if p.CA.KeyAlgorithm == "" {
		p.CA.KeyAlgorithm = DefaultCAKeyAlgorithm
	}
	if p.CA.Subject == "" {
		p.CA.Subject = DefaultCASubject
	}
	if p.CA.ValidityYears == 0 {
		p.CA.ValidityYears = DefaultCAValidityYears
	}
	if p.Provisioning == "" {
		p.Provisioning = ProvisioningJITR
	}
	if p.PolicyDocument == nil {
		p.PolicyDocument = policies.JITRMultiRegionPolicy()
	}
	if p.ReplicationTTLHours == 0 {
		p.ReplicationTTLHours = DefaultReplicationTTLHours
	}
	return p
}

// validate checks every value before anything is defined; each error is one line naming the bad value.
func (p MultiRegionProps) validate() error {
	if !regionRE.MatchString(p.PrimaryRegion) {
		return fmt.Errorf("context %s: %q is not an AWS region name (like us-west-2)", ctxPrimaryRegion, p.PrimaryRegion)
	}
	seen := map[string]bool{p.PrimaryRegion: true}
	for _, r := range p.ReplicaRegions {
		if !regionRE.MatchString(r) {
			return fmt.Errorf("context %s: %q is not an AWS region name (like us-east-1)", ctxReplicaRegions, r)
		}
		if r == p.PrimaryRegion {
			return fmt.Errorf("context %s: %q is the primary region; a replica needs a region of its own", ctxReplicaRegions, r)
		}
		if seen[r] {
			return fmt.Errorf("context %s: region %q is listed twice", ctxReplicaRegions, r)
		}
		seen[r] = true
	}
	if p.Provisioning != ProvisioningJITR && p.Provisioning != ProvisioningJITP {
		return fmt.Errorf("context %s must be %q or %q, got %q", ctxProvisioning, ProvisioningJITR, ProvisioningJITP, p.Provisioning)
	}
	if len(p.CA.CertificatePEM) == 0 {
		if _, ok := caKeyAlgorithms[p.CA.KeyAlgorithm]; !ok {
			return fmt.Errorf("context %s must be one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, got %q", ctxCAKeyAlgorithm, p.CA.KeyAlgorithm)
		}
		if _, err := parseCASubject(p.CA.Subject); err != nil {
			return err
		}
		if p.CA.ValidityYears < 1 || p.CA.ValidityYears > 30 {
			return fmt.Errorf("context %s must be a whole number from 1 to 30, got %d", ctxCAValidityYears, p.CA.ValidityYears)
		}
	} else if _, err := ParseCACertificate(p.CA.CertificatePEM); err != nil {
		return fmt.Errorf("context %s: %v", ctxCACertificateFile, err)
	}
	if _, err := policies.Check(p.PolicyDocument, policies.CheckOptions{}); err != nil {
		return fmt.Errorf("context %s: %v", ctxJITRPolicyFile, err)
	}
	if p.ThingNamePattern != "" {
		if _, err := regexp.Compile(p.ThingNamePattern); err != nil {
			return fmt.Errorf("context %s: %q is not a regular expression: %v", ctxJITRThingNamePattern, p.ThingNamePattern, err)
		}
	}
	if p.ReplicationTTLHours < 1 || p.ReplicationTTLHours > 24*35 {
		return fmt.Errorf("context %s must be a whole number of hours from 1 to 840, got %d", ctxReplicationTTLHours, p.ReplicationTTLHours)
	}
	return nil
}

// parseCASubject reads C=..,O=..,OU=..,ST=..,L=..,CN=.. (each attribute at most once; CN required).
func parseCASubject(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		known := false
		for _, f := range caSubjectFields {
			known = known || f == k
		}
		switch {
		case !ok || v == "":
			return nil, fmt.Errorf("context %s: %q is not attribute=value", ctxCASubject, part)
		case !known:
			return nil, fmt.Errorf("context %s: attribute %q is not one of C, O, OU, ST, L, CN", ctxCASubject, k)
		case out[k] != "":
			return nil, fmt.Errorf("context %s: attribute %q is given twice", ctxCASubject, k)
		case len(v) > 64:
			return nil, fmt.Errorf("context %s: %s is longer than 64 characters", ctxCASubject, k)
		}
		out[k] = v
	}
	if out["CN"] == "" {
		return nil, fmt.Errorf("context %s: CN is required, got %q", ctxCASubject, s)
	}
	if c := out["C"]; c != "" && !regexp.MustCompile(`^[A-Z]{2}$`).MatchString(c) {
		return nil, fmt.Errorf("context %s: C must be a two-letter country code, got %q", ctxCASubject, c)
	}
	return out, nil
}

// ParseCACertificate checks an operator's CA certificate: exactly one PEM CERTIFICATE block (no private key may
// travel into a template), a CA certificate by its basic constraints, valid now.
func ParseCACertificate(data []byte) (*x509.Certificate, error) {
	if strings.Contains(string(data), "PRIVATE KEY") {
		return nil, fmt.Errorf("the file holds a private key; give the CA certificate alone (the key must not reach a template)")
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM CERTIFICATE block")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("more than one PEM block; give the one CA certificate that signs device certificates")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %v", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA certificate (basic constraints CA:TRUE)", cert.Subject.String())
	}
	if now := time.Now(); now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("certificate %q is valid from %s to %s, not now", cert.Subject.String(),
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return cert, nil
}

// caFingerprint changes whenever the CA changes (another file, subject, key algorithm or validity): replica stacks
// carry it so that their reader of the CA certificate runs again after a CA replacement.
func (p MultiRegionProps) caFingerprint() string {
	h := sha256.New()
	if len(p.CA.CertificatePEM) > 0 {
		h.Write(p.CA.CertificatePEM)
	} else {
		fmt.Fprintf(h, "pca|%s|%s|%d", p.CA.KeyAlgorithm, p.CA.Subject, p.CA.ValidityYears)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// MultiRegionStacks are the primary stack and one replica stack per replica region.
type MultiRegionStacks struct {
	Primary  *MultiRegionPrimaryStack
	Replicas []*MultiRegionReplicaStack
}

// regionalParts are the resources every region defines: the CA registration, the device policy, JITR (or JITP) and
// the role that rule actions use.
type regionalParts struct {
	CACertificate awsiot.CfnCACertificate
	Policy        awsiot.CfnPolicy
	// JITR is the registration function (nil with JITP); its DeadLetters queue also takes the rule's errors.
	JITR        *iotcert.GoFunction
	DeadLetters awssqs.IQueue
	// RuleRole is the role of this region's topic-rule actions (the seed's IoTAccessServicesRole).
	RuleRole awsiam.Role
}

// MultiRegionPrimaryStack is IotMultiRegion-Primary: the CA, the registry capture into the global table, the
// cross-region topic, and the region's own registration.
type MultiRegionPrimaryStack struct {
	awscdk.Stack
	regionalParts
	// PrivateCA is nil when the operator brings a CA certificate.
	PrivateCA awsacmpca.CfnCertificateAuthority
	// CACertificatePEM is the CA certificate (a token for a Private CA).
	CACertificatePEM *string
	Table            awsdynamodb.TableV2
	CrossRegionTopic awssns.Topic
}

// MultiRegionReplicaStack is IotMultiRegion-Replica-<region>: the region's registration of the CA, JITR, the stream of
// its table replica, the cross-region republisher.
type MultiRegionReplicaStack struct {
	awscdk.Stack
	regionalParts
	Region string
	// StreamArn is the latest stream ARN of this region's replica of the table, read at deploy time.
	StreamArn *string
	// Table is this region's replica of the table.
	Table       awsdynamodb.ITableV2
	CrossRegion *iotcert.GoFunction
	// Replication replays the primary's registry events in this region and reconciles daily.
	Replication *Replication
}

// NewMultiRegionStacks defines IotMultiRegion-Primary and one IotMultiRegion-Replica-<region> per replica region. It
// panics with a one-line message on a bad value.
func NewMultiRegionStacks(scope constructs.Construct, props *MultiRegionProps) *MultiRegionStacks {
	p := props.withDefaults()
	if err := p.validate(); err != nil {
		panic(err.Error())
	}
	out := &MultiRegionStacks{Primary: newMultiRegionPrimary(scope, &p)}
	for _, r := range p.ReplicaRegions {
		rs := newMultiRegionReplica(scope, &p, r)
		// Replicas read what the primary made (the CA certificate parameter, the table replica): deploy after it.
		rs.AddStackDependency(out.Primary.Stack, jsii.String("the replica reads the primary's CA certificate and table replica"))
		out.Replicas = append(out.Replicas, rs)
	}
	return out
}

func multiRegionStack(scope constructs.Construct, id, account, region, description string) awscdk.Stack {
	env := &awscdk.Environment{Region: jsii.String(region)}
	if account != "" {
		env.Account = jsii.String(account)
	}
	return awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{Env: env, Description: jsii.String(description)})
}

func newMultiRegionPrimary(scope constructs.Construct, p *MultiRegionProps) *MultiRegionPrimaryStack {
	stack := multiRegionStack(scope, "IotMultiRegion-Primary", p.Account, p.PrimaryRegion,
		"Multi-region AWS IoT, primary region: CA, just-in-time registration, registry capture into the IoTMRProvisioning global table")
	s := &MultiRegionPrimaryStack{Stack: stack}
	if len(p.CA.CertificatePEM) > 0 {
		s.CACertificatePEM = jsii.String(string(p.CA.CertificatePEM))
	} else {
		s.PrivateCA, s.CACertificatePEM = definePrivateCA(stack, p)
		// Replica stacks read the CA certificate from here at deploy time (a CA certificate is public).
		awsssm.NewStringParameter(stack, jsii.String("CACertificateParameter"), &awsssm.StringParameterProps{
			ParameterName: jsii.String(CACertificateParameter),
			StringValue:   s.CACertificatePEM,
			Description:   jsii.String("PEM of the multi-region Private CA's certificate, read by the replica stacks"),
		})
	}
	events := enableRegistryEvents(stack, primaryRegistryEventTypes...)
	s.regionalParts = defineRegionalParts(stack, p, s.CACertificatePEM)

	replicas := []*awsdynamodb.ReplicaTableProps{}
	for _, r := range p.ReplicaRegions {
		replicas = append(replicas, &awsdynamodb.ReplicaTableProps{Region: jsii.String(r)})
	}
	// A replay buffer, not the registry: items expire after replication_ttl_hours, so the table is deleted with the
	// stack (the seed's name is its contract with operators' tools).
	s.Table = awsdynamodb.NewTableV2(stack, jsii.String("ProvisioningTable"), &awsdynamodb.TablePropsV2{
		TableName:                        jsii.String(ProvisioningTableName),
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(ProvisioningTableKey), Type: awsdynamodb.AttributeType_STRING},
		Billing:                          awsdynamodb.Billing_OnDemand(nil),
		DynamoStream:                     awsdynamodb.StreamViewType_NEW_AND_OLD_IMAGES,
		TimeToLiveAttribute:              jsii.String(ProvisioningTTLAttr),
		Replicas:                         &replicas,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		RemovalPolicy:                    awscdk.RemovalPolicy_DESTROY,
	})

	// The seed's rule, keyed by the event's own eventId instead of newuuid(): a duplicate delivery overwrites its item
	// (a MODIFY, which replay ignores) instead of making a second INSERT. Items carry their origin region and expiry.
	where := make([]string, len(registryTopics))
	for i, t := range registryTopics {
		where[i] = fmt.Sprintf("topic(3) = '%s'", t)
	}
	sql := fmt.Sprintf("SELECT eventId AS %s, '%s' AS %s, floor(timestamp() / 1000) + %d AS %s, * FROM '$aws/events/#' WHERE %s",
		ProvisioningTableKey, p.PrimaryRegion, ProvisioningOriginAttr, p.ReplicationTTLHours*3600, ProvisioningTTLAttr, strings.Join(where, " OR "))
	captureErrors := awssqs.NewQueue(stack, jsii.String("RegistryCaptureDeadLetters"), &awssqs.QueueProps{
		Encryption: awssqs.QueueEncryption_SQS_MANAGED, EnforceSSL: jsii.Bool(true), RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	iotcert.Acknowledge(captureErrors, "AwsSolutions-SQS3", "this queue is itself the error action of the registry capture rule")
	iotcert.Acknowledge(captureErrors, "Serverless-SQSRedrivePolicy", "this queue is itself the error action of the registry capture rule")
	iotcert.AcknowledgeGuard(captureErrors, "SQS_DLQ_CHECK", "this queue is itself the error action of the registry capture rule")
	s.Table.Grant(s.RuleRole, jsii.String("dynamodb:PutItem"))
	captureErrors.GrantSendMessages(s.RuleRole)
	capture := awsiot.NewCfnTopicRule(stack, jsii.String("EventsToDynamoV2Rule"), &awsiot.CfnTopicRuleProps{
		TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
			Description:      jsii.String("Registry events into IoTMRProvisioning, one item per eventId, for replay in the replica regions"),
			Sql:              jsii.String(sql),
			AwsIotSqlVersion: jsii.String("2016-03-23"),
			RuleDisabled:     jsii.Bool(false),
			Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
				DynamoDBv2: &awsiot.CfnTopicRule_DynamoDBv2ActionProperty{
					PutItem: &awsiot.CfnTopicRule_PutItemInputProperty{TableName: s.Table.TableName()},
					RoleArn: s.RuleRole.RoleArn(),
				},
			}},
			ErrorAction: sqsAction(captureErrors, s.RuleRole),
		},
	})
	capture.Node().AddDependency(events)

	// Cross-region data (the seed's notebook 10): cmd/+/cross/region in the primary → SNS → republisher per replica.
	s.CrossRegionTopic = awssns.NewTopic(stack, jsii.String("CrossRegionTopic"), &awssns.TopicProps{
		TopicName:  jsii.String(CrossRegionTopicName), // the seed's name: replicas subscribe to it by ARN
		MasterKey:  awskms.Alias_FromAliasName(stack, jsii.String("SnsKey"), jsii.String("alias/aws/sns")),
		EnforceSSL: jsii.Bool(true),
	})
	// sns:Publish alone: the AWS managed SNS key's own policy lets the account's principals use it through SNS, so no
	// KMS grant is needed (GrantPublish would add one on every key of the account).
	s.RuleRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("sns:Publish"), Resources: &[]*string{s.CrossRegionTopic.TopicArn()},
	}))
	awsiot.NewCfnTopicRule(stack, jsii.String("CrossRegionSNSRule"), &awsiot.CfnTopicRuleProps{
		RuleName: jsii.String("IoTMRCrossRegionSNSRule"), // the seed's rule name
		TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
			Description: jsii.String("Messages on cmd/+/cross/region to every replica region"),
			// The envelope the republisher reads: topic, payload and origin region, and the loop-guard property.
			Sql:              jsii.String(crossregion.RuleSQL(CrossRegionTopicFilter, p.PrimaryRegion)),
			AwsIotSqlVersion: jsii.String("2016-03-23"),
			RuleDisabled:     jsii.Bool(false),
			Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
				Sns: &awsiot.CfnTopicRule_SnsActionProperty{TargetArn: s.CrossRegionTopic.TopicArn(), RoleArn: s.RuleRole.RoleArn(), MessageFormat: jsii.String("RAW")},
			}},
			ErrorAction: sqsAction(captureErrors, s.RuleRole),
		},
	})

	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: v, Description: jsii.String(desc)})
	}
	out("IoTAccessServicesRoleArn", "Arn of the role for IoT topic rule actions", s.RuleRole.RoleArn())
	out("ProvisioningTableName", "Global table of registry events replayed in the replica regions", s.Table.TableName())
	out("RegistryCaptureDeadLetterQueueUrl", "Registry events the capture rule could not store", captureErrors.QueueUrl())
	out("CrossRegionTopicArn", "SNS topic of the cross-region messages (cmd/+/cross/region)", s.CrossRegionTopic.TopicArn())
	if s.PrivateCA != nil {
		out("PrivateCaArn", "ARN of the AWS Private CA that signs device certificates (cmd/device-cert sign --ca-arn)", s.PrivateCA.AttrArn())
	}
	iotcert.ScopeServicePermissions(stack)
	return s
}

// definePrivateCA defines a ROOT Private CA in general-purpose mode (device certificates outlive short-lived mode's
// 7 days) with CloudFormation's own ACM PCA resources: the CA, its self-signed certificate, its activation, and a CRL
// in a private bucket. It returns the CA and its certificate PEM (a token).
func definePrivateCA(stack awscdk.Stack, p *MultiRegionProps) (awsacmpca.CfnCertificateAuthority, *string) {
	subject, _ := parseCASubject(p.CA.Subject) // validated
	subjectField := func(k string) *string {
		if v := subject[k]; v != "" {
			return jsii.String(v)
		}
		return nil
	}
	crl := awss3.NewBucket(stack, jsii.String("CrlBucket"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN, // it serves the CRL of a retained CA
		LifecycleRules:    &[]*awss3.LifecycleRule{{NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(30))}},
	})
	const crlReason = "written only by AWS Private CA (one CRL object, replaced in place) and read by operators; access is recorded by CloudTrail"
	iotcert.Acknowledge(crl, "AwsSolutions-S1", crlReason)
	iotcert.AcknowledgeGuard(crl, "S3_BUCKET_LOGGING_ENABLED_CHECK", crlReason)
	iotcert.AcknowledgeGuard(crl, "S3_BUCKET_OBJECT_LOCK_ENABLED_CHECK", "the CRL is regenerated by Private CA; an object lock would stop it from being replaced")
	iotcert.AcknowledgeGuard(crl, "S3_BUCKET_DEFAULT_ENCRYPTION_KMS_CHECK",
		"the bucket holds only the CA's signed CRL, public information by design; SSE-S3 encrypts it at rest without granting Private CA a KMS key")
	iotcert.AcknowledgeGuard(crl, "S3_EVENT_NOTIFICATIONS_ENABLED_CHECK", "nothing reacts to a new CRL; devices and AWS IoT do not fetch it")
	sourceArn := stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("acm-pca"), Resource: jsii.String("certificate-authority"), ResourceName: jsii.String("*")})
	pcaWrite := crl.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("acm-pca.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:PutObject", "s3:PutObjectAcl", "s3:GetBucketAcl", "s3:GetBucketLocation"),
		Resources:  &[]*string{crl.BucketArn(), crl.ArnForObjects(jsii.String("*"))},
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()},
			"ArnLike":      map[string]interface{}{"aws:SourceArn": sourceArn},
		},
	}))
	ca := awsacmpca.NewCfnCertificateAuthority(stack, jsii.String("PrivateCA"), &awsacmpca.CfnCertificateAuthorityProps{
		Type:             jsii.String("ROOT"),
		UsageMode:        jsii.String("GENERAL_PURPOSE"),
		KeyAlgorithm:     jsii.String(p.CA.KeyAlgorithm),
		SigningAlgorithm: jsii.String(caKeyAlgorithms[p.CA.KeyAlgorithm]),
		Subject: &awsacmpca.CfnCertificateAuthority_SubjectProperty{
			Country: subjectField("C"), Organization: subjectField("O"), OrganizationalUnit: subjectField("OU"), State: subjectField("ST"), Locality: subjectField("L"), CommonName: subjectField("CN"),
		},
		RevocationConfiguration: &awsacmpca.CfnCertificateAuthority_RevocationConfigurationProperty{
			CrlConfiguration: &awsacmpca.CfnCertificateAuthority_CrlConfigurationProperty{
				Enabled:          jsii.Bool(true),
				ExpirationInDays: jsii.Number(7),
				S3BucketName:     crl.BucketName(),
				// A private bucket with object ownership enforced takes no ACLs: Private CA then writes without one.
				S3ObjectAcl: jsii.String("BUCKET_OWNER_FULL_CONTROL"),
				CrlDistributionPointExtensionConfiguration: &awsacmpca.CfnCertificateAuthority_CrlDistributionPointExtensionConfigurationProperty{
					OmitExtension: jsii.Bool(true), // the bucket is private: a URL in every certificate would point nowhere
				},
			},
		},
	})
	if pcaWrite.PolicyDependable != nil {
		ca.Node().AddDependency(pcaWrite.PolicyDependable)
	}
	// The root of trust of every device: kept when the stack is deleted (see the README for deleting it on purpose).
	ca.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	cert := awsacmpca.NewCfnCertificate(stack, jsii.String("PrivateCACertificate"), &awsacmpca.CfnCertificateProps{
		CertificateAuthorityArn:   ca.AttrArn(),
		CertificateSigningRequest: ca.AttrCertificateSigningRequest(),
		SigningAlgorithm:          jsii.String(caKeyAlgorithms[p.CA.KeyAlgorithm]),
		TemplateArn:               jsii.String("arn:" + *stack.Partition() + ":acm-pca:::template/RootCACertificate/V1"),
		Validity:                  &awsacmpca.CfnCertificate_ValidityProperty{Type: jsii.String("YEARS"), Value: jsii.Number(float64(p.CA.ValidityYears))},
	})
	cert.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	act := awsacmpca.NewCfnCertificateAuthorityActivation(stack, jsii.String("PrivateCAActivation"), &awsacmpca.CfnCertificateAuthorityActivationProps{
		CertificateAuthorityArn: ca.AttrArn(),
		Certificate:             cert.AttrCertificate(),
		Status:                  jsii.String("ACTIVE"),
	})
	act.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	return ca, cert.AttrCertificate()
}

// defineRegionalParts registers the CA in the stack's region and defines the device policy and the registration path
// (JITR function and rule, or the JITP template on the CA).
func defineRegionalParts(stack awscdk.Stack, p *MultiRegionProps, caPEM *string) regionalParts {
	var r regionalParts
	region := *stack.Region()
	r.RuleRole = awsiam.NewRole(stack, jsii.String("IoTAccessServicesRole"), &awsiam.RoleProps{
		Description: jsii.String("Actions of this region's AWS IoT topic rules (the seed's IoTAccessServicesRole, without its managed policies)"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}},
		}),
	})
	doc, err := policies.Render(p.PolicyDocument, *stack.Partition(), region, *stack.Account())
	if err != nil {
		panic(fmt.Sprintf("%s: %v", *stack.StackName(), err))
	}
	var docValue map[string]interface{}
	if err := json.Unmarshal(doc, &docValue); err != nil {
		panic(fmt.Sprintf("%s: policy document: %v", *stack.StackName(), err))
	}
	// Retained on delete: it stays attached to the certificates registered under it, and AWS IoT refuses to delete an
	// attached policy.
	r.Policy = awsiot.NewCfnPolicy(stack, jsii.String("JitrPolicy"), &awsiot.CfnPolicyProps{
		PolicyName:     jsii.String(policies.JITRPolicyName),
		PolicyDocument: docValue,
	})
	r.Policy.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)

	// SNI_ONLY (multi-account mode): CloudFormation's own resource registers it with no verification certificate and
	// no custom resource, and the same CA may be registered by other accounts of the fleet in the same region.
	ca := awsiot.NewCfnCACertificate(stack, jsii.String("CACertificate"), &awsiot.CfnCACertificateProps{
		CaCertificatePem:       caPEM,
		CertificateMode:        jsii.String("SNI_ONLY"),
		Status:                 jsii.String("ACTIVE"),
		AutoRegistrationStatus: jsii.String("ENABLE"),
	})
	ca.Node().AddDependency(enabledEvents(stack))
	r.CACertificate = ca

	if p.Provisioning == ProvisioningJITP {
		defineJITP(stack, ca, r.Policy)
	} else {
		r.JITR, r.DeadLetters = defineJITR(stack, p, ca, r.RuleRole)
	}
	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: v, Description: jsii.String(desc)})
	}
	out("CACertificateArn", "ARN of this region's registration of the CA certificate", ca.AttrArn())
	out("CACertificateId", "Id of the CA certificate in AWS IoT (the same in every region)", ca.AttrId())
	return r
}

// enabledEvents returns the stack's registry-event setting (defined by enableRegistryEvents).
func enabledEvents(stack awscdk.Stack) constructs.IConstruct {
	c := stack.Node().TryFindChild(jsii.String("RegistryEvents"))
	if c == nil {
		panic("stacks: registry events must be enabled before the CA is registered")
	}
	return c
}

// defineJITR defines the registration function, invoked asynchronously by a rule on this CA's registration events.
// Failed invocations and rule errors go to the function's dead-letter queue.
func defineJITR(stack awscdk.Stack, p *MultiRegionProps, ca awsiot.CfnCACertificate, ruleRole awsiam.Role) (*iotcert.GoFunction, awssqs.IQueue) {
	env := map[string]*string{
		"CA_CERTIFICATE_ID": ca.AttrId(),
		"POLICY_NAME":       jsii.String(policies.JITRPolicyName),
	}
	if p.ThingNamePattern != "" {
		env["THING_NAME_PATTERN"] = jsii.String(p.ThingNamePattern)
	}
	fn := iotcert.NewGoFunction(stack, "JITRFunction", &iotcert.GoFunctionProps{
		Handler:     "jitr",
		Description: "Just-in-time registration: verifies a pending certificate against our CA, creates the thing, attaches it and jitr-mr-policy, activates last",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(30)),
		Environment: env,
		OnFailure:   true,
	})
	arn := func(resource, name string) *string { return iotArn(stack, resource, name) }
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeCACertificate"),
		Resources: &[]*string{arn("cacert", *ca.AttrId())},
	}))
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeCertificate", "iot:UpdateCertificate", "iot:AttachPolicy"),
		Resources: &[]*string{arn("cert", "*")},
	}))
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeThing", "iot:CreateThing", "iot:AttachThingPrincipal"),
		Resources: &[]*string{arn("thing", "*")},
	}))
	iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
		"AWS IoT chooses certificate ids at auto-registration and the thing name comes from each certificate's subject, so the grants name "+
			"the cert and thing resource types of this account and region; the function itself checks the CA, the signature and the name",
		nagIoTResource(stack, "cert/*"),
		nagIoTResource(stack, "thing/*"))

	fn.DeadLetters.GrantSendMessages(ruleRole)
	rule := awsiot.NewCfnTopicRule(stack, jsii.String("JITRRule"), &awsiot.CfnTopicRuleProps{
		TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
			Description: jsii.String("Certificates auto-registered under our CA and pending activation, to the JITR function"),
			// Only this CA's events (the seed listened to every CA's).
			Sql:              awscdk.Fn_Join(jsii.String(""), jsii.Strings(`SELECT * FROM '$aws/events/certificates/registered/`, *ca.AttrId(), `' WHERE certificateStatus = "PENDING_ACTIVATION"`)),
			AwsIotSqlVersion: jsii.String("2016-03-23"),
			RuleDisabled:     jsii.Bool(false),
			Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
				Lambda: &awsiot.CfnTopicRule_LambdaActionProperty{FunctionArn: fn.Function.FunctionArn()},
			}},
			ErrorAction: sqsAction(fn.DeadLetters, ruleRole),
		},
	})
	fn.Function.AddPermission(jsii.String("InvokeByJITRRule"), &awslambda.Permission{
		Principal: awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil),
		SourceArn: rule.AttrArn(),
	})
	awscdk.NewCfnOutput(stack, jsii.String("JITRLambdaFunctionName"), &awscdk.CfnOutputProps{Value: fn.Function.FunctionName(), Description: jsii.String("Name of the JITR function")})
	awscdk.NewCfnOutput(stack, jsii.String("DeadLetterQueueUrl"), &awscdk.CfnOutputProps{Value: fn.DeadLetters.QueueUrl(), Description: jsii.String("JITR events that failed or could not be delivered")})
	return fn, fn.DeadLetters
}

// defineJITP puts AWS IoT's just-in-time provisioning template on the CA: the same thing name (the subject CN), policy
// and activation as the JITR function, with no function of ours.
func defineJITP(stack awscdk.Stack, ca awsiot.CfnCACertificate, policy awsiot.CfnPolicy) {
	role := awsiam.NewRole(stack, jsii.String("JITPRole"), &awsiam.RoleProps{
		Description: jsii.String("Used by AWS IoT to run the just-in-time provisioning template of the CA"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}},
		}),
	})
	arn := func(resource, name string) *string { return iotArn(stack, resource, name) }
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeThing", "iot:CreateThing", "iot:UpdateThing", "iot:AttachThingPrincipal", "iot:ListThingPrincipals"),
		Resources: &[]*string{arn("thing", "*")},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeCertificate", "iot:UpdateCertificate", "iot:AttachPolicy"),
		Resources: &[]*string{arn("cert", "*")},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:GetPolicy"), Resources: &[]*string{arn("policy", policies.JITRPolicyName)},
	}))
	iotcert.Acknowledge(role, "AwsSolutions-IAM5",
		"AWS IoT provisions things named by each device certificate's subject and certificates with ids it chooses, so the grants name "+
			"the thing and cert resource types of this account and region",
		nagIoTResource(stack, "thing/*"),
		nagIoTResource(stack, "cert/*"))
	template, _ := json.Marshal(jitpTemplate())
	ca.SetRegistrationConfig(&awsiot.CfnCACertificate_RegistrationConfigProperty{
		TemplateBody: jsii.String(string(template)),
		RoleArn:      role.RoleArn(),
	})
	ca.Node().AddDependency(role, policy)
}

// jitpTemplate is the provisioning template of JITP: thing named by the certificate's CN, the certificate activated,
// jitr-mr-policy attached.
func jitpTemplate() map[string]interface{} {
	return map[string]interface{}{
		"Parameters": map[string]interface{}{
			"AWS::IoT::Certificate::CommonName": map[string]interface{}{"Type": "String"},
			"AWS::IoT::Certificate::Id":         map[string]interface{}{"Type": "String"},
		},
		"Resources": map[string]interface{}{
			"thing": map[string]interface{}{
				"Type":       "AWS::IoT::Thing",
				"Properties": map[string]interface{}{"ThingName": map[string]interface{}{"Ref": "AWS::IoT::Certificate::CommonName"}},
			},
			"certificate": map[string]interface{}{
				"Type": "AWS::IoT::Certificate",
				"Properties": map[string]interface{}{
					"CertificateId": map[string]interface{}{"Ref": "AWS::IoT::Certificate::Id"},
					"Status":        "ACTIVE",
				},
			},
			"policy": map[string]interface{}{
				"Type":       "AWS::IoT::Policy",
				"Properties": map[string]interface{}{"PolicyName": policies.JITRPolicyName},
			},
		},
	}
}

// nagIoTResource is how cdk-nag names an AWS IoT ARN of the stack's account and region in a finding ("appliesTo").
func nagIoTResource(stack awscdk.Stack, resource string) string {
	partition := *stack.Partition()
	if *awscdk.Token_IsUnresolved(partition) {
		partition = "<AWS::Partition>"
	}
	return "Resource::arn:" + partition + ":iot:" + *stack.Region() + ":<AWS::AccountId>:" + resource
}

// sqsAction is a topic-rule action (or error action) that sends to queue with role.
func sqsAction(queue awssqs.IQueue, role awsiam.IRole) *awsiot.CfnTopicRule_ActionProperty {
	return &awsiot.CfnTopicRule_ActionProperty{
		Sqs: &awsiot.CfnTopicRule_SqsActionProperty{QueueUrl: queue.QueueUrl(), RoleArn: role.RoleArn(), UseBase64: jsii.Bool(false)},
	}
}

func newMultiRegionReplica(scope constructs.Construct, p *MultiRegionProps, region string) *MultiRegionReplicaStack {
	stack := multiRegionStack(scope, "IotMultiRegion-Replica-"+region, p.Account, region,
		"Multi-region AWS IoT, replica region "+region+": CA registration, just-in-time registration, registry replay from the primary region")
	s := &MultiRegionReplicaStack{Stack: stack, Region: region}
	enableRegistryEvents(stack, "CA_CERTIFICATE")
	readerLogs := awslogs.NewLogGroup(stack, jsii.String("DeployTimeReadsLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	iotcert.AcknowledgeGuard(readerLogs, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
		"records the deploy-time reads of the CA certificate (public) and the table's stream ARN; no secrets; CloudWatch Logs encrypts it at rest")

	caPEM := jsii.String(string(p.CA.CertificatePEM))
	if len(p.CA.CertificatePEM) == 0 {
		// Read from the primary region at deploy time. The CA's fingerprint is part of the call, so a CA replacement
		// changes this resource's properties and CloudFormation runs the read again.
		paramArn := awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("ssm"), Region: jsii.String(p.PrimaryRegion),
			Resource: jsii.String("parameter"), ResourceName: jsii.String(strings.TrimPrefix(CACertificateParameter, "/"))}, stack)
		call := &customresources.AwsSdkCall{
			Service: jsii.String("SSM"), Action: jsii.String("GetParameter"), Region: jsii.String(p.PrimaryRegion),
			Parameters:         map[string]interface{}{"Name": CACertificateParameter},
			PhysicalResourceId: customresources.PhysicalResourceId_Of(jsii.String("ca-certificate-" + p.caFingerprint())),
			OutputPaths:        jsii.Strings("Parameter.Value"),
		}
		reader := customresources.NewAwsCustomResource(stack, jsii.String("CACertificateReader"), &customresources.AwsCustomResourceProps{
			OnCreate: call, OnUpdate: call,
			Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("ssm:GetParameter"), Resources: &[]*string{paramArn}}),
			}),
			InstallLatestAwsSdk: jsii.Bool(false),
			LogGroup:            readerLogs,
		})
		caPEM = reader.GetResponseField(jsii.String("Parameter.Value"))
	}
	s.regionalParts = defineRegionalParts(stack, p, caPEM)

	// The replica's stream ARN: TableV2.replica(region).tableStreamArn is only .../stream/*, so read LatestStreamArn
	// from DescribeTable in this region, on create and on every update.
	tableArn := awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("dynamodb"), Resource: jsii.String("table"),
		ResourceName: jsii.String(ProvisioningTableName)}, stack)
	describe := &customresources.AwsSdkCall{
		Service: jsii.String("DynamoDB"), Action: jsii.String("DescribeTable"),
		Parameters:         map[string]interface{}{"TableName": ProvisioningTableName},
		PhysicalResourceId: customresources.PhysicalResourceId_Of(jsii.String(ProvisioningTableName + "-stream-" + strings.Join(append([]string{p.PrimaryRegion}, p.ReplicaRegions...), "-"))),
		OutputPaths:        jsii.Strings("Table.LatestStreamArn"),
	}
	stream := customresources.NewAwsCustomResource(stack, jsii.String("TableStreamReader"), &customresources.AwsCustomResourceProps{
		OnCreate: describe, OnUpdate: describe,
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("dynamodb:DescribeTable"), Resources: &[]*string{tableArn}}),
		}),
		InstallLatestAwsSdk: jsii.Bool(false),
		LogGroup:            readerLogs,
	})
	s.StreamArn = stream.GetResponseField(jsii.String("Table.LatestStreamArn"))
	s.Table = awsdynamodb.TableV2_FromTableAttributes(stack, jsii.String("ProvisioningTableReplica"), &awsdynamodb.TableAttributesV2{
		TableName: jsii.String(ProvisioningTableName), TableStreamArn: s.StreamArn,
	})
	acknowledgeAwsCustomResourceFunction(stack)

	// The republisher of cross-region messages, subscribed to the primary's topic (a cross-region subscription).
	topicArn := awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("sns"), Region: jsii.String(p.PrimaryRegion),
		Resource: jsii.String(CrossRegionTopicName)}, stack)
	s.CrossRegion = iotcert.NewGoFunction(stack, "CrossRegionFunction", &iotcert.GoFunctionProps{
		Handler:     "crossregion",
		Description: "Republishes the primary region's cmd/+/cross/region messages in this region",
		Environment: map[string]*string{"TOPIC_FILTER": jsii.String(CrossRegionTopicFilter), "SOURCE_TOPIC_ARN": topicArn},
		OnFailure:   true,
	})
	s.CrossRegion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:Publish"),
		Resources: &[]*string{iotArn(stack, "topic", "cmd/*/cross/region")},
	}))
	iotcert.Acknowledge(s.CrossRegion.Role, "AwsSolutions-IAM5",
		"the function republishes on cmd/<thing>/cross/region for any thing of the fleet: the grant names that topic pattern alone",
		nagIoTResource(stack, "topic/cmd/*/cross/region"))
	topic := awssns.Topic_FromTopicArn(stack, jsii.String("CrossRegionTopic"), topicArn)
	topic.AddSubscription(awssnssubscriptions.NewLambdaSubscription(s.CrossRegion.Function, &awssnssubscriptions.LambdaSubscriptionProps{
		DeadLetterQueue: s.CrossRegion.DeadLetters,
	}))

	// Registry replay from the primary: stream mapping, trigger, state machine with its dead-letter path, reconciler.
	s.Replication = NewReplication(stack, "Replication", &ReplicationProps{
		StreamArn:       s.StreamArn,
		TableName:       ProvisioningTableName,
		PrimaryRegion:   p.PrimaryRegion,
		JITRPolicyName:  policies.JITRPolicyName,
		CACertificateID: s.CACertificate.AttrId(),
	})

	// The replay's alarms (a record in a dead-letter queue, registry drift found by the reconciler) notify this topic;
	// operators subscribe to it (AlarmTopicArn).
	alarms := awssns.NewTopic(stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		MasterKey:  awskms.Alias_FromAliasName(stack, jsii.String("AlarmTopicKey"), jsii.String("alias/aws/sns")),
		EnforceSSL: jsii.Bool(true),
	})
	for _, a := range []awscloudwatch.Alarm{s.Replication.DeadLetterAlarm, s.Replication.Reconciler.DriftAlarm, s.Replication.RefusedAlarm} {
		if a != nil {
			a.AddAlarmAction(awscloudwatchactions.NewSnsAction(alarms))
		}
	}

	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: v, Description: jsii.String(desc)})
	}
	out("AlarmTopicArn", "SNS topic of this region's replay alarms (dead letters, registry drift): subscribe to it", alarms.TopicArn())
	out("SFNThingCrudLambdaFunctionName", "Name of the function that replays thing events", s.Replication.ThingCrud.Function.FunctionName())
	out("SFNThingTypeCrudLambdaFunctionName", "Name of the function that replays thing-type events", s.Replication.ThingTypeCrud.Function.FunctionName())
	out("SFNThingGroupCrudLambdaFunctionName", "Name of the function that replays thing-group events", s.Replication.ThingGroupCrud.Function.FunctionName())
	out("StateMachineARN", "ARN of the replay state machine", s.Replication.StateMachine.StateMachineArn())
	out("ReplayDeadLetterQueueUrl", "Registry events the state machine could not apply, with their content", s.Replication.DeadLetters.QueueUrl())
	out("ReconcilerFunctionName", "Name of the function that compares this region with the primary and repairs the drift (daily, or invoke it)", s.Replication.Reconciler.Function.Function.FunctionName())
	out("CrossRegionLambdaFunctionArn", "Arn of the cross region Lambda function which subscribes to SNS", s.CrossRegion.Function.FunctionArn())
	out("ProvisioningTableName", "This region's replica of the registry-event table", jsii.String(ProvisioningTableName))
	out("ProvisioningTableStreamArn", "Stream of this region's replica, read at deploy time", s.StreamArn)
	iotcert.ScopeServicePermissions(stack)
	return s
}

// multiRegionPropsFromContext reads the multi-region context keys. ca_certificate_file and jitr_policy_file are read
// here, relative to the working directory (the project root under cdk).
func multiRegionPropsFromContext(ctx selection.Lookup) (*MultiRegionProps, error) {
	p := &MultiRegionProps{
		PrimaryRegion:    optString(ctx, ctxPrimaryRegion, DefaultPrimaryRegion),
		Provisioning:     strings.ToLower(optString(ctx, ctxProvisioning, ProvisioningJITR)),
		ThingNamePattern: optString(ctx, ctxJITRThingNamePattern, ""),
		CA: CAOptions{
			KeyAlgorithm: optString(ctx, ctxCAKeyAlgorithm, DefaultCAKeyAlgorithm),
			Subject:      optString(ctx, ctxCASubject, DefaultCASubject),
		},
	}
	if v := optString(ctx, ctxReplicaRegions, ""); v != "" {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r == "" {
				return nil, fmt.Errorf("context %s: empty region name in %q", ctxReplicaRegions, v)
			}
			p.ReplicaRegions = append(p.ReplicaRegions, r)
		}
	}
	var err error
	if p.CA.ValidityYears, err = optInt(ctx, ctxCAValidityYears, DefaultCAValidityYears, 1, 30); err != nil {
		return nil, err
	}
	if p.ReplicationTTLHours, err = optInt(ctx, ctxReplicationTTLHours, DefaultReplicationTTLHours, 1, 24*35); err != nil {
		return nil, err
	}
	if f := optString(ctx, ctxCACertificateFile, ""); f != "" {
		if p.CA.CertificatePEM, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("context %s: %v", ctxCACertificateFile, err)
		}
		if _, err := ParseCACertificate(p.CA.CertificatePEM); err != nil {
			return nil, fmt.Errorf("context %s: %s: %v", ctxCACertificateFile, f, err)
		}
	}
	if f := optString(ctx, ctxJITRPolicyFile, ""); f != "" {
		if p.PolicyDocument, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("context %s: %v", ctxJITRPolicyFile, err)
		}
		if _, err := policies.Check(p.PolicyDocument, policies.CheckOptions{}); err != nil {
			return nil, fmt.Errorf("context %s: %s: %v", ctxJITRPolicyFile, f, err)
		}
	}
	d := p.withDefaults()
	if err := d.validate(); err != nil {
		return nil, err
	}
	return p, nil
}
