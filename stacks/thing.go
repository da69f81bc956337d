package stacks

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/naming"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/policies"
)

// Context keys of the per-thing and fleet stacks.
const (
	ctxPolicyFile       = "policy_file"
	ctxRegion           = "region"
	ctxKeyAlgorithm     = "key_algorithm"
	ctxAllowBroadPolicy = "allow_broad_policy"
	ctxStackName        = "stack_name"
	ctxFleetName        = "fleet_name"
	ctxFleetStacks      = "fleet_stacks"
	ctxCertGeneration   = "certificate_generation"
	ctxCertGraceDays    = "certificate_grace_days"
)

// Fleet sizing. A device costs five resources (thing, secret, certificate, two attachments); a stack's shared part
// (key, policy, function, provider and their roles, policies and log groups) eleven. CloudFormation allows 500
// resources per stack, so a stack holds at most 97 devices.
const (
	maxThingsPerStack = 97
	// A fleet of at most this many things fits one stack without fleet_stacks; a larger one must say how many stacks
	// it spreads over, so that the number never changes behind the operator's back as the fleet grows.
	singleStackFleet = 90
	// CloudFormation allows 2,000 stacks per account and region by default; a fleet larger than this is a mistake.
	maxFleetStacks = 200
)

// ThingStackProps configures NewThingStack.
type ThingStackProps struct {
	awscdk.StackProps
	// ThingNames are the things the stack defines: one for a per-thing stack, up to 97 in a fleet stack (none is
	// allowed there: a fleet stack whose things all left still deploys, and so deletes them).
	ThingNames []string
	// PolicyDocument is the AWS IoT policy every certificate of the stack gets. Default: policies.ThingPolicy.
	PolicyDocument map[string]interface{}
	// KeyAlgorithm of the device keys: "EC_P256" (default), "EC_P384" or "RSA_2048".
	KeyAlgorithm string
	// Fleet, when set, is the fleet's name: each device's secret is named <fleet>/<thing>/private-key, and the stack
	// adds no per-device outputs.
	Fleet string
	// CertificateGeneration, when above zero, is the generation of every certificate of the stack: raising it issues
	// new keys and certificates and keeps the replaced certificates ACTIVE for GraceDays (default 7), retired by a
	// daily schedule.
	CertificateGeneration int
	GraceDays             int
}

// ThingStack defines AWS IoT things with their certificates and policy; each private key is kept in Secrets Manager,
// encrypted with the stack's customer-managed KMS key.
type ThingStack struct {
	awscdk.Stack
	Key     awskms.Key
	Policy  awsiot.CfnPolicy
	Devices []*iotcert.Device
}

// NewThingStack defines the things of props.ThingNames.
func NewThingStack(scope constructs.Construct, id string, props *ThingStackProps) *ThingStack {
	p := *props
	if len(p.ThingNames) == 0 && p.Fleet == "" {
		panic("thing stack: at least one thing name is required")
	}
	if len(p.ThingNames) > maxThingsPerStack {
		panic(fmt.Sprintf("thing stack: %d things exceed CloudFormation's 500 resources per stack (at most %d)", len(p.ThingNames), maxThingsPerStack))
	}
	sp := p.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String(fmt.Sprintf("AWS IoT thing(s) %s with certificate, policy and private key in Secrets Manager", summarize(p.ThingNames)))
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	s := &ThingStack{Stack: stack}
	if p.PolicyDocument == nil {
		doc, err := policies.ThingPolicy(*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())
		if err != nil {
			panic(fmt.Sprintf("thing stack: %v", err))
		}
		p.PolicyDocument = doc
	}

	s.Key = awskms.NewKey(stack, jsii.String("SecretKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the private keys of the AWS IoT things of stack " + id),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
		PendingWindow:     awscdk.Duration_Days(jsii.Number(7)),
	})
	// Only AWS services (here Secrets Manager) may create grants on the key (AWS Control Tower CT.KMS.PR.3).
	iotcert.DenyForeignGrants(s.Key)

	fn := iotcert.NewGoFunction(stack, "ThingCertificateFunction", &iotcert.GoFunctionProps{
		Handler:     "thingcert",
		Description: "Makes each thing's key and certificate, keeps the key in Secrets Manager, and retires the certificate on delete",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(120)),
		MemorySize:  512,
		// CreateCertificateFromCsr acts on no existing resource, so IAM has no ARN for it.
		UnscopedActions: []string{"iot:CreateCertificateFromCsr"},
	})
	certArns := iotArn(stack, "cert", "*")
	var thingArns []*string
	if p.Fleet != "" {
		thingArns = []*string{iotArn(stack, "thing", "*")}
		iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
			"a fleet stack holds up to 97 things; naming each in DetachThingPrincipal's resource list would outgrow IAM's policy size limit",
			"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*")
	} else {
		thingArns = []*string{iotArn(stack, "thing", p.ThingNames[0])}
	}
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:UpdateCertificate", "iot:DeleteCertificate", "iot:DescribeCertificate",
			"iot:ListAttachedPolicies", "iot:ListPrincipalThings", "iot:DetachPolicy"),
		Resources: &[]*string{certArns},
	}))
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DetachThingPrincipal"),
		Resources: &thingArns,
	}))
	iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
		"a certificate id is the SHA-256 of a certificate that does not exist yet when the policy is written, so no narrower ARN exists",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*")
	provider := iotcert.NewProvider(stack, "ThingCertificateProvider", fn)

	s.Policy = awsiot.NewCfnPolicy(stack, jsii.String("ThingPolicy"), &awsiot.CfnPolicyProps{PolicyDocument: p.PolicyDocument})

	for _, name := range p.ThingNames {
		if err := pki.CheckDeviceName(name); err != nil {
			panic(fmt.Sprintf("thing stack: %v", err))
		}
		dp := &iotcert.DeviceProps{
			ThingName: name, Provider: provider, Key: s.Key, PolicyName: s.Policy.Ref(), KeyAlgorithm: p.KeyAlgorithm,
			Generation: p.CertificateGeneration, GraceDays: p.GraceDays,
		}
		if p.Fleet != "" {
			dp.SecretName = fleetSecretName(p.Fleet, name)
		}
		d := iotcert.NewDevice(stack, name, dp)
		if p.Fleet == "" {
			// What the function calls, and nothing else (GrantRead/GrantWrite would add DescribeSecret, UpdateSecret
			// and UpdateSecretVersionStage).
			fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions:   jsii.Strings("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"),
				Resources: &[]*string{d.Secret.SecretArn()},
			}))
		}
		s.Devices = append(s.Devices, d)
	}
	// The key decrypts and encrypts the secrets only when Secrets Manager asks on the function's behalf.
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources: &[]*string{s.Key.KeyArn()},
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{
			"kms:ViaService": awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("secretsmanager."), awscdk.Aws_REGION(), jsii.String(".amazonaws.com")}),
		}},
	}))
	if p.Fleet != "" {
		// One statement for the fleet's secrets: a statement per secret would outgrow IAM's 10,240-character limit on
		// a role's inline policies at about sixty devices.
		fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"),
			Resources: &[]*string{stack.FormatArn(&awscdk.ArnComponents{
				Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"), ResourceName: jsii.String(p.Fleet + "/*"),
				ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
			})},
		}))
		awscdk.NewCfnOutput(stack, jsii.String("SecretNames"), &awscdk.CfnOutputProps{
			Value:       jsii.String(fleetSecretName(p.Fleet, "<thing>")),
			Description: jsii.String("Name of each device's secret (certificateId, certificatePem, csr, privateKey)"),
		})
		iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
			"the fleet's secrets are named <fleet>/<thing>/private-key; one statement for the fleet's prefix keeps the role's policy within IAM's size limit",
			"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:"+p.Fleet+"/*")
	}
	if p.CertificateGeneration > 0 {
		defineGenerationRetirement(stack, fn, s.Devices, p, thingArns, certArns)
	}
	if p.Fleet == "" {
		d := s.Devices[0]
		d.PinLogicalIDs("")
		region := awscdk.Aws_REGION()
		j := func(parts ...*string) *string { return awscdk.Fn_Join(jsii.String(""), &parts) }
		out := func(key, desc string, v *string) {
			awscdk.NewCfnOutput(stack, jsii.String(key), &awscdk.CfnOutputProps{Value: v, Description: jsii.String(desc)})
		}
		out("ThingId", "Thing name", d.Thing.Ref())
		out("CertificateId", "AWS IoT certificate id", d.CertificateID())
		out("CertificateArn", "AWS IoT certificate ARN", d.CertificateArn())
		out("SecretId", "ARN of the secret holding certificateId, certificatePem, csr and privateKey", d.Secret.SecretArn())
		out("PrivateKeyCommand", "Prints the device's private key", j(jsii.String("aws secretsmanager get-secret-value --region "), region,
			jsii.String(" --secret-id "), d.Secret.SecretArn(), jsii.String(" --query SecretString --output text | jq -r .privateKey")))
		out("EndpointCommand", "Prints the AWS IoT data endpoint (ATS) devices connect to",
			j(jsii.String("aws iot describe-endpoint --region "), region, jsii.String(" --endpoint-type iot:Data-ATS --output text")))
	}
	return s
}

func summarize(names []string) string {
	if len(names) == 0 {
		return "(none yet)"
	}
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, ... %s (%d)", names[0], names[len(names)-1], len(names))
}

// thingOptions are the options shared by the per-thing and fleet stacks, read from context.
type thingOptions struct {
	policy       map[string]interface{}
	keyAlgorithm string
	env          *awscdk.Environment
	generation   int
	graceDays    int
}

func readThingOptions(ctx selection.Lookup) (*thingOptions, error) {
	o := &thingOptions{keyAlgorithm: optString(ctx, ctxKeyAlgorithm, pki.KeyECP256)}
	switch strings.ToUpper(o.keyAlgorithm) {
	case pki.KeyECP256, "EC", "ECC", "P256", "EC_P-256":
		o.keyAlgorithm = pki.KeyECP256
	case pki.KeyRSA2048, "RSA", "RSA2048":
		o.keyAlgorithm = pki.KeyRSA2048
	case pki.KeyECP384:
		o.keyAlgorithm = pki.KeyECP384
	default:
		return nil, fmt.Errorf("context %s %q is not supported: use EC_P256 (default) or RSA_2048", ctxKeyAlgorithm, o.keyAlgorithm)
	}
	broad, err := optBool(ctx, ctxAllowBroadPolicy)
	if err != nil {
		return nil, err
	}
	if o.generation, err = optInt(ctx, ctxCertGeneration, 0, 1, 1000000); err != nil {
		return nil, err
	}
	if o.graceDays, err = optInt(ctx, ctxCertGraceDays, 7, 1, 365); err != nil {
		return nil, err
	}
	if _, given := ctx(ctxCertGraceDays); given && o.generation == 0 {
		return nil, fmt.Errorf("context %s applies with %s only: give the generation too", ctxCertGraceDays, ctxCertGeneration)
	}
	if path := optString(ctx, ctxPolicyFile, ""); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("context %s %q: %w", ctxPolicyFile, path, unwrapPathError(err))
		}
		if _, err := policies.Check(data, policies.CheckOptions{AllowBroad: broad}); err != nil {
			hint := ""
			// Only a policy that is refused for its breadth gets the hint: the flag cannot help one that is not JSON,
			// too large or not a policy.
			if _, errBroad := policies.Check(data, policies.CheckOptions{AllowBroad: true}); !broad && errBroad == nil {
				hint = " (to deploy a broad policy anyway, add -c " + ctxAllowBroadPolicy + "=true)"
			}
			return nil, fmt.Errorf("context %s %q: %v%s", ctxPolicyFile, path, err, hint)
		}
		rendered, err := policies.Render(data, *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())
		if err != nil {
			return nil, fmt.Errorf("context %s %q: %v", ctxPolicyFile, path, err)
		}
		if err := json.Unmarshal(rendered, &o.policy); err != nil {
			return nil, fmt.Errorf("context %s %q: %v", ctxPolicyFile, path, err)
		}
	}
	if _, ok := ctx("role_arn"); ok {
		// The seed assumed this role at synth to read the previous key back; synth here needs no AWS access at all.
		fmt.Fprintln(os.Stderr, "warning: context role_arn is not used: synth needs no AWS credentials; deploy with a profile allowed to deploy the stack")
	}
	if region := optString(ctx, ctxRegion, ""); region != "" {
		o.env = &awscdk.Environment{Region: jsii.String(region)}
		if acct := os.Getenv("CDK_DEFAULT_ACCOUNT"); acct != "" {
			o.env.Account = jsii.String(acct)
		}
	}
	return o, nil
}

// defineThings defines the per-thing stack (thing_name) or the fleet stacks (thing_names, thing_names_file).
func defineThings(app awscdk.App, sel selection.Selection, ctx selection.Lookup) error {
	o, err := readThingOptions(ctx)
	if err != nil {
		return err
	}
	if sel.Kind == selection.Thing {
		// The thing name is its certificate's CN, which X.509 bounds at 64 characters (AWS IoT allows 128).
		if err := pki.CheckDeviceName(sel.ThingName); err != nil {
			return fmt.Errorf("context %s: %v", selection.KeyThingName, err)
		}
		name := optString(ctx, ctxStackName, sel.ThingName)
		if err := naming.StackName(name); err != nil {
			return fmt.Errorf("context %s: %v; the stack is named after the thing, so give a valid name with -c %s=<name>", selection.KeyThingName, err, ctxStackName)
		}
		NewThingStack(app, name, &ThingStackProps{
			StackProps: awscdk.StackProps{Env: o.env}, ThingNames: []string{sel.ThingName}, PolicyDocument: o.policy, KeyAlgorithm: o.keyAlgorithm,
			CertificateGeneration: o.generation, GraceDays: o.graceDays,
		})
		return nil
	}
	names := sel.ThingNames
	if sel.ThingNamesFile != "" {
		data, err := os.ReadFile(sel.ThingNamesFile)
		if err != nil {
			return fmt.Errorf("context %s %q: %w", selection.KeyThingNamesFile, sel.ThingNamesFile, unwrapPathError(err))
		}
		if names, err = selection.SplitNames(string(data)); err != nil {
			return fmt.Errorf("context %s %q: %w", selection.KeyThingNamesFile, sel.ThingNamesFile, err)
		}
	}
	for _, name := range names {
		if err := pki.CheckDeviceName(name); err != nil {
			return fmt.Errorf("fleet: %v", err)
		}
	}
	fleet := optString(ctx, ctxFleetName, "thing-fleet")
	if err := naming.StackName(fleet); err != nil {
		return fmt.Errorf("context %s: %v", ctxFleetName, err)
	}
	n := 1
	if len(names) > singleStackFleet {
		n = 0
	}
	if n, err = optInt(ctx, ctxFleetStacks, n, 1, maxFleetStacks); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%d things need several stacks: give their number with -c %s=<n> (for example %d, room to grow); "+
			"it stays fixed, since changing it moves things between stacks", len(names), ctxFleetStacks, suggestFleetStacks(len(names)))
	}
	shards := fleetShards(names, n)
	for i, shard := range shards {
		if len(shard) > maxThingsPerStack {
			return fmt.Errorf("%s-%d would hold %d things, more than the %d that fit CloudFormation's 500 resources: raise %s (now %d) to spread the fleet",
				fleet, i+1, len(shard), maxThingsPerStack, ctxFleetStacks, n)
		}
	}
	for i, shard := range shards {
		NewThingStack(app, fmt.Sprintf("%s-%d", fleet, i+1), &ThingStackProps{
			StackProps: awscdk.StackProps{Env: o.env}, ThingNames: shard, PolicyDocument: o.policy, KeyAlgorithm: o.keyAlgorithm, Fleet: fleet,
			CertificateGeneration: o.generation, GraceDays: o.graceDays,
		})
	}
	return nil
}

// fleetShards places each thing in stack FNV-1a(name) mod n. A thing's stack depends on its name and n only: adding
// or removing other things never moves it, so a change to the list re-creates no other device's certificate (and a
// moved thing, whose name is a physical name, could not be created in its new stack before the old one let go).
func fleetShards(names []string, n int) [][]string {
	shards := make([][]string, n)
	for _, name := range names {
		h := fnv.New32a()
		h.Write([]byte(name))
		k := h.Sum32() % uint32(n)
		shards[k] = append(shards[k], name)
	}
	return shards
}

// suggestFleetStacks leaves a third of each stack free for growth and hash imbalance.
func suggestFleetStacks(things int) int {
	return (things + 59) / 60
}

// fleetSecretName names a fleet device's secret: by fleet and thing, so it can be found without knowing the stack.
func fleetSecretName(fleet, thing string) string {
	return fleet + "/" + thing + "/private-key"
}

// defineGenerationRetirement lets the function keep a replaced certificate attached for its grace period and retire
// it: a daily schedule sends {"RequestType":"Retire","SecretIds":[...]} for the stack's secrets.
func defineGenerationRetirement(stack awscdk.Stack, fn *iotcert.GoFunction, devices []*iotcert.Device, p ThingStackProps, thingArns []*string, certArns *string) {
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:AttachPolicy"), Resources: &[]*string{certArns},
	}))
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:AttachThingPrincipal"), Resources: &thingArns,
	}))
	var secrets []*string
	for _, d := range devices {
		if p.Fleet != "" {
			secrets = append(secrets, jsii.String(fleetSecretName(p.Fleet, *d.Thing.ThingName())))
		} else {
			secrets = append(secrets, d.Secret.SecretArn())
		}
	}
	rule := awsevents.NewRule(stack, jsii.String("RetireSupersededSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Daily: deletes the certificates replaced by a new certificate_generation once their grace period ends"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Days(jsii.Number(1))),
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(fn.Function, &awseventstargets.LambdaFunctionProps{
		Event:         awsevents.RuleTargetInput_FromObject(map[string]interface{}{"RequestType": "Retire", "SecretIds": secrets}),
		RetryAttempts: jsii.Number(2),
	}))
	iotcert.Acknowledge(rule, "Serverless-EventBusDLQ",
		"the retirement runs daily and looks at every superseded certificate each time: a missed run delays retirement by a day")
}
