package stacks

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/selection"
)

// Context keys of the operations stacks.
const (
	ctxOpsCapabilities = "ops_capabilities"
	ctxOpsAlarmEmail   = "ops_alarm_email"
)

// OpsStackName is the operations stack of the environment-agnostic platform stacks (C, E, F); the multi-region
// stacks' regions get OpsStackName-<region>.
const OpsStackName = "IotCertOps"

// AuditChecks are the Device Defender audit checks the operations stack turns on and audits daily.
var AuditChecks = []string{
	"CA_CERTIFICATE_EXPIRING_CHECK", "CA_CERTIFICATE_KEY_QUALITY_CHECK", "CONFLICTING_CLIENT_IDS_CHECK",
	"DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK",
	"IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
}

// auditRecordPrefix is where the audit custom resource keeps what it changed (lambdas/auditconfig.RecordPrefix).
const auditRecordPrefix = "/iotcert/ops/audit/"

// OpsProps is what the operations stacks are built from: read once from the context before any stack is defined.
type OpsProps struct {
	// Capabilities limits the dashboards and the composite alarms to these capabilities (A to F). Default: every
	// platform capability the app defines.
	Capabilities []metrics.Capability
	// AlarmEmail subscribes an address to the alarm topic.
	AlarmEmail string
}

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$`)

func opsPropsFromContext(ctx selection.Lookup) (*OpsProps, error) {
	p := &OpsProps{AlarmEmail: optString(ctx, ctxOpsAlarmEmail, "")}
	if p.AlarmEmail != "" && !emailRE.MatchString(p.AlarmEmail) {
		return nil, fmt.Errorf("context %s %q is not an e-mail address", ctxOpsAlarmEmail, p.AlarmEmail)
	}
	if v := optString(ctx, ctxOpsCapabilities, ""); v != "" {
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			known := false
			for _, k := range metrics.Capabilities {
				known = known || (string(k) == c && k != metrics.CapOps)
			}
			if !known {
				return nil, fmt.Errorf("context %s: %q is not a capability: give a comma-separated list of A, B, C, D, E, F", ctxOpsCapabilities, c)
			}
			p.Capabilities = append(p.Capabilities, metrics.Capability(c))
		}
	}
	return p, nil
}

// opsGroup is the capability stacks of one region (region "" for the environment-agnostic ones).
type opsGroup struct {
	region  string
	members []awscdk.Stack
}

// stackCapability tells which capability a platform stack belongs to, by the names the app gives its stacks.
func stackCapability(name string) metrics.Capability {
	switch {
	case strings.HasPrefix(name, "CertVending-"):
		return metrics.CapC
	case strings.HasPrefix(name, "IotMultiRegion-"):
		return metrics.CapD
	case name == RotationStackName("") || strings.HasPrefix(name, RotationStackName("")+"-"):
		return metrics.CapE
	case name == DeviceRotationStackName:
		return metrics.CapF
	default:
		return metrics.CapOps
	}
}

// NewOpsStacks defines one operations stack per region in which the app's platform stacks run: IotCertOps for the
// environment-agnostic stacks, IotCertOps-<region> for each other region. Call it after the platform stacks.
func NewOpsStacks(scope constructs.Construct, props *OpsProps) []*OpsStack {
	groups := map[string]*opsGroup{}
	var order []string
	for _, c := range *scope.Node().Children() {
		s, ok := c.(awscdk.Stack)
		if !ok || !*awscdk.Stack_IsStack(c) || strings.HasPrefix(*s.StackName(), OpsStackName) {
			continue
		}
		region := ""
		if !*awscdk.Token_IsUnresolved(s.Region()) {
			region = *s.Region()
		}
		g := groups[region]
		if g == nil {
			g = &opsGroup{region: region}
			groups[region] = g
			order = append(order, region)
		}
		g.members = append(g.members, s)
	}
	sort.Strings(order)
	wanted := map[metrics.Capability]bool{}
	for _, c := range props.Capabilities {
		wanted[c] = true
	}
	var out []*OpsStack
	plainTaken := false
	for _, r := range order {
		g := groups[r]
		watched := len(wanted) == 0
		for _, m := range g.members {
			watched = watched || wanted[stackCapability(*m.StackName())]
		}
		if !watched && (r != "" || !(wanted[metrics.CapA] || wanted[metrics.CapB])) {
			continue // a region none of the named capabilities runs in
		}
		name := OpsStackName
		platform := false // holds a stack deployed to the CLI's region (C, E, F)
		for _, m := range g.members {
			platform = platform || stackCapability(*m.StackName()) != metrics.CapD
		}
		if !platform || plainTaken {
			name += "-" + r
		}
		plainTaken = plainTaken || name == OpsStackName
		out = append(out, NewOpsStack(scope, name, g, props))
	}
	return out
}

// OpsStack is the operations view of one region: dashboard, composite alarm, alarm topic and Device Defender audit.
type OpsStack struct {
	awscdk.Stack
	Dashboard    awscloudwatch.Dashboard
	Healthy      awscloudwatch.CompositeAlarm
	AlarmTopic   awssns.Topic
	AuditTopic   awssns.Topic
	Key          awskms.Key
	AlarmNames   []string // the alarms the composite alarm gathers, in its rule's order
	Capabilities []metrics.Capability
}

// NewOpsStack defines the operations stack of one region group.
func NewOpsStack(scope constructs.Construct, id string, g *opsGroup, props *OpsProps) *OpsStack {
	sp := &awscdk.StackProps{Description: jsii.String("Certificate platform operations: dashboard, composite health alarm, " +
		"Device Defender audit of the account's certificates")}
	if g.region != "" {
		sp.Env = &awscdk.Environment{Region: jsii.String(g.region)}
		if acct := g.members[0].Account(); !*awscdk.Token_IsUnresolved(acct) {
			sp.Env.Account = acct
		}
	}
	stack := awscdk.NewStack(scope, jsii.String(id), sp)
	s := &OpsStack{Stack: stack}

	wanted := map[metrics.Capability]bool{}
	for _, c := range props.Capabilities {
		wanted[c] = true
	}
	var members []awscdk.Stack
	present := map[metrics.Capability]bool{}
	for _, m := range g.members {
		c := stackCapability(*m.StackName())
		if len(wanted) > 0 && !wanted[c] {
			continue
		}
		members = append(members, m)
		present[c] = true
	}
	for c := range wanted {
		if c == metrics.CapA || c == metrics.CapB {
			present[c] = true // their stacks are separate apps: widgets by metric only
		}
	}
	for _, c := range []metrics.Capability{metrics.CapA, metrics.CapB, metrics.CapC, metrics.CapD, metrics.CapE, metrics.CapF} {
		if present[c] {
			s.Capabilities = append(s.Capabilities, c)
		}
	}

	s.Key = awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String(id + ": alarm and audit notifications"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY, // encrypts only notifications in flight
	})
	iotcert.DenyForeignGrants(s.Key)
	s.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"), // in a key policy, "*" is this key
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}},
	}), nil)
	s.AlarmTopic = awssns.NewTopic(stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("certificate platform healthy"), MasterKey: s.Key, EnforceSSL: jsii.Bool(true),
	})
	if props.AlarmEmail != "" {
		awssns.NewSubscription(stack, jsii.String("AlarmEmail"), &awssns.SubscriptionProps{
			Topic: s.AlarmTopic, Protocol: awssns.SubscriptionProtocol_EMAIL, Endpoint: jsii.String(props.AlarmEmail),
		})
	}

	own := s.defineAudit()
	s.defineComposite(members, own)
	s.defineDashboard(g, members)
	iotcert.ScopeServicePermissions(stack)
	return s
}

// capabilityAlarmNames gives every alarm of the member stacks a predictable name (<stack>-<path>) where it has none,
// and returns the names. The operations stack refers to them by name only: no CloudFormation export or import ties
// the stacks together.
func capabilityAlarmNames(members []awscdk.Stack) []string {
	var names []string
	for _, m := range members {
		for _, c := range *m.Node().FindAll(constructs.ConstructOrder_PREORDER) {
			a, ok := c.(awscloudwatch.CfnAlarm)
			if !ok || !*awscdk.CfnResource_IsCfnResource(c) || *a.CfnResourceType() != "AWS::CloudWatch::Alarm" {
				continue
			}
			name := a.AlarmName()
			if name == nil || *awscdk.Token_IsUnresolved(name) {
				name = jsii.String(alarmName(*m.StackName(), *c.Node().Path(), *m.Node().Path()))
				a.SetAlarmName(name)
			}
			names = append(names, *name)
		}
	}
	return names
}

var alarmNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// alarmName is <stack name>-<construct path below the stack>, without the trailing /Resource.
func alarmName(stackName, path, stackPath string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, stackPath), "/")
	rel = strings.TrimSuffix(rel, "/Resource")
	n := stackName + "-" + alarmNameUnsafe.ReplaceAllString(strings.ReplaceAll(rel, "/", "-"), "")
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

// defineComposite gathers the member stacks' alarms and this stack's own under one composite alarm that notifies the
// alarm topic.
func (s *OpsStack) defineComposite(members []awscdk.Stack, own []ownAlarm) {
	names := capabilityAlarmNames(members)
	for _, a := range own {
		names = append(names, a.name)
	}
	s.AlarmNames = names
	if len(names) > 100 {
		panic(fmt.Sprintf("%s: %d alarms, over the 100 a composite alarm's rule may name", *s.StackName(), len(names)))
	}
	rule := make([]string, 0, len(names))
	for _, n := range names {
		rule = append(rule, fmt.Sprintf("ALARM(%q)", n))
	}
	s.Healthy = awscloudwatch.NewCompositeAlarm(s.Stack, jsii.String("CertificatePlatformHealthy"), &awscloudwatch.CompositeAlarmProps{
		CompositeAlarmName: jsii.String(*s.StackName() + "-certificate-platform-healthy"),
		AlarmDescription: jsii.String("certificate platform healthy: in ALARM when any alarm of the certificate capabilities " +
			"in this region is (see the dashboard " + *s.StackName() + ")"),
		AlarmRule: awscloudwatch.AlarmRule_FromString(jsii.String(strings.Join(rule, " OR "))),
	})
	action := awscloudwatchactions.NewSnsAction(s.AlarmTopic)
	s.Healthy.AddAlarmAction(action)
	s.Healthy.AddOkAction(action)
	// The rule names the own alarms by their fixed names: it must wait for them.
	for _, a := range own {
		s.Healthy.Node().AddDependency(a.alarm)
	}
}

// defineAudit defines the Device Defender audit: the audit and notification roles, the custom resource that turns the
// checks on, the daily scheduled audit, the findings topic and the function that counts expiring certificates.
// It returns the stack's own alarms.
func (s *OpsStack) defineAudit() []ownAlarm {
	stack := s.Stack
	iot := awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil)
	sourceAccount := &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}}
	auditRole := awsiam.NewRole(stack, jsii.String("AuditRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewPrincipalWithConditions(iot, sourceAccount),
		Description: jsii.String("Device Defender audit: reads certificates, CA certificates, policies and logging settings"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("service-role/AWSIoTDeviceDefenderAudit")),
		},
	})
	iotcert.Acknowledge(auditRole, "AwsSolutions-IAM4",
		"AWSIoTDeviceDefenderAudit is the policy AWS documents for the audit role: read-only Describe/List/Get actions on the "+
			"resources the checks inspect, kept current by AWS as checks change; a hand-written copy would fall behind",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit")

	s.AuditTopic = awssns.NewTopic(stack, jsii.String("AuditFindingsTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Device Defender audit findings"), MasterKey: s.Key, EnforceSSL: jsii.Bool(true),
	})
	notifyRole := awsiam.NewRole(stack, jsii.String("AuditNotifyRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewPrincipalWithConditions(iot, sourceAccount),
		Description: jsii.String("Device Defender audit: publishes audit notifications to the findings topic"),
	})
	s.AuditTopic.GrantPublish(notifyRole)
	iotcert.Acknowledge(notifyRole, "AwsSolutions-IAM5",
		"publishing to a KMS-encrypted topic needs kms:GenerateDataKey* (its variants) on the topic's key, which the grant names",
		"Action::kms:GenerateDataKey*")

	fn := iotcert.NewGoFunction(stack, "AuditConfigFunction", &iotcert.GoFunctionProps{
		Handler:     "auditconfig",
		Description: "Custom::AuditConfiguration: turns on the audit checks the stack needs, restores what it changed on delete",
		Timeout:     awscdk.Duration_Minutes(jsii.Number(2)),
		UnscopedActions: []string{"iot:DescribeAccountAuditConfiguration", "iot:UpdateAccountAuditConfiguration",
			"iot:DeleteAccountAuditConfiguration"},
	})
	// UpdateAccountAuditConfiguration passes both roles to AWS IoT, and only to it.
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("iam:PassRole"),
		Resources:  &[]*string{auditRole.RoleArn(), notifyRole.RoleArn()},
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"iam:PassedToService": "iot.amazonaws.com"}},
	}))
	records := []*string{
		stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ssm"), Resource: jsii.String("parameter"),
			ResourceName: jsii.String(strings.Trim(auditRecordPrefix, "/"))}),
		stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ssm"), Resource: jsii.String("parameter"),
			ResourceName: jsii.String(strings.Trim(auditRecordPrefix, "/") + "/*")}),
	}
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ssm:GetParameter", "ssm:GetParametersByPath", "ssm:PutParameter", "ssm:DeleteParameter"),
		Resources: &records,
	}))
	iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
		"the audit records of every operations stack of the account live under "+auditRecordPrefix+": each reads the others' "+
			"so it never turns off a check another needs, and hands over the checks it leaves on",
		"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/"+strings.Trim(auditRecordPrefix, "/")+"/*")
	provider := iotcert.NewProvider(stack, "AuditConfigProvider", fn)
	config := awscdk.NewCustomResource(stack, jsii.String("AuditConfiguration"), &awscdk.CustomResourceProps{
		ServiceToken: provider.ServiceToken(),
		ResourceType: jsii.String("Custom::AuditConfiguration"),
		Properties: &map[string]interface{}{
			"RecordName":    auditRecordPrefix + *stack.StackName(),
			"Checks":        AuditChecks,
			"AuditRoleArn":  auditRole.RoleArn(),
			"TopicArn":      s.AuditTopic.TopicArn(),
			"NotifyRoleArn": notifyRole.RoleArn(),
		},
	})

	scheduled := awsiot.NewCfnScheduledAudit(stack, jsii.String("DailyAudit"), &awsiot.CfnScheduledAuditProps{
		ScheduledAuditName: jsii.String(*stack.StackName() + "-daily"),
		Frequency:          jsii.String("DAILY"),
		TargetCheckNames:   jsii.Strings(AuditChecks...),
	})
	// A scheduled audit may name only enabled checks; on delete it goes first, so its checks can be turned off.
	scheduled.Node().AddDependency(config)

	counter := iotcert.NewGoFunction(stack, "AuditFindingsFunction", &iotcert.GoFunctionProps{
		Handler:         "auditfindings",
		Description:     "Counts the certificates the daily audit found expiring (metrics CertificatesExpiring30d and 7d)",
		Timeout:         awscdk.Duration_Minutes(jsii.Number(5)),
		OnFailure:       true,
		Environment:     map[string]*string{"SCHEDULED_AUDIT_NAME": scheduled.ScheduledAuditName()},
		UnscopedActions: []string{"iot:ListAuditTasks", "iot:DescribeAuditTask", "iot:ListAuditFindings"},
	})
	counter.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:DescribeCertificate", "iot:DescribeCACertificate"),
		Resources: &[]*string{
			stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Resource: jsii.String("cert"), ResourceName: jsii.String("*")}),
			stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Resource: jsii.String("cacert"), ResourceName: jsii.String("*")}),
		},
	}))
	iotcert.Acknowledge(counter.Role, "AwsSolutions-IAM5",
		"the audit's findings name any certificate or CA certificate of the account; the function only describes them",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cacert/*")
	// Notifications SNS cannot deliver wait in the function's failure queue, with its failed invocations.
	counter.Function.AddEventSource(awslambdaeventsources.NewSnsEventSource(s.AuditTopic,
		&awslambdaeventsources.SnsEventSourceProps{DeadLetterQueue: counter.DeadLetters}))

	expiring := func(name, kind string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String(name), Statistic: jsii.String("Maximum"),
			DimensionsMap: &map[string]*string{metrics.DimCapability: jsii.String(string(metrics.CapOps)), metrics.DimKind: jsii.String(kind)},
			Period:        awscdk.Duration_Days(jsii.Number(1)),
		})
	}
	soon := awscloudwatch.NewAlarm(stack, jsii.String("CertificatesExpiringSoonAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(*stack.StackName() + "-CertificatesExpiringSoon"),
		AlarmDescription: jsii.String("The daily Device Defender audit found certificates expiring within 7 days"),
		Metric: awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("FILL(d, 0) + FILL(c, 0)"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"d": expiring(metrics.CertificatesExpiring7, "Device"), "c": expiring(metrics.CertificatesExpiring7, "CA")},
			Period: awscdk.Duration_Days(jsii.Number(1)),
		}),
		Threshold: jsii.Number(1), EvaluationPeriods: jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	failing := awscloudwatch.NewAlarm(stack, jsii.String("AuditFindingsErrorsAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(*stack.StackName() + "-AuditFindingsErrors"),
		AlarmDescription: jsii.String("The function that counts the audit's expiring certificates failed: the dashboard's expiry numbers are stale"),
		Metric:           counter.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Hours(jsii.Number(1))}),
		Threshold:        jsii.Number(1), EvaluationPeriods: jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	awscdk.NewCfnOutput(stack, jsii.String("AuditFindingsTopicArn"), &awscdk.CfnOutputProps{
		Value: s.AuditTopic.TopicArn(), Description: jsii.String("Device Defender audit notifications, when the account had no other target"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("AuditChecksEnabledByThisStack"), &awscdk.CfnOutputProps{
		Value: config.GetAttString(jsii.String("EnabledByThisStack")), Description: jsii.String("the checks this stack turned on and turns off on delete"),
	})
	for _, a := range []awscloudwatch.Alarm{soon, failing} {
		iotcert.AcknowledgeGuard(a, "CLOUDWATCH_ALARM_ACTION_CHECK",
			"gathered under the composite alarm, which notifies the alarm topic: one notification per incident, not one per alarm")
	}
	return []ownAlarm{{soon, *stack.StackName() + "-CertificatesExpiringSoon"}, {failing, *stack.StackName() + "-AuditFindingsErrors"}}
}

// ownAlarm is an alarm of the operations stack with the name it is given (the construct's AlarmName is a token).
type ownAlarm struct {
	alarm awscloudwatch.Alarm
	name  string
}

// widgetMetric is a catalogue metric with dimension values, for the dashboard.
func widgetMetric(namespace, name, stat, label string, dims map[string]string) awscloudwatch.Metric {
	if _, ok := metrics.Lookup(namespace, name); !ok {
		panic(fmt.Sprintf("ops: metric %s/%s is not in the metric catalogue (internal/metrics)", namespace, name))
	}
	dm := map[string]*string{}
	for k, v := range dims {
		dm[k] = jsii.String(v)
	}
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(namespace), MetricName: jsii.String(name), Statistic: jsii.String(stat), Label: jsii.String(label),
		DimensionsMap: &dm, Period: awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

func ours(name, stat string, c metrics.Capability, label string) awscloudwatch.Metric {
	return widgetMetric(metrics.Namespace, name, stat, label, map[string]string{metrics.DimCapability: string(c)})
}

func graph(title string, left ...awscloudwatch.IMetric) awscloudwatch.GraphWidget {
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6),
	})
}

// refusedByReason is a SEARCH over the fixed reasons of one capability's refusals.
func refusedByReason(c metrics.Capability) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf(`SEARCH('{%s,%s,%s} MetricName="%s" %s="%s"', 'Sum', 300)`,
			metrics.Namespace, metrics.DimCapability, metrics.DimReason, metrics.Refused, metrics.DimCapability, c)),
		Label:  jsii.String(""),
		Period: awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

// defineDashboard defines the dashboard: widgets only for the capabilities present, each reading metrics by
// namespace and dimension values known at synth.
func (s *OpsStack) defineDashboard(g *opsGroup, members []awscdk.Stack) {
	var rows [][]awscloudwatch.IWidget
	caps := s.Capabilities
	var issued, refused []awscloudwatch.IMetric
	for _, c := range caps {
		issued = append(issued, ours(metrics.CertificatesIssued, "Sum", c, "capability "+string(c)))
		refused = append(refused, ours(metrics.Refused, "Sum", c, "capability "+string(c)))
	}
	if len(caps) > 0 {
		rows = append(rows, []awscloudwatch.IWidget{graph("Certificates issued per capability", issued...),
			graph("Refused per capability", refused...)})
	}
	var vendingAPIs, rotations []string
	var replicas []string
	primary := false
	for _, m := range members {
		name := *m.StackName()
		switch stackCapability(name) {
		case metrics.CapC:
			if api, ok := m.Node().TryFindChild(jsii.String("Api")).(awsapigateway.RestApi); ok {
				vendingAPIs = append(vendingAPIs, *api.RestApiName())
			}
		case metrics.CapE:
			label := strings.TrimPrefix(strings.TrimPrefix(name, RotationStackName("")), "-")
			if label == "" {
				label = "default"
			}
			rotations = append(rotations, label)
		case metrics.CapD:
			primary = primary || name == "IotMultiRegion-Primary"
		}
	}
	if primary {
		for _, c := range *s.Node().Scope().Node().Children() {
			if st, ok := c.(awscdk.Stack); ok && *awscdk.Stack_IsStack(c) && strings.HasPrefix(*st.StackName(), "IotMultiRegion-Replica-") {
				replicas = append(replicas, strings.TrimPrefix(*st.StackName(), "IotMultiRegion-Replica-"))
			}
		}
	}
	has := func(c metrics.Capability) bool {
		for _, x := range caps {
			if x == c {
				return true
			}
		}
		return false
	}
	if has(metrics.CapC) {
		reg := []awscloudwatch.IMetric{ours(metrics.VendingRegistrations, "Sum", metrics.CapC, "registrations"), refusedByReason(metrics.CapC)}
		var api []awscloudwatch.IMetric
		for _, n := range vendingAPIs {
			api = append(api,
				widgetMetric("AWS/ApiGateway", "4XXError", "Sum", "4xx "+n, map[string]string{"ApiName": n}),
				widgetMetric("AWS/ApiGateway", "5XXError", "Sum", "5xx "+n, map[string]string{"ApiName": n}))
		}
		row := []awscloudwatch.IWidget{graph("Vending registrations and refusals by reason", reg...)}
		if len(api) > 0 {
			row = append(row, graph("Vending API 4xx (including 429 throttles) and 5xx", api...))
		}
		rows = append(rows, row)
	}
	if has(metrics.CapD) && g.region != "" {
		row := []awscloudwatch.IWidget{
			graph("JITR refusals by reason", refusedByReason(metrics.CapD)),
			graph("JITR latency (registration to activation)",
				ours(metrics.JITRLatency, "p50", metrics.CapD, "p50"), ours(metrics.JITRLatency, "p99", metrics.CapD, "p99")),
		}
		lag := []awscloudwatch.IMetric{ours(metrics.ReplicationLag, "p99", metrics.CapD, "replay lag p99")}
		for _, r := range replicas {
			lag = append(lag, widgetMetric("AWS/DynamoDB", "ReplicationLatency", "Average", "table to "+r,
				map[string]string{"TableName": ProvisioningTableName, "ReceivingRegion": r}))
		}
		row = append(row, graph("Replication lag", lag...))
		rows = append(rows, row, []awscloudwatch.IWidget{graph("Registry replay: applied, stale, dead letters, drift",
			ours(metrics.ReplayApplied, "Sum", metrics.CapD, "applied"), ours(metrics.ReplayStale, "Sum", metrics.CapD, "stale"),
			ours(metrics.ReplayDeadLettered, "Sum", metrics.CapD, "dead-lettered"),
			widgetMetric(ReconcilerMetricNamespace, ReconcilerMetricName, "Maximum", "drift repaired", map[string]string{"Region": g.region}))})
	}
	if has(metrics.CapE) {
		var ca []awscloudwatch.IMetric
		var stale []awscloudwatch.IMetric
		for _, r := range rotations {
			dims := map[string]string{"Rotation": r}
			ca = append(ca, widgetMetric(MetricsNamespace, "CADaysLeft", "Minimum", "CA days left "+r, dims))
			stale = append(stale, widgetMetric(MetricsNamespace, "StaleHosts", "Maximum", "stale hosts "+r, dims))
			ca = append(ca, widgetMetric(MetricsNamespace, "IssuedCertificates", "Maximum", "issued by the CA "+r, dims))
		}
		rows = append(rows, []awscloudwatch.IWidget{
			graph("Host rotations", ours(metrics.RotationSucceeded, "Sum", metrics.CapE, "succeeded"),
				ours(metrics.RotationFailed, "Sum", metrics.CapE, "failed"), refusedByReason(metrics.CapE)),
			graph("Stale hosts", stale...),
			graph("Private CA: certificates issued (quota) and days to CA expiry", ca...),
		})
	}
	if has(metrics.CapF) {
		rows = append(rows, []awscloudwatch.IWidget{graph("Device rotations",
			ours(metrics.RotationSucceeded, "Sum", metrics.CapF, "succeeded"), ours(metrics.RotationFailed, "Sum", metrics.CapF, "failed"))})
	}
	expiry := func(name, kind string) awscloudwatch.IMetric {
		return widgetMetric(metrics.Namespace, name, "Maximum", strings.TrimPrefix(name, "CertificatesExpiring")+" "+kind,
			map[string]string{metrics.DimCapability: string(metrics.CapOps), metrics.DimKind: kind})
	}
	rows = append(rows, []awscloudwatch.IWidget{
		graph("Certificates expiring within 30 and 7 days (daily audit)",
			expiry(metrics.CertificatesExpiring, "Device"), expiry(metrics.CertificatesExpiring, "CA"),
			expiry(metrics.CertificatesExpiring7, "Device"), expiry(metrics.CertificatesExpiring7, "CA")),
		graph("Lambda errors and throttles (every function of the region)",
			widgetMetric("AWS/Lambda", "Errors", "Sum", "errors", nil), widgetMetric("AWS/Lambda", "Throttles", "Sum", "throttles", nil)),
		awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String("certificate platform healthy"), Alarms: &[]interfacesawscloudwatch.IAlarmRef{s.Healthy},
			Width: jsii.Number(8), Height: jsii.Number(6),
		}),
	})
	widgets := make([]*[]awscloudwatch.IWidget, len(rows))
	for i := range rows {
		widgets[i] = &rows[i]
	}
	s.Dashboard = awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: s.StackName(),
		Widgets:       &widgets,
	})
}
