package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
)

// Attribute names of the IoTMRProvisioning items that the replication reads besides the registry event's own fields.
const (
	// ReplicationOriginAttr holds the region whose registry produced the event; the replica's stream mapping drops the
	// items of its own region, so nothing replays back.
	ReplicationOriginAttr = "originRegion"
	// ReplicationDefaultPolicy is the policy the JIT registration attaches (the sample's name): the replay detaches it
	// before it deletes a thing's certificate.
	ReplicationDefaultPolicy = "jitr-mr-policy"
)

var replicationRegionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[1-9]$`)

// Names of the state machine's states: the sample's, plus ThingGroupCrud and the dead-letter path.
const (
	StateChoiceEventType = "ChoiceEventType"
	StateThingCrud       = "ThingCrud"
	StateThingTypeCrud   = "ThingTypeCrud"
	StateThingGroupCrud  = "ThingGroupCrud"
	StateDefault         = "DefaultState"
	StateSendToDLQ       = "SendToDeadLetterQueue"
	StateReplayFailed    = "ReplayFailed"
)

// ReplicationProps configures NewReplication.
type ReplicationProps struct {
	// StreamArn is the ARN of this region's replica stream of the IoTMRProvisioning table (a token, e.g. from a
	// DescribeTable custom resource: TableV2's replica stream ARN is only ".../stream/*"). Required.
	StreamArn *string
	// TableName is the global table's name, which scopes the stream read grant. Default: "IoTMRProvisioning".
	TableName string
	// PrimaryRegion is the region whose registry is replicated; the reconciler reads it. Required.
	PrimaryRegion string
	// OriginRegions are the regions whose registry events are replayed here; an item naming another region (or none)
	// is refused and counted (RefusedAlarm). The CRUD functions may read these regions' registries for read-repair.
	// Default: the PrimaryRegion.
	OriginRegions []string
	// JITRPolicyName is the policy the JIT registration attaches in this region. Default: "jitr-mr-policy".
	JITRPolicyName string
	// CACertificateID is this region's registration of the device CA: a replayed thing delete detaches and deletes
	// only the certificates registered under it. Default: none (every certificate of the thing is detached, none is
	// deleted).
	CACertificateID *string
	// BatchSize of the stream mapping. Default: 10.
	BatchSize float64
	// Reconciler configures the reconciler. Default: ReconcilerProps's defaults.
	Reconciler *ReconcilerProps
}

// Replication is the replica-region side of the registry replication: the stream mapping and its trigger function, the
// state machine with the sample's shape and its CRUD functions, the table of applied versions, the dead-letter queues
// and the reconciler.
type Replication struct {
	constructs.Construct
	// Trigger starts one execution per registry event, named after the eventId.
	Trigger *iotcert.GoFunction
	// ThingCrud, ThingTypeCrud and ThingGroupCrud apply the events.
	ThingCrud, ThingTypeCrud, ThingGroupCrud *iotcert.GoFunction
	// StateMachine is the sample's ProvisioningStateMachine.
	StateMachine awsstepfunctions.StateMachine
	// DeadLetters receives, from the state machine itself, the content of every record it could not apply.
	DeadLetters awssqs.Queue
	// TriggerFailures is the stream mapping's on-failure destination (metadata of batches the trigger failed on).
	TriggerFailures awssqs.Queue
	// Versions records, per registry entity, the newest event applied in this region.
	Versions awsdynamodb.Table
	// VersionsKey encrypts the Versions table; the CRUD functions and the reconciler may use it, nothing else.
	VersionsKey awskms.Key
	// DeadLetterAlarm fires when a record lands in either queue.
	DeadLetterAlarm awscloudwatch.Alarm
	// Refused is the RefusedEvents metric: items of the table the trigger refused (unknown origin, timestamp beyond
	// the clock-skew bound). RefusedAlarm fires on any.
	Refused      awscloudwatch.Metric
	RefusedAlarm awscloudwatch.Alarm
	// Reconciler compares the primary's registry with this region's and repairs the difference.
	Reconciler *Reconciler
}

func (p ReplicationProps) withDefaults() ReplicationProps {
	if p.TableName == "" {
		p.TableName = "IoTMRProvisioning"
	}
	if p.JITRPolicyName == "" {
		p.JITRPolicyName = ReplicationDefaultPolicy
	}
	if p.BatchSize == 0 {
		p.BatchSize = 10
	}
	if len(p.OriginRegions) == 0 && p.PrimaryRegion != "" {
		p.OriginRegions = []string{p.PrimaryRegion}
	}
	return p
}

// Replay's retry of ReplayNotReadyException (an event that can apply only later: a thing type's delete within five
// minutes of its deprecation): 80 s, then 1.5 times longer, 6 times (80 s to 10 min, 28 min in all). The third
// retry, 380 s after the first attempt, is the first past the five minutes.
const (
	notReadyInterval = 80
	notReadyBackoff  = 1.5
	notReadyAttempts = 6
)

// ReplicationMetricRefused names the count of items the replay refused.
const ReplicationMetricRefused = "RefusedEvents"

// NewReplication defines the registry replication of one replica region.
func NewReplication(scope constructs.Construct, id string, props *ReplicationProps) *Replication {
	p := props.withDefaults()
	if p.StreamArn == nil {
		panic(fmt.Sprintf("%s: replication needs the StreamArn of this region's IoTMRProvisioning replica", id))
	}
	if !replicationRegionRE.MatchString(p.PrimaryRegion) {
		panic(fmt.Sprintf("%s: replication needs the PrimaryRegion, got %q", id, p.PrimaryRegion))
	}
	if p.BatchSize < 1 || p.BatchSize > 1000 {
		panic(fmt.Sprintf("%s: replication batch size must be 1 to 1000, got %v", id, p.BatchSize))
	}
	for _, r := range p.OriginRegions {
		if !replicationRegionRE.MatchString(r) {
			panic(fmt.Sprintf("%s: replication OriginRegions holds %q, which is not a region", id, r))
		}
	}
	origins := strings.Join(p.OriginRegions, ",")
	c := constructs.NewConstruct(scope, jsii.String(id))
	r := &Replication{Construct: c}
	stack := awscdk.Stack_Of(c)
	arn := func(resource, name string) *string { return iotArn(stack, resource, name) }
	nagIoT := func(resource string) string { return nagArn(stack, "iot", resource) }

	// Regional, not global: each region records what it applied. Removal loses only the ordering history, which the
	// reconciler's next run rebuilds from the primary. Encrypted with a key of its own (AWS Control Tower
	// CT.DYNAMODB.PR.2): the table grants below give the CRUD functions and the reconciler that key's data-key actions
	// on its ARN alone.
	r.VersionsKey = awskms.NewKey(c, jsii.String("VersionsKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the table of registry events applied in this region"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
		PendingWindow:     awscdk.Duration_Days(jsii.Number(7)),
	})
	// Only AWS services (here DynamoDB, for the table) may create grants on the key (AWS Control Tower CT.KMS.PR.3).
	iotcert.DenyForeignGrants(r.VersionsKey)
	r.Versions = awsdynamodb.NewTable(c, jsii.String("Versions"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Encryption:          awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey:       r.VersionsKey,
		TimeToLiveAttribute: jsii.String("expiresAt"),
		RemovalPolicy:       awscdk.RemovalPolicy_DESTROY,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true)},
	})

	crudEnv := func() map[string]*string {
		env := map[string]*string{
			"VERSIONS_TABLE":   r.Versions.TableName(),
			"JITR_POLICY_NAME": jsii.String(p.JITRPolicyName),
			"ORIGIN_REGIONS":   jsii.String(origins),
		}
		if p.CACertificateID != nil {
			env["CA_CERTIFICATE_ID"] = p.CACertificateID
		}
		return env
	}
	crud := func(fid, handler, what string) *iotcert.GoFunction {
		fn := iotcert.NewGoFunction(c, fid, &iotcert.GoFunctionProps{
			Handler:     handler,
			Description: "Replays " + what + " registry events from " + p.PrimaryRegion + " in this region",
			Timeout:     awscdk.Duration_Seconds(jsii.Number(30)),
			Environment: crudEnv(),
		})
		// Invoked synchronously by the state machine, which retries and catches every error.
		r.Versions.GrantReadWriteData(fn.Role)
		// Read-repair reads the origin regions' registries: what is true there settles events that arrive before
		// what they need, and events that nothing orders.
		var originArns []*string
		for _, region := range p.OriginRegions {
			for _, res := range []string{"thing", "thingtype", "thinggroup"} {
				originArns = append(originArns, stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"),
					Region: jsii.String(region), Resource: jsii.String(res), ResourceName: jsii.String("*")}))
			}
		}
		fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("iot:DescribeThing", "iot:DescribeThingType", "iot:DescribeThingGroup",
				"iot:ListThingGroupsForThing"),
			Resources: &originArns,
		}))
		iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5", versionsKeyReason,
			"Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*")
		return fn
	}
	r.ThingCrud = crud("ThingCrudFunction", "thingcrud", "thing and thing-type association")
	r.ThingCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:CreateThing", "iot:UpdateThing", "iot:DescribeThing", "iot:DeleteThing",
			"iot:ListThingPrincipals", "iot:DetachThingPrincipal"),
		Resources: &[]*string{arn("thing", "*")},
	}))
	r.ThingCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// DescribeThingType and DeprecateThingType: a type deprecated here is lifted for the one call that gives it
		// to a thing the primary gave it before deprecating it. CreateThingType: a thing's type not replayed yet is
		// read-repaired from the origin.
		Actions: jsii.Strings("iot:CreateThing", "iot:UpdateThing", "iot:DescribeThingType", "iot:DeprecateThingType",
			"iot:CreateThingType"),
		Resources: &[]*string{arn("thingtype", "*")},
	}))
	r.ThingCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:DetachThingPrincipal", "iot:DescribeCertificate", "iot:UpdateCertificate",
			"iot:DeleteCertificate", "iot:ListAttachedPolicies", "iot:DetachPolicy"),
		Resources: &[]*string{arn("cert", "*")},
	}))
	r.ThingCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DetachPolicy"),
		Resources: &[]*string{arn("policy", p.JITRPolicyName)},
	}))
	iotcert.Acknowledge(r.ThingCrud.Role, "AwsSolutions-IAM5",
		"replayed events name any thing, thing type or certificate of the registry, so the grants are on this account's "+
			"and region's thing/*, thingtype/* and cert/* ARNs; policies are named",
		nagIoT("thing/*"), nagIoT("thingtype/*"), nagIoT("cert/*"))

	r.ThingTypeCrud = crud("ThingTypeCrudFunction", "thingtypecrud", "thing type and thing-type association")
	r.ThingTypeCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:CreateThingType", "iot:DescribeThingType", "iot:DeprecateThingType",
			"iot:DeleteThingType", "iot:UpdateThing"),
		Resources: &[]*string{arn("thingtype", "*")},
	}))
	r.ThingTypeCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// CreateThing: a type association that arrives before its thing read-repairs the thing from the origin.
		Actions:   jsii.Strings("iot:UpdateThing", "iot:DescribeThing", "iot:CreateThing"),
		Resources: &[]*string{arn("thing", "*")},
	}))
	r.ThingTypeCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:CreateThing"),
		Resources: &[]*string{arn("thingtype", "*")},
	}))
	iotcert.Acknowledge(r.ThingTypeCrud.Role, "AwsSolutions-IAM5",
		"replayed events name any thing type or thing of the registry: the grants are on this account's and region's "+
			"thingtype/* and thing/* ARNs",
		nagIoT("thingtype/*"), nagIoT("thing/*"))

	r.ThingGroupCrud = crud("ThingGroupCrudFunction", "thinggroupcrud", "thing group, membership and hierarchy")
	r.ThingGroupCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:CreateThingGroup", "iot:DescribeThingGroup", "iot:UpdateThingGroup",
			"iot:DeleteThingGroup", "iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup"),
		Resources: &[]*string{arn("thinggroup", "*")},
	}))
	r.ThingGroupCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// CreateThing, UpdateThing, DescribeThing: a membership that arrives before its thing read-repairs the thing
		// (and its type) from the origin.
		Actions: jsii.Strings("iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup", "iot:CreateThing",
			"iot:UpdateThing", "iot:DescribeThing"),
		Resources: &[]*string{arn("thing", "*")},
	}))
	r.ThingGroupCrud.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:CreateThing", "iot:UpdateThing", "iot:CreateThingType", "iot:DescribeThingType",
			"iot:DeprecateThingType"),
		Resources: &[]*string{arn("thingtype", "*")},
	}))
	iotcert.Acknowledge(r.ThingGroupCrud.Role, "AwsSolutions-IAM5",
		"replayed events name any thing group or thing of the registry (and a thing's type, when the thing is "+
			"read-repaired): the grants are on this account's and region's thinggroup/*, thing/* and thingtype/* ARNs",
		nagIoT("thinggroup/*"), nagIoT("thing/*"), nagIoT("thingtype/*"))
	for _, fn := range []*iotcert.GoFunction{r.ThingCrud, r.ThingTypeCrud, r.ThingGroupCrud} {
		var applies []string
		for _, region := range p.OriginRegions {
			for _, res := range []string{"thing/*", "thingtype/*", "thinggroup/*"} {
				applies = append(applies, nagArnIn(stack, "iot", region, res))
			}
		}
		iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
			"read-repair describes whichever thing, thing type or thing group an event names in its origin region: "+
				"read-only actions on the origin regions' thing/*, thingtype/* and thinggroup/* ARNs of this account",
			applies...)
	}

	r.DeadLetters = awssqs.NewQueue(c, jsii.String("DeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	deadLetterQueue(r.DeadLetters, "this queue is itself the dead-letter target: the state machine sends it every record it could not apply")
	r.StateMachine = r.defineStateMachine(c)

	r.TriggerFailures = awssqs.NewQueue(c, jsii.String("TriggerFailures"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	deadLetterQueue(r.TriggerFailures, "this queue is itself the on-failure destination of the stream mapping")
	r.Trigger = iotcert.NewGoFunction(c, "TriggerFunction", &iotcert.GoFunctionProps{
		Handler:     "replaytrigger",
		Description: "Starts one replay execution per registry event, named after its eventId",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(30)),
		Environment: map[string]*string{"STATE_MACHINE_ARN": r.StateMachine.StateMachineArn(),
			"ORIGIN_REGIONS": jsii.String(origins), "METRIC_NAMESPACE": jsii.String(ReconcilerMetricNamespace)},
	})
	iotcert.Acknowledge(r.Trigger.Function, "Serverless-LambdaDLQ",
		"invoked by a DynamoDB stream mapping, whose own on-failure destination (TriggerFailures) keeps failed batches")
	r.StateMachine.GrantStartExecution(r.Trigger.Role)
	streamArn := stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("dynamodb"), Resource: jsii.String("table"),
		ResourceName: jsii.String(p.TableName + "/stream/*")})
	r.Trigger.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
		Resources: &[]*string{streamArn},
	}))
	r.Trigger.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("dynamodb:ListStreams"), Resources: jsii.Strings("*"),
	}))
	r.TriggerFailures.GrantSendMessages(r.Trigger.Role)
	iotcert.Acknowledge(r.Trigger.Role, "AwsSolutions-IAM5",
		"the stream's label changes whenever the stream is re-enabled, so the read grant names this table's streams "+
			"(table/"+p.TableName+"/stream/*); dynamodb:ListStreams supports no resource-level permission",
		nagArn(stack, "dynamodb", "table/"+p.TableName+"/stream/*"),
		"Resource::*")

	region := stack.Region()
	filter := map[string]interface{}{
		"eventName": []interface{}{"INSERT"},
		"dynamodb": map[string]interface{}{
			"NewImage": map[string]interface{}{
				ReplicationOriginAttr: map[string]interface{}{
					"S": []interface{}{map[string]interface{}{"anything-but": []interface{}{region}}},
				},
			},
		},
	}
	awslambda.NewEventSourceMapping(c, jsii.String("StreamMapping"), &awslambda.EventSourceMappingProps{
		Target:                  r.Trigger.Function,
		EventSourceArn:          p.StreamArn,
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(p.BatchSize),
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(1)),
		BisectBatchOnError:      jsii.Bool(true),
		RetryAttempts:           jsii.Number(5),
		MaxRecordAge:            awscdk.Duration_Hours(jsii.Number(24)),
		ReportBatchItemFailures: jsii.Bool(true),
		OnFailure:               awslambdaeventsources.NewSqsDlq(r.TriggerFailures),
		Filters:                 &[]*map[string]interface{}{awslambda.FilterCriteria_Filter(&filter)},
		ParallelizationFactor:   jsii.Number(1),
	})

	visible := func(q awssqs.Queue) awscloudwatch.IMetric {
		return q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)),
			Statistic: jsii.String("Maximum")})
	}
	r.DeadLetterAlarm = awscloudwatch.NewAlarm(c, jsii.String("DeadLetterAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("Registry replication: a record could not be applied (see the DeadLetters and TriggerFailures queues)"),
		Metric: awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String("dlq + trig"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{"dlq": visible(r.DeadLetters), "trig": visible(r.TriggerFailures)},
			Period:       awscdk.Duration_Minutes(jsii.Number(5)),
		}),
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	r.Refused = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(ReconcilerMetricNamespace),
		MetricName:    jsii.String(ReplicationMetricRefused),
		DimensionsMap: &map[string]*string{"Region": region},
		Statistic:     jsii.String("Sum"),
		Period:        awscdk.Duration_Minutes(jsii.Number(5)),
	})
	r.RefusedAlarm = r.Refused.CreateAlarm(c, jsii.String("RefusedAlarm"), &awscloudwatch.CreateAlarmOptions{
		AlarmDescription: jsii.String("Registry replication refused items of the global table: an originRegion outside " +
			origins + " or none, or a timestamp beyond the clock-skew bound (someone wrote events this region must not trust)"),
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	rp := ReconcilerProps{}
	if p.Reconciler != nil {
		rp = *p.Reconciler
	}
	rp.PrimaryRegion = p.PrimaryRegion
	rp.Versions = r.Versions
	rp.JITRPolicyName = p.JITRPolicyName
	rp.CACertificateID = p.CACertificateID
	rp.originRegions = origins
	r.Reconciler = NewReconciler(c, "Reconciler", &rp)
	return r
}

// defineStateMachine keeps the sample's shape: ChoiceEventType on $.NewImage.eventType.S → ThingCrud, ThingTypeCrud and
// (new) ThingGroupCrud, each retried as the sample (3 s, back-off 2, 3 attempts); unmatched → DefaultState. Unlike the
// sample, every failure is caught and the record's content goes to the dead-letter queue before the execution fails.
func (r *Replication) defineStateMachine(c constructs.Construct) awsstepfunctions.StateMachine {
	failed := awsstepfunctions.NewFail(c, jsii.String(StateReplayFailed), &awsstepfunctions.FailProps{
		ErrorPath: jsii.String("$.error.Error"),
		CausePath: jsii.String("$.error.Cause"),
	})
	toDLQ := awsstepfunctionstasks.NewSqsSendMessage(c, jsii.String(StateSendToDLQ), &awsstepfunctionstasks.SqsSendMessageProps{
		Queue:       r.DeadLetters,
		MessageBody: awsstepfunctions.TaskInput_FromJsonPathAt(jsii.String("$")),
		ResultPath:  awsstepfunctions.JsonPath_DISCARD(),
	})
	toDLQ.Next(failed)
	task := func(name, exception string, fn *iotcert.GoFunction) awsstepfunctions.IChainable {
		t := awsstepfunctionstasks.NewLambdaInvoke(c, jsii.String(name), &awsstepfunctionstasks.LambdaInvokeProps{
			LambdaFunction:      fn.Function,
			PayloadResponseOnly: jsii.Bool(true),
		})
		t.AddRetry(&awsstepfunctions.RetryProps{
			Errors:      jsii.Strings(exception),
			Interval:    awscdk.Duration_Seconds(jsii.Number(3)),
			BackoffRate: jsii.Number(2),
			MaxAttempts: jsii.Number(3),
		})
		// Our own error name (the function's errorType), matched as Step Functions matches a Lambda function's
		// error: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
		t.AddRetry(&awsstepfunctions.RetryProps{
			Errors:      jsii.Strings("ReplayNotReadyException"),
			Interval:    awscdk.Duration_Seconds(jsii.Number(notReadyInterval)),
			BackoffRate: jsii.Number(notReadyBackoff),
			MaxAttempts: jsii.Number(notReadyAttempts),
		})
		t.AddCatch(toDLQ, &awsstepfunctions.CatchProps{Errors: jsii.Strings("States.ALL"), ResultPath: jsii.String("$.error")})
		return t
	}
	eventType := "$.NewImage.eventType.S"
	is := func(v string) awsstepfunctions.Condition {
		return awsstepfunctions.Condition_StringEquals(jsii.String(eventType), jsii.String(v))
	}
	unmatched := awsstepfunctions.NewPass(c, jsii.String(StateDefault), &awsstepfunctions.PassProps{
		Result:     awsstepfunctions.Result_FromObject(&map[string]interface{}{"Error": "DefaultStateError", "Cause": "No Matches!"}),
		ResultPath: jsii.String("$.error"),
	})
	unmatched.Next(toDLQ)
	choice := awsstepfunctions.NewChoice(c, jsii.String(StateChoiceEventType), nil).
		When(is("THING_EVENT"), task(StateThingCrud, "ThingCrudException", r.ThingCrud), nil).
		When(awsstepfunctions.Condition_Or(is("THING_TYPE_EVENT"), is("THING_TYPE_ASSOCIATION_EVENT")),
			task(StateThingTypeCrud, "ThingTypeCrudException", r.ThingTypeCrud), nil).
		When(awsstepfunctions.Condition_Or(is("THING_GROUP_EVENT"), is("THING_GROUP_MEMBERSHIP_EVENT"),
			is("THING_GROUP_HIERARCHY_EVENT")), task(StateThingGroupCrud, "ThingGroupCrudException", r.ThingGroupCrud), nil).
		Otherwise(unmatched)

	logs := awslogs.NewLogGroup(c, jsii.String("StateMachineLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_YEAR,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	iotcert.AcknowledgeGuard(logs, "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",
		"execution logs hold state transitions and errors of registry events (names and attributes), no key material or "+
			"secrets; CloudWatch Logs encrypts them at rest")
	sm := awsstepfunctions.NewStateMachine(c, jsii.String("ProvisioningStateMachine"), &awsstepfunctions.StateMachineProps{
		DefinitionBody:   awsstepfunctions.DefinitionBody_FromChainable(choice),
		StateMachineType: awsstepfunctions.StateMachineType_STANDARD, // refuses a second execution with the same name
		TracingEnabled:   jsii.Bool(true),
		// Every state transition, so that a replayed event can be followed (the execution is named after its eventId).
		// Without inputs and outputs: the execution history keeps them for 90 days, and the dead-letter queue keeps the
		// content of every record that failed, so the logs need not hold a thing's attributes for a year.
		Logs: &awsstepfunctions.LogOptions{
			Destination:          logs,
			Level:                awsstepfunctions.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(false),
		},
	})
	iotcert.Acknowledge(sm, "AwsSolutions-IAM5",
		"generated by the CDK: lambda:InvokeFunction on each CRUD function's ARN and its versions (:*), and the "+
			"log-delivery and X-Ray actions, which support no resource-level permissions")
	return sm
}

// versionsKeyReason explains the key actions of the Versions table's read-write grant.
const versionsKeyReason = "the read-write grant of the Versions table includes the key actions DynamoDB needs for a table " +
	"encrypted with a customer managed key (kms:GenerateDataKey*, kms:ReEncrypt*), on that one key's ARN"

// deadLetterQueue acknowledges, with reason, the rules that ask a queue for a dead-letter queue of its own: queue is
// itself where failed records end up (no redrive source points at it: the state machine and the stream mapping send to
// it directly), and the DeadLetterAlarm watches it.
func deadLetterQueue(queue awssqs.Queue, reason string) {
	iotcert.Acknowledge(queue, "AwsSolutions-SQS3", reason)
	iotcert.Acknowledge(queue, "Serverless-SQSRedrivePolicy", reason)
	iotcert.AcknowledgeGuard(queue, "SQS_DLQ_CHECK", reason)
}

// nagArnIn is nagArn for an ARN in another region.
func nagArnIn(stack awscdk.Stack, service, region, resource string) string {
	return "Resource::arn:" + nagLiteral(stack.Partition(), "<AWS::Partition>") + ":" + service + ":" + region + ":" +
		nagLiteral(stack.Account(), "<AWS::AccountId>") + ":" + resource
}

// nagArn is how cdk-nag names, in a finding ("appliesTo"), an ARN of service in the stack's account and region: a
// stack pinned to a region (and account) has them written literally, others as pseudo-parameter references.
func nagArn(stack awscdk.Stack, service, resource string) string {
	return nagArnIn(stack, service, nagLiteral(stack.Region(), "<AWS::Region>"), resource)
}

// nagLiteral is v when it is literal, else the pseudo-parameter reference ref.
func nagLiteral(v *string, ref string) string {
	if *awscdk.Token_IsUnresolved(*v) {
		return ref
	}
	return *v
}

// ReconcilerProps configures NewReconciler.
type ReconcilerProps struct {
	// PrimaryRegion is read; this stack's region is repaired. Required.
	PrimaryRegion string
	// CACertificateID is this region's registration of the device CA (see ReplicationProps). Default: none.
	CACertificateID *string
	// Versions is the replication's table of applied versions: a repair records what it wrote, so an older event
	// arriving later does not undo it. Required.
	Versions awsdynamodb.ITable
	// JITRPolicyName is the policy the JIT registration attaches. Default: "jitr-mr-policy".
	JITRPolicyName string
	// Schedule of the runs. Default: once a day.
	Schedule awsevents.Schedule
	// RatePerSecond caps the reconciler's IoT control-plane calls in each region, under the per-API quotas
	// (10 to 15 per second for most registry writes). Default: 8.
	RatePerSecond float64
	// DriftThreshold is the drift count above which the alarm fires. Default: 0 (any drift: events were lost).
	DriftThreshold float64

	originRegions string // the replication's ORIGIN_REGIONS; default: PrimaryRegion
}

// Reconciler compares the primary's things, thing types and thing groups with this region's, repairs the difference and
// publishes the drift count.
type Reconciler struct {
	constructs.Construct
	Function *iotcert.GoFunction
	Schedule awsevents.Rule
	// Drift is the RegistryDrift metric (embedded metric format, namespace IotMultiRegion) of this region.
	Drift      awscloudwatch.Metric
	DriftAlarm awscloudwatch.Alarm
}

// ReconcilerMetricNamespace and ReconcilerMetricName name the drift metric.
const (
	ReconcilerMetricNamespace = "IotMultiRegion"
	ReconcilerMetricName      = "RegistryDrift"
)

// NewReconciler defines the reconciler of one replica region.
func NewReconciler(scope constructs.Construct, id string, props *ReconcilerProps) *Reconciler {
	p := *props
	if !replicationRegionRE.MatchString(p.PrimaryRegion) {
		panic(fmt.Sprintf("%s: reconciler needs the PrimaryRegion, got %q", id, p.PrimaryRegion))
	}
	if p.Versions == nil {
		panic(fmt.Sprintf("%s: reconciler needs the Versions table", id))
	}
	if p.JITRPolicyName == "" {
		p.JITRPolicyName = ReplicationDefaultPolicy
	}
	if p.Schedule == nil {
		p.Schedule = awsevents.Schedule_Rate(awscdk.Duration_Days(jsii.Number(1)))
	}
	if p.RatePerSecond == 0 {
		p.RatePerSecond = 8
	}
	if p.RatePerSecond < 0.1 || p.RatePerSecond > 50 {
		panic(fmt.Sprintf("%s: reconciler rate must be 0.1 to 50 calls per second, got %v", id, p.RatePerSecond))
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	rc := &Reconciler{Construct: c}
	stack := awscdk.Stack_Of(c)
	if p.originRegions == "" {
		p.originRegions = p.PrimaryRegion
	}
	env := map[string]*string{
		"PRIMARY_REGION":   jsii.String(p.PrimaryRegion),
		"ORIGIN_REGIONS":   jsii.String(p.originRegions),
		"VERSIONS_TABLE":   p.Versions.TableName(),
		"JITR_POLICY_NAME": jsii.String(p.JITRPolicyName),
		"RATE_PER_SECOND":  jsii.String(fmt.Sprint(p.RatePerSecond)),
		"METRIC_NAMESPACE": jsii.String(ReconcilerMetricNamespace),
	}
	if p.CACertificateID != nil {
		env["CA_CERTIFICATE_ID"] = p.CACertificateID
	}
	rc.Function = iotcert.NewGoFunction(c, "Function", &iotcert.GoFunctionProps{
		Handler:     "reconciler",
		Description: "Repairs this region's registry to match " + p.PrimaryRegion + " and reports the drift",
		Timeout:     awscdk.Duration_Minutes(jsii.Number(15)),
		MemorySize:  512,
		Environment: env,
		OnFailure:   true,
		// One run at a time: a second would double the control-plane rate.
		ReservedConcurrency: 1,
		UnscopedActions:     []string{"iot:ListThings", "iot:ListThingTypes", "iot:ListThingGroups"},
	})
	p.Versions.GrantReadWriteData(rc.Function.Role)
	iotcert.Acknowledge(rc.Function.Role, "AwsSolutions-IAM5", versionsKeyReason,
		"Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*")
	arnIn := func(region, resource string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Region: jsii.String(region),
			Resource: jsii.String(resource), ResourceName: jsii.String("*")})
	}
	read := []string{"iot:DescribeThing", "iot:DescribeThingType", "iot:DescribeThingGroup",
		"iot:ListThingsInThingGroup", "iot:ListThingGroupsForThing", "iot:ListThingPrincipals"}
	rc.Function.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(read...),
		Resources: &[]*string{arnIn(p.PrimaryRegion, "thing"), arnIn(p.PrimaryRegion, "thingtype"),
			arnIn(p.PrimaryRegion, "thinggroup")},
	}))
	local := stack.Region()
	rc.Function.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(append(read,
			"iot:CreateThing", "iot:UpdateThing", "iot:DeleteThing",
			"iot:CreateThingType", "iot:DeprecateThingType", "iot:DeleteThingType",
			"iot:CreateThingGroup", "iot:UpdateThingGroup", "iot:DeleteThingGroup",
			"iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup")...),
		Resources: &[]*string{arnIn(*local, "thing"), arnIn(*local, "thingtype"), arnIn(*local, "thinggroup")},
	}))
	// A repaired delete detaches the thing's certificates first, as the replayed delete does.
	rc.Function.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:DetachThingPrincipal", "iot:DescribeCertificate", "iot:UpdateCertificate",
			"iot:DeleteCertificate", "iot:ListAttachedPolicies", "iot:DetachPolicy"),
		Resources: &[]*string{arnIn(*local, "cert")},
	}))
	rc.Function.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DetachThingPrincipal"),
		Resources: &[]*string{arnIn(*local, "thing")},
	}))
	rc.Function.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DetachPolicy"),
		Resources: &[]*string{stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Resource: jsii.String("policy"), ResourceName: jsii.String(p.JITRPolicyName)})},
	}))
	iotcert.Acknowledge(rc.Function.Role, "AwsSolutions-IAM5",
		"the reconciler reads every thing, thing type and thing group of the primary region and repairs any of this "+
			"region's, detaching the certificates of a thing it deletes: the grants are on the thing/*, thingtype/*, "+
			"thinggroup/* (and here cert/*) ARNs of these two regions in this account")

	rc.Schedule = awsevents.NewRule(c, jsii.String("Schedule"), &awsevents.RuleProps{
		Description: jsii.String("Runs the registry reconciler (the first run backfills)"),
		Schedule:    p.Schedule,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(rc.Function.Function,
			&awseventstargets.LambdaFunctionProps{
				RetryAttempts:   jsii.Number(2),
				DeadLetterQueue: rc.Function.DeadLetters,
			})},
	})
	rc.Drift = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(ReconcilerMetricNamespace),
		MetricName:    jsii.String(ReconcilerMetricName),
		DimensionsMap: &map[string]*string{"Region": local},
		Statistic:     jsii.String("Maximum"),
		Period:        awscdk.Duration_Days(jsii.Number(1)),
	})
	threshold := p.DriftThreshold
	rc.DriftAlarm = rc.Drift.CreateAlarm(c, jsii.String("DriftAlarm"), &awscloudwatch.CreateAlarmOptions{
		AlarmDescription: jsii.String(strings.Join([]string{
			"Registry drift between", p.PrimaryRegion, "and this region: the reconciler repaired entities that replay missed"}, " ")),
		Threshold:          jsii.Number(threshold),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	return rc
}
