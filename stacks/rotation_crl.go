package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/selection"
)

// Context keys of the rotation stack's host access (what the Roles Anywhere profile vends besides its test role).
const (
	ctxRotationHostRoles    = "rotation_host_roles"
	ctxRotationHostPolicies = "rotation_host_policies"
	// ctxCSRPath is the sample's CSRPath parameter: the sample wrote each host's CSR to that directory; here phase 1
	// prints it to SSM and nothing is written, so the key is refused with that explanation rather than ignored.
	ctxCSRPath = "CSRPath"
)

// crlExpirationDays is the validity of each CRL (its nextUpdate); Private CA writes a new one before then.
const crlExpirationDays = 7

var (
	roleARNRE = regexp.MustCompile(rotation.RoleARNPattern)
	// policyARNRE is an AWS managed policy or a customer managed policy of this account.
	policyARNRE = regexp.MustCompile(`^arn:aws[a-z-]{0,12}:iam::(aws|[0-9]{12}):policy/[A-Za-z0-9+=,.@_/-]{1,512}\z`)
	// tooBroadPolicies would hand every host of the fleet the account.
	tooBroadPolicies = []string{"AdministratorAccess", "PowerUserAccess", "IAMFullAccess"}
)

// splitList reads a comma-separated context value.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// hostAccessFromContext reads the host-access keys and refuses the sample's CSRPath with what replaced it.
func hostAccessFromContext(ctx selection.Lookup, p *RotationStackProps) error {
	if v, ok := ctx(ctxCSRPath); ok {
		return fmt.Errorf("context %s (%q) is the sample's CSR directory and is not used: a host's CSR is printed to SSM by phase 1 "+
			"and never written to disk, so remove it; the sample's %s, %s, %s and %s keep their meaning, except that a directory "+
			"every local user may write (such as /tmp) is refused: leave them unset for %s",
			ctxCSRPath, v, ctxCertPath, ctxKeyPath, ctxCACertPath, ctxSigningHelperPath, DefaultHostDir)
	}
	p.HostRoles = splitList(optString(ctx, ctxRotationHostRoles, ""))
	p.HostPolicies = splitList(optString(ctx, ctxRotationHostPolicies, ""))
	return nil
}

// validateHostAccess checks the role and policy ARNs the profile is to vend.
func (p RotationStackProps) validateHostAccess() error {
	for _, r := range p.HostRoles {
		if !roleARNRE.MatchString(r) {
			return fmt.Errorf("context %s: %q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", ctxRotationHostRoles, r)
		}
	}
	for _, a := range p.HostPolicies {
		if !policyARNRE.MatchString(a) {
			return fmt.Errorf("context %s: %q is not a managed policy ARN (arn:aws:iam::aws:policy/<name> or arn:aws:iam::<account>:policy/<name>)",
				ctxRotationHostPolicies, a)
		}
		for _, broad := range tooBroadPolicies {
			if strings.HasSuffix(a, ":policy/"+broad) {
				return fmt.Errorf("context %s: %q would give every host the account; name a policy with only what the hosts need",
					ctxRotationHostPolicies, a)
			}
		}
	}
	return nil
}

// hostTrust is the trust of the roles this stack makes for hosts: only through this trust anchor, only for
// certificates whose subject CN has the form of an SSM managed-node id.
func (s *RotationStack) hostTrust(actions ...string) *awsiam.PolicyStatementProps {
	return &awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("rolesanywhere.amazonaws.com"), nil)},
		Actions:    jsii.Strings(actions...),
		Conditions: &map[string]interface{}{
			"ArnEquals":  map[string]interface{}{"aws:SourceArn": s.TrustAnchor.AttrTrustAnchorArn()},
			"StringLike": map[string]interface{}{"aws:PrincipalTag/x509Subject/CN": []string{"i-????????", "i-?????????????????", "mi-?????????????????"}},
		},
	}
}

// profileRoles are the roles the profile vends: the test role, the host role made from rotation_host_policies (when
// given) and the roles of rotation_host_roles.
func (s *RotationStack) profileRoles(p *RotationStackProps) *[]interface{} {
	roles := []interface{}{s.Role.RoleArn()}
	if len(p.HostPolicies) > 0 {
		var policies []awsiam.IManagedPolicy
		for i, a := range p.HostPolicies {
			policies = append(policies, awsiam.ManagedPolicy_FromManagedPolicyArn(s.Stack, jsii.String(fmt.Sprintf("HostPolicy%d", i)), jsii.String(a)))
		}
		s.HostRole = awsiam.NewRole(s.Stack, jsii.String("IAMRAHostRole"), &awsiam.RoleProps{
			Description:     jsii.String("What hosts of certificate rotation may do with their certificates (context " + ctxRotationHostPolicies + ")"),
			AssumedBy:       awsiam.NewServicePrincipal(jsii.String("rolesanywhere.amazonaws.com"), &awsiam.ServicePrincipalOpts{Conditions: s.hostTrust().Conditions}),
			ManagedPolicies: &policies,
		})
		s.HostRole.AssumeRolePolicy().AddStatements(awsiam.NewPolicyStatement(s.hostTrust("sts:TagSession", "sts:SetSourceIdentity")))
		iotcert.Acknowledge(s.HostRole, "AwsSolutions-IAM4",
			"the operator names these managed policies in context "+ctxRotationHostPolicies+" for the hosts' own work; the stack refuses administrator-level ones")
		roles = append(roles, s.HostRole.RoleArn())
		awscdk.NewCfnOutput(s.Stack, jsii.String("IAMRAHostRoleARN"), &awscdk.CfnOutputProps{
			Value: s.HostRole.RoleArn(), ExportName: jsii.String("IAMRAHostRoleARN" + p.suffix()),
			Description: jsii.String("Role hosts assume with their certificates (credential_process --role-arn)"),
		})
	}
	for _, r := range p.HostRoles {
		roles = append(roles, r)
	}
	return &roles
}

// eventsPublishRole is the role EventBridge publishes to the topic with: only for rules of this account, and only to
// this topic with its key (the target's grant).
func (s *RotationStack) eventsPublishRole() awsiam.Role {
	role := awsiam.NewRole(s.Stack, jsii.String("ExpiryEventsRole"), &awsiam.RoleProps{
		Description: jsii.String("EventBridge publishes IAM Roles Anywhere expiry notifications to the rotation topic"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": s.Stack.Account()}},
		}),
	})
	return role
}

// defineCRLWrites lets only our CA write the CRL bucket and then turns its CRLs on. The CA's ARN exists only once
// the CA does, and Private CA checks the bucket's policy when CRLs are turned on, so the CA is created without CRLs,
// the policy names it (aws:SourceArn and aws:SourceAccount, as AWS's own example does:
// https://repost.aws/knowledge-center/acm-ca-crl-s3-getbucketacl, and
// https://docs.aws.amazon.com/privateca/latest/userguide/crl-planning.html#s3-policies), and then an
// UpdateCertificateAuthority call turns the CRLs on.
func (s *RotationStack) defineCRLWrites() {
	stack := s.Stack
	s.CRLBucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("acm-pca.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:PutObject", "s3:PutObjectAcl", "s3:GetBucketAcl", "s3:GetBucketLocation"),
		Resources:  &[]*string{s.CRLBucket.BucketArn(), s.CRLBucket.ArnForObjects(jsii.String("*"))},
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account(), "aws:SourceArn": s.CA.AttrArn()},
		},
	}))
	call := &customresources.AwsSdkCall{
		Service: jsii.String("ACMPCA"), Action: jsii.String("UpdateCertificateAuthority"),
		Parameters: map[string]interface{}{
			"CertificateAuthorityArn": s.CA.AttrArn(),
			"RevocationConfiguration": map[string]interface{}{"CrlConfiguration": map[string]interface{}{
				"Enabled": true, "ExpirationInDays": crlExpirationDays, "S3BucketName": s.CRLBucket.BucketName(),
				"S3ObjectAcl": "BUCKET_OWNER_FULL_CONTROL",
			}},
		},
		PhysicalResourceId: customresources.PhysicalResourceId_Of(jsii.String("crl-configuration")),
	}
	logs := awslogs.NewLogGroup(stack, jsii.String("CRLConfigurationLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_YEAR, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	iotcert.AcknowledgeGuard(logs, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
		"records the deploy-time call that turns the CA's CRLs on; no secrets; CloudWatch Logs encrypts it at rest")
	enable := customresources.NewAwsCustomResource(stack, jsii.String("CRLConfiguration"), &customresources.AwsCustomResourceProps{
		OnCreate: call, OnUpdate: call,
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("acm-pca:UpdateCertificateAuthority"), Resources: &[]*string{s.CA.AttrArn()}}),
			// Private CA refuses the call unless its caller may write the bucket too (CreateCertificateAuthority's
			// and UpdateCertificateAuthority's API reference).
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("s3:GetBucketAcl", "s3:GetBucketLocation"), Resources: &[]*string{s.CRLBucket.BucketArn()}}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("s3:PutObject"), Resources: &[]*string{s.CRLBucket.ArnForObjects(jsii.String("crl/*"))}}),
		}),
		InstallLatestAwsSdk: jsii.Bool(false),
		LogGroup:            logs,
	})
	if policy := s.CRLBucket.Policy(); policy != nil {
		enable.Node().AddDependency(policy)
	}
	if act := stack.Node().TryFindChild(jsii.String("PCAActivation")); act != nil {
		enable.Node().AddDependency(act)
	}
	acknowledgeAwsCustomResourceFunction(stack)
	iotcert.Acknowledge(enable, "AwsSolutions-IAM5",
		"the call that turns CRLs on must be allowed to write the CRL objects Private CA writes under crl/ of this stack's bucket")
}

// defineCRLState gives the CRL processor what its checks and its lock need: the CA to verify CRLs against, the CRL
// table (one record per trust anchor) and the permission to delete duplicate CRLs; and alarms on refused CRLs.
func (s *RotationStack) defineCRLState(p *RotationStackProps) {
	stack := s.Stack
	s.CRLTable = awsdynamodb.NewTable(stack, jsii.String("CRLStateTable"), &awsdynamodb.TableProps{
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(rotation.AttrCRLAnchor), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Encryption:                       awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey:                    s.Key,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		// The record is rebuilt from IAM Roles Anywhere (the processor adopts the CRL it finds), so nothing is kept.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	fn := s.CRLProcessor
	fn.Function.AddEnvironment(jsii.String(rotation.EnvPCAARN), s.CA.AttrArn(), nil)
	fn.Function.AddEnvironment(jsii.String(rotation.EnvCRLTable), s.CRLTable.TableName(), nil)
	s.CRLTable.Grant(fn.Role, jsii.String("dynamodb:GetItem"), jsii.String("dynamodb:UpdateItem"))
	s.Key.Grant(fn.Role, jsii.String("kms:Decrypt"), jsii.String("kms:Encrypt"), jsii.String("kms:GenerateDataKey"), jsii.String("kms:DescribeKey"))
	fn.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("acm-pca:GetCertificateAuthorityCertificate"), Resources: &[]*string{s.CA.AttrArn()},
	}))
	fn.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("rolesanywhere:DeleteCrl"),
		Resources: &[]*string{stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("rolesanywhere"), Resource: jsii.String("crl"), ResourceName: jsii.String("*")})},
	}))

	label := p.Name
	if label == "" {
		label = "default"
	}
	awslogs.NewMetricFilter(stack, jsii.String("CRLRefusedFilter"), &awslogs.MetricFilterProps{
		LogGroup:        fn.LogGroup,
		FilterPattern:   awslogs.FilterPattern_StringValue(jsii.String("$.event"), jsii.String("="), jsii.String(rotation.CRLRefusedEvent)),
		MetricNamespace: jsii.String(MetricsNamespace),
		MetricName:      jsii.String("CRLRefusals"),
		MetricValue:     jsii.String("1"),
		Dimensions:      &map[string]*string{"Rotation": jsii.String(label)},
		Unit:            awscloudwatch.Unit_COUNT,
	})
	alarm := awscloudwatch.NewAlarm(stack, jsii.String("CRLRefusedAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("A CRL in the CRL bucket was refused (not signed by the CA, not newer than the installed one, " +
			"or past its nextUpdate): IAM Roles Anywhere keeps the previous CRL. Details on the topic and in CRLProcessor's log"),
		Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(MetricsNamespace), MetricName: jsii.String("CRLRefusals"),
			DimensionsMap: &map[string]*string{"Rotation": jsii.String(label)}, Statistic: jsii.String("Sum"), Period: awscdk.Duration_Hours(jsii.Number(1)),
		}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(s.Topic))
}
