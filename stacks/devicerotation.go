package stacks

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsacmpca"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/devrot"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/selection"
)

// DeviceRotationStackName is the stack of capability F.
const DeviceRotationStackName = "IotDeviceRotation"

// Context keys of device-certificate rotation.
const (
	ctxDevRotRollout  = "device_rotation_rollout_per_minute"
	ctxDevRotAbortPct = "device_rotation_abort_percent"
	ctxDevRotAbortMin = "device_rotation_abort_min_executed"
	ctxDevRotTimeout  = "device_rotation_timeout_minutes"
	ctxDevRotGrace    = "device_rotation_grace_days"
)

// Defaults, each within AWS IoT's limits:
//   - rollout: maximumPerMinute is 1 to 1000 (https://docs.aws.amazon.com/iot/latest/developerguide/job-configurations-api.html).
//     100 a minute keeps one rotation's control-plane calls (about five DescribeCertificate, two UpdateCertificate,
//     one CreateCertificateFromCsr or IssueCertificate) under the default rates of 10 per second for
//     DescribeCertificate and UpdateCertificate and 15 for CreateCertificateFromCsr (AWS IoT Core quotas,
//     https://docs.aws.amazon.com/general/latest/gr/iot-core.html) and AWS Private CA's 25 IssueCertificate per second.
//   - abort: thresholdPercentage (0, 100] after minNumberOfExecutedThings ≥ 1
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_AbortCriteria.html).
//   - in-progress timeout: 1 to 10080 minutes (https://docs.aws.amazon.com/iot/latest/apireference/API_TimeoutConfig.html).
const (
	DefaultDevRotRolloutPerMinute = 100
	DefaultDevRotAbortPercent     = 10
	DefaultDevRotAbortMinExecuted = 20
	DefaultDevRotTimeoutMinutes   = 60
	DefaultDevRotGraceDays        = 7
)

// DeviceRotationStackProps configures NewDeviceRotationStack.
type DeviceRotationStackProps struct {
	awscdk.StackProps
	// RolloutPerMinute of a rotation job's executions. Default: DefaultDevRotRolloutPerMinute.
	RolloutPerMinute int
	// AbortPercent of failed executions (after AbortMinExecuted) that cancels the job. Default 10 after 20.
	AbortPercent     int
	AbortMinExecuted int
	// TimeoutMinutes a job execution may stay IN_PROGRESS. Default 60.
	TimeoutMinutes int
	// GraceDays between the confirmation and the revocation of the old certificate. Default 7.
	GraceDays int
	// PrivateCA and CACertificateID (the multi-region primary's): devices whose certificate the CA issued get the new
	// one from it. Both nil: only AWS IoT-issued certificates (per-thing stacks, vending) are rotated.
	PrivateCA       awsacmpca.CfnCertificateAuthority
	CACertificateID *string
}

func (p DeviceRotationStackProps) withDefaults() DeviceRotationStackProps {
	if p.RolloutPerMinute == 0 {
		p.RolloutPerMinute = DefaultDevRotRolloutPerMinute
	}
	if p.AbortPercent == 0 {
		p.AbortPercent = DefaultDevRotAbortPercent
	}
	if p.AbortMinExecuted == 0 {
		p.AbortMinExecuted = DefaultDevRotAbortMinExecuted
	}
	if p.TimeoutMinutes == 0 {
		p.TimeoutMinutes = DefaultDevRotTimeoutMinutes
	}
	if p.GraceDays == 0 {
		p.GraceDays = DefaultDevRotGraceDays
	}
	return p
}

func (p DeviceRotationStackProps) validate() error {
	switch {
	case p.RolloutPerMinute < 1 || p.RolloutPerMinute > 1000:
		return fmt.Errorf("iotcert: %s must be 1 to 1000 (AWS IoT's maximumPerMinute), got %d", ctxDevRotRollout, p.RolloutPerMinute)
	case p.AbortPercent < 1 || p.AbortPercent > 100:
		return fmt.Errorf("iotcert: %s must be 1 to 100, got %d", ctxDevRotAbortPct, p.AbortPercent)
	case p.AbortMinExecuted < 1:
		return fmt.Errorf("iotcert: %s must be at least 1, got %d", ctxDevRotAbortMin, p.AbortMinExecuted)
	case p.TimeoutMinutes < 1 || p.TimeoutMinutes > 10080:
		return fmt.Errorf("iotcert: %s must be 1 to 10080 (AWS IoT's in-progress timeout), got %d", ctxDevRotTimeout, p.TimeoutMinutes)
	case p.GraceDays < 1 || p.GraceDays > 365:
		return fmt.Errorf("iotcert: %s must be 1 to 365, got %d", ctxDevRotGrace, p.GraceDays)
	}
	if (p.PrivateCA == nil) != (p.CACertificateID == nil) {
		return fmt.Errorf("iotcert: device rotation needs both the Private CA and its CA certificate id, or neither")
	}
	return nil
}

// devRotPropsFromContext reads the rotation keys; a bad value is an error naming the key.
func devRotPropsFromContext(ctx selection.Lookup) (DeviceRotationStackProps, error) {
	var p DeviceRotationStackProps
	for _, f := range []struct {
		key         string
		dst         *int
		def, lo, hi int
	}{
		{ctxDevRotRollout, &p.RolloutPerMinute, DefaultDevRotRolloutPerMinute, 1, 1000},
		{ctxDevRotAbortPct, &p.AbortPercent, DefaultDevRotAbortPercent, 1, 100},
		{ctxDevRotAbortMin, &p.AbortMinExecuted, DefaultDevRotAbortMinExecuted, 1, 1000000},
		{ctxDevRotTimeout, &p.TimeoutMinutes, DefaultDevRotTimeoutMinutes, 1, 10080},
		{ctxDevRotGrace, &p.GraceDays, DefaultDevRotGraceDays, 1, 365},
	} {
		n, err := optInt(ctx, f.key, f.def, f.lo, f.hi)
		if err != nil {
			return p, err
		}
		*f.dst = n
	}
	return p, p.withDefaults().validate()
}

// defineDeviceRotation defines the device-rotation stack beside the multi-region primary (same account and region),
// rotating certificates of its Private CA and those AWS IoT issued.
func defineDeviceRotation(app awscdk.App, primary *MultiRegionPrimaryStack, p DeviceRotationStackProps) {
	p.Env = &awscdk.Environment{Region: primary.Region()}
	if acct := primary.Account(); !*awscdk.Token_IsUnresolved(acct) {
		p.Env.Account = acct
	}
	if primary.PrivateCA != nil {
		p.PrivateCA, p.CACertificateID = primary.PrivateCA, primary.CACertificate.AttrId()
	}
	NewDeviceRotationStack(app, DeviceRotationStackName, &p)
}

// DeviceRotationStack is capability F: device-certificate rotation over AWS IoT Jobs.
type DeviceRotationStack struct {
	awscdk.Stack
	Template   awsiot.CfnJobTemplate
	Key        awskms.Key
	Table      awsdynamodb.Table
	Signer     *iotcert.GoFunction
	Completion *iotcert.GoFunction
	Due        *iotcert.GoFunction
}

// NewDeviceRotationStack defines the job template, the rotation table, the signer and completion functions, the
// three topic rules that invoke them (CSR and confirmation with principal(), job execution events), the hourly
// sweep and the due function on its schedule.
func NewDeviceRotationStack(scope constructs.Construct, id string, props *DeviceRotationStackProps) *DeviceRotationStack {
	p := props.withDefaults()
	if err := p.validate(); err != nil {
		panic(err.Error())
	}
	sp := p.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Device-certificate rotation over AWS IoT Jobs: the key made on the device, the new certificate proven by a connection before the old one is retired")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	s := &DeviceRotationStack{Stack: stack}
	arn := func(resource, name string) *string { return iotArn(stack, resource, name) }

	// The template's id is the contract of cmd/device-rotation and the functions (JOB_TEMPLATE_ARN).
	s.Template = awsiot.NewCfnJobTemplate(stack, jsii.String("RotationJobTemplate"), &awsiot.CfnJobTemplateProps{
		JobTemplateId: jsii.String(wire.TemplateID),
		Description:   jsii.String("Rotate the device certificate: new key on the device, CSR on the rotation topics, new certificate proven before the old one is retired"),
		Document:      jsii.String(wire.JobDocumentJSON()),
		// These properties are untyped JSON in the L1 resource: CloudFormation's own (PascalCase) names, written out.
		JobExecutionsRolloutConfig: map[string]interface{}{"MaximumPerMinute": p.RolloutPerMinute},
		AbortConfig: map[string]interface{}{"CriteriaList": []interface{}{map[string]interface{}{
			"Action": "CANCEL", "FailureType": "ALL", "MinNumberOfExecutedThings": p.AbortMinExecuted, "ThresholdPercentage": p.AbortPercent,
		}}},
		TimeoutConfig: map[string]interface{}{"InProgressTimeoutInMinutes": p.TimeoutMinutes},
	})

	// A customer-managed key, as the other tables of the app (AWS Control Tower's DynamoDB KMS check); a Table, not a
	// TableV2, which cannot render one in an environment-agnostic stack.
	s.Key = awskms.NewKey(stack, jsii.String("TableKey"), &awskms.KeyProps{
		Description:       jsii.String("Device certificate rotation: the rotation table"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	iotcert.DenyForeignGrants(s.Key) // only DynamoDB creates grants on it (CT.KMS.PR.3)
	s.Table = awsdynamodb.NewTable(stack, jsii.String("RotationTable"), &awsdynamodb.TableProps{
		Encryption:                       awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey:                    s.Key,
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(devrot.AttrThing), Type: awsdynamodb.AttributeType_STRING},
		SortKey:                          &awsdynamodb.Attribute{Name: jsii.String(devrot.AttrJob), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN,
	})
	s.Table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(devrot.DueIndex),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(devrot.AttrOpen), Type: awsdynamodb.AttributeType_STRING},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String(devrot.AttrDueAt), Type: awsdynamodb.AttributeType_NUMBER},
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})

	env := map[string]*string{
		devrot.EnvTable:          s.Table.TableName(),
		devrot.EnvTemplateARN:    arn("jobtemplate", wire.TemplateID),
		devrot.EnvConfirmTimeout: jsii.String(strconv.Itoa(p.TimeoutMinutes*60 + 600)),
		devrot.EnvGrace:          jsii.String(strconv.Itoa(p.GraceDays * 86400)),
	}
	if p.PrivateCA != nil {
		env[devrot.EnvPCAARN] = p.PrivateCA.AttrArn()
		env[devrot.EnvCACertificateID] = p.CACertificateID
	}
	s.Signer = iotcert.NewGoFunction(stack, "SignerFunction", &iotcert.GoFunctionProps{
		Handler:         "devrotsigner",
		Description:     "Device rotation: checks the job, the sender and the CSR, issues the new certificate and publishes it to the device",
		Timeout:         awscdk.Duration_Seconds(jsii.Number(30)),
		Environment:     env,
		OnFailure:       true,
		UnscopedActions: []string{"iot:CreateCertificateFromCsr"},
	})
	s.Completion = iotcert.NewGoFunction(stack, "CompletionFunction", &iotcert.GoFunctionProps{
		Handler:     "devrotconfirm",
		Description: "Device rotation: completes on a confirmation by the new certificate, undoes failed jobs, retires old certificates after the grace period",
		Timeout:     awscdk.Duration_Minutes(jsii.Number(5)),
		Environment: env,
		OnFailure:   true,
		// RegisterCertificate (status REVOKED) keeps an aborted Private CA certificate from being auto-registered;
		// like CreateCertificateFromCsr, the certificate it registers has no ARN before the call.
		UnscopedActions: []string{"iot:RegisterCertificate"},
	})

	// Grants, each named by ARN; the resource types the functions reach by a device's own name or id are the only
	// wildcards, and each function checks the thing and certificate itself.
	jobs := []*string{arn("job", wire.JobIDPrefix+"*"), arn("thing", "*")}
	certs, things := arn("cert", "*"), arn("thing", "*")
	certTopic := arn("topic", "iotcert/*/rotation/certificate")
	for _, fn := range []*iotcert.GoFunction{s.Signer, s.Completion} {
		fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("iot:DescribeJob", "iot:DescribeJobExecution"), Resources: &jobs,
		}))
		fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("iot:DescribeCertificate", "iot:UpdateCertificate", "iot:DeleteCertificate", "iot:ListPrincipalThings", "iot:ListAttachedPolicies"),
			Resources: &[]*string{certs},
		}))
		fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("iot:Publish"), Resources: &[]*string{certTopic},
		}))
	}
	// Written out rather than Table.Grant, which would add every index (index/*): the completion function queries one.
	s.Signer.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), Resources: &[]*string{s.Table.TableArn()},
	}))
	s.Completion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), Resources: &[]*string{s.Table.TableArn()},
	}))
	for _, fn := range []*iotcert.GoFunction{s.Signer, s.Completion} {
		s.Key.Grant(fn.Role, jsii.String("kms:Decrypt"), jsii.String("kms:DescribeKey"), jsii.String("kms:Encrypt"), jsii.String("kms:GenerateDataKey"))
	}
	s.Completion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:Query"),
		Resources: &[]*string{awscdk.Fn_Join(jsii.String(""), &[]*string{s.Table.TableArn(), jsii.String("/index/" + devrot.DueIndex)})},
	}))
	s.Signer.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:AttachPolicy"), Resources: &[]*string{certs},
	}))
	s.Signer.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:AttachThingPrincipal"), Resources: &[]*string{things},
	}))
	s.Completion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:DetachPolicy"), Resources: &[]*string{certs},
	}))
	s.Completion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:DetachThingPrincipal"), Resources: &[]*string{things},
	}))
	s.Completion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:CancelJobExecution"), Resources: &jobs,
	}))
	if p.PrivateCA != nil {
		s.Signer.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("acm-pca:IssueCertificate", "acm-pca:GetCertificate"), Resources: &[]*string{p.PrivateCA.AttrArn()},
		}))
		s.Completion.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("acm-pca:RevokeCertificate"), Resources: &[]*string{p.PrivateCA.AttrArn()},
		}))
	}
	for _, fn := range []*iotcert.GoFunction{s.Signer, s.Completion} {
		iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
			"rotation reaches the certificates and things of whichever device sends a CSR or confirmation: the grants name the cert and thing "+
				"resource types of this account and region, the rotation jobs by their id prefix, and the rotation certificate topics; "+
				"the functions check that the certificate is attached to the thing and the job is the thing's own",
			nagIoTResource(stack, "cert/*"), nagIoTResource(stack, "thing/*"), nagIoTResource(stack, "job/"+wire.JobIDPrefix+"*"),
			nagIoTResource(stack, "topic/iotcert/*/rotation/certificate"))
	}

	// Topic rules: the functions are invoked asynchronously; failures and rule errors go to the function's queue.
	ruleRole := awsiam.NewRole(stack, jsii.String("RuleErrorRole"), &awsiam.RoleProps{
		Description: jsii.String("Sends the rotation rules' errors to the functions' dead-letter queues"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()}},
		}),
	})
	rule := func(id, description, sql string, fn *iotcert.GoFunction) {
		fn.DeadLetters.GrantSendMessages(ruleRole)
		r := awsiot.NewCfnTopicRule(stack, jsii.String(id), &awsiot.CfnTopicRuleProps{
			TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
				Description: jsii.String(description), Sql: jsii.String(sql), AwsIotSqlVersion: jsii.String("2016-03-23"),
				RuleDisabled: jsii.Bool(false),
				Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
					Lambda: &awsiot.CfnTopicRule_LambdaActionProperty{FunctionArn: fn.Function.FunctionArn()},
				}},
				ErrorAction: sqsAction(fn.DeadLetters, ruleRole),
			},
		})
		fn.Function.AddPermission(jsii.String("InvokeBy"+id), &awslambda.Permission{
			Principal: awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil), SourceArn: r.AttrArn(),
		})
	}
	rule("CSRRule", "Device CSRs with the sending certificate (principal()) to the signer", wire.CSRRuleSQL, s.Signer)
	rule("ConfirmRule", "Rotation confirmations with the sending certificate (principal()) to the completion function", wire.ConfirmRuleSQL, s.Completion)
	rule("JobEventsRule", "Job execution events of rotation jobs to the completion function", wire.JobEventsRuleSQL, s.Completion)
	enableRegistryEvents(stack, "JOB_EXECUTION") // job execution events are off by default

	sweep := awsevents.NewRule(stack, jsii.String("SweepSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Hourly: rotations past their confirmation timeout or grace period"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(1))),
	})
	sweep.AddTarget(awseventstargets.NewLambdaFunction(s.Completion.Function, &awseventstargets.LambdaFunctionProps{
		Event:           awsevents.RuleTargetInput_FromObject(map[string]interface{}{"sweep": true}),
		DeadLetterQueue: s.Completion.DeadLetters, RetryAttempts: jsii.Number(2),
	}))

	s.defineDue(p)

	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: v, Description: jsii.String(desc)})
	}
	out("JobTemplateArn", "The rotation job template (device-rotation start)", s.Template.AttrArn())
	out("RotationTableName", "One item per rotation: thing, job, certificates, status", s.Table.TableName())
	out("SignerDeadLetterQueueUrl", "CSR events the signer could not process", s.Signer.DeadLetters.QueueUrl())
	out("CompletionDeadLetterQueueUrl", "Confirmations, job events and sweeps that failed", s.Completion.DeadLetters.QueueUrl())
	out("DueDeadLetterQueueUrl", "Scheduled runs of the due function that failed", s.Due.DeadLetters.QueueUrl())
	iotcert.ScopeServicePermissions(stack)
	return s
}

// DueSchedule is how often the due function runs. A scheduled audit's start time is chosen by AWS ("The start time
// of each audit is determined by the system", https://docs.aws.amazon.com/iot/latest/apireference/API_CreateScheduledAudit.html),
// so no fixed time of day follows the daily audit; every six hours, a run acts on a new audit run within six hours of
// its completion, and the runs in between find the same task and start nothing (one job id per audit run).
const DueSchedule = 6

// defineDue defines the due function: on a schedule, the newest completed scheduled audit run's expiring device
// certificates become the thing group iotcert-rotation-due and a rotation job on it.
func (s *DeviceRotationStack) defineDue(p DeviceRotationStackProps) {
	stack := s.Stack
	arn := func(resource, name string) *string { return iotArn(stack, resource, name) }
	s.Due = iotcert.NewGoFunction(stack, "DueFunction", &iotcert.GoFunctionProps{
		Handler:     "devrotdue",
		Description: "Device rotation: puts the things of the newest audit's expiring certificates in " + devrot.DueGroup + " and starts a rotation job on it",
		Timeout:     awscdk.Duration_Minutes(jsii.Number(5)),
		Environment: map[string]*string{
			devrot.EnvTemplateARN:  arn("jobtemplate", wire.TemplateID),
			devrot.EnvRollout:      jsii.String(strconv.Itoa(p.RolloutPerMinute)),
			devrot.EnvAbortPercent: jsii.String(strconv.Itoa(p.AbortPercent)),
			devrot.EnvAbortMin:     jsii.String(strconv.Itoa(p.AbortMinExecuted)),
			devrot.EnvTimeout:      jsii.String(strconv.Itoa(p.TimeoutMinutes)),
		},
		OnFailure:       true,
		UnscopedActions: []string{"iot:ListAuditTasks", "iot:DescribeAuditTask", "iot:ListAuditFindings", "iot:ListJobs"},
	})
	role := s.Due.Role
	group, certs, things := arn("thinggroup", devrot.DueGroup), arn("cert", "*"), arn("thing", "*")
	dueJobs := arn("job", wire.JobIDPrefix+"due-*")
	grant := func(actions []string, resources ...*string) {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings(actions...), Resources: &resources}))
	}
	grant([]string{"iot:DescribeCertificate", "iot:ListPrincipalThings"}, certs)
	grant([]string{"iot:CreateThingGroup", "iot:DescribeThingGroup", "iot:ListThingsInThingGroup"}, group)
	grant([]string{"iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup"}, group, things)
	grant([]string{"iot:CreateJob"}, dueJobs, group, s.Template.AttrArn())
	iotcert.Acknowledge(role, "AwsSolutions-IAM5",
		"the audit's findings name any certificate of the account and the due group may hold any thing: the function describes "+
			"the certificates and lists their things, adds and removes things only in the group "+devrot.DueGroup+", and creates "+
			"only jobs whose id starts with "+wire.JobIDPrefix+"due- on that group from the rotation template",
		nagIoTResource(stack, "cert/*"), nagIoTResource(stack, "thing/*"), nagIoTResource(stack, "job/"+wire.JobIDPrefix+"due-*"))

	rule := awsevents.NewRule(stack, jsii.String("DueSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Every " + strconv.Itoa(DueSchedule) + " hours: the newest audit's expiring device certificates to a rotation job"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(DueSchedule))),
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(s.Due.Function, &awseventstargets.LambdaFunctionProps{
		DeadLetterQueue: s.Due.DeadLetters, RetryAttempts: jsii.Number(2),
	}))
}
