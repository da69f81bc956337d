package stacks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/selection"
)

// grant is one IAM statement in a comparable form: actions sorted and joined, resources flattened to text (Ref X
// is "${X}", Fn::GetAtt X.Arn is "${X.Arn}", Fn::Join is joined, logical ids without their hash suffix), and the
// condition as compact JSON.
type grant struct {
	Effect    string
	Actions   string
	Resources string
	Condition string
}

func (g grant) String() string {
	s := fmt.Sprintf("%s %s on %s", g.Effect, g.Actions, g.Resources)
	if g.Condition != "" {
		s += " if " + g.Condition
	}
	return s
}

// roleGrants returns the statements of every AWS::IAM::Policy attached to the role whose logical id starts with
// rolePrefix, sorted.
func roleGrants(tpl assertions.Template, rolePrefix string) []string {
	var out []string
	for _, props := range resourcesOfType(tpl, "AWS::IAM::Policy") {
		attached := false
		roles, _ := props["Roles"].([]interface{})
		for _, r := range roles {
			if ref, _ := r.(map[string]interface{})["Ref"].(string); strings.HasPrefix(ref, rolePrefix) {
				attached = true
			}
		}
		if !attached {
			continue
		}
		doc, _ := props["PolicyDocument"].(map[string]interface{})
		stmts, _ := doc["Statement"].([]interface{})
		for _, s := range stmts {
			out = append(out, statementGrant(s.(map[string]interface{})).String())
		}
	}
	sort.Strings(out)
	return out
}

func statementGrant(s map[string]interface{}) grant {
	g := grant{Effect: fmt.Sprint(s["Effect"])}
	var actions []string
	switch a := s["Action"].(type) {
	case string:
		actions = []string{a}
	case []interface{}:
		for _, x := range a {
			actions = append(actions, fmt.Sprint(x))
		}
	}
	sort.Strings(actions)
	g.Actions = strings.Join(actions, ",")
	var res []string
	switch r := s["Resource"].(type) {
	case []interface{}:
		for _, x := range r {
			res = append(res, flatText(x))
		}
	default:
		res = []string{flatText(r)}
	}
	sort.Strings(res)
	g.Resources = strings.Join(res, " ")
	if c, ok := s["Condition"]; ok {
		g.Condition = flatText(c)
	}
	return g
}

// flatText renders a template value with intrinsics as text, dropping the hash suffix of logical ids.
func flatText(v interface{}) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]interface{}:
		if len(t) == 1 {
			for k, a := range t {
				switch k {
				case "Ref":
					return "${" + trimHash(fmt.Sprint(a)) + "}"
				case "Fn::GetAtt":
					parts, _ := a.([]interface{})
					if len(parts) == 2 {
						return "${" + trimHash(fmt.Sprint(parts[0])) + "." + fmt.Sprint(parts[1]) + "}"
					}
				case "Fn::Join":
					parts, _ := a.([]interface{})
					if len(parts) == 2 {
						items, _ := parts[1].([]interface{})
						var b []string
						for _, x := range items {
							b = append(b, flatText(x))
						}
						return strings.Join(b, fmt.Sprint(parts[0]))
					}
				}
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b []string
		for _, k := range keys {
			b = append(b, fmt.Sprintf("%q:%s", k, flatText(t[k])))
		}
		return "{" + strings.Join(b, ",") + "}"
	case []interface{}:
		var b []string
		for _, x := range t {
			b = append(b, flatText(x))
		}
		return "[" + strings.Join(b, ",") + "]"
	default:
		j, _ := json.Marshal(t)
		return string(j)
	}
}

// trimHash drops the 8-hex-digit suffix CDK adds to logical ids.
func trimHash(id string) string {
	if n := len(id); n > 8 && strings.Trim(id[n-8:], "0123456789ABCDEF") == "" {
		return id[:n-8]
	}
	return id
}

// checkGrants compares a role's statements with want, line by line.
func checkGrants(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s grants:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const iotARN = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"

// The per-thing function: what it calls, on its own thing, secret and key; the key only through Secrets Manager.
func TestThingFunctionGrants(t *testing.T) {
	tpl, _ := defaultThing()
	checkGrants(t, "per-thing function", roleGrants(tpl, "ThingCertificateFunction"), []string{
		"Allow iot:CreateCertificateFromCsr,xray:PutTelemetryRecords,xray:PutTraceSegments on *",
		"Allow iot:DeleteCertificate,iot:DescribeCertificate,iot:DetachPolicy,iot:ListAttachedPolicies,iot:ListPrincipalThings,iot:UpdateCertificate on " + iotARN + "cert/*",
		"Allow iot:DetachThingPrincipal on " + iotARN + "thing/device1234",
		`Allow kms:Decrypt,kms:GenerateDataKey on ${SecretKey.Arn} if {"StringEquals":{"kms:ViaService":secretsmanager.${AWS::Region}.amazonaws.com}}`,
		"Allow logs:CreateLogStream,logs:PutLogEvents on ${ThingCertificateFunctionLogs.Arn}",
		"Allow secretsmanager:GetSecretValue,secretsmanager:PutSecretValue on ${PrivateKeySecret}",
	})
}

// The fleet function: the fleet's secrets by name prefix, and the key only through Secrets Manager.
func TestFleetFunctionGrants(t *testing.T) {
	tpls, _, err := synthApp(map[string]string{"thing_names": "pump-1,pump-2"})
	if err != nil {
		t.Fatal(err)
	}
	checkGrants(t, "fleet function", roleGrants(tpls["thing-fleet-1"], "ThingCertificateFunction"), []string{
		"Allow iot:CreateCertificateFromCsr,xray:PutTelemetryRecords,xray:PutTraceSegments on *",
		"Allow iot:DeleteCertificate,iot:DescribeCertificate,iot:DetachPolicy,iot:ListAttachedPolicies,iot:ListPrincipalThings,iot:UpdateCertificate on " + iotARN + "cert/*",
		"Allow iot:DetachThingPrincipal on " + iotARN + "thing/*",
		`Allow kms:Decrypt,kms:GenerateDataKey on ${SecretKey.Arn} if {"StringEquals":{"kms:ViaService":secretsmanager.${AWS::Region}.amazonaws.com}}`,
		"Allow logs:CreateLogStream,logs:PutLogEvents on ${ThingCertificateFunctionLogs.Arn}",
		"Allow secretsmanager:GetSecretValue,secretsmanager:PutSecretValue on arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:thing-fleet/*",
	})
}

// vendingGrants are the authorizer's and the registration function's grants; things is the thing ARN pattern.
func vendingGrants(things string) (authorizer, registrar []string) {
	ssm := "Allow ssm:GetParametersByPath on arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/multa-cvm/"
	return []string{
			"Allow dynamodb:GetItem on ${Registrations.Arn}",
			"Allow logs:CreateLogStream,logs:PutLogEvents on ${AuthorizerFunctionLogs.Arn}",
			"Allow secretsmanager:GetSecretValue on ${DeviceTokens}",
			ssm + "%s/config-parameters",
			"Allow xray:PutTelemetryRecords,xray:PutTraceSegments on *",
		}, []string{
			"Allow dynamodb:BatchGetItem,dynamodb:BatchWriteItem,dynamodb:ConditionCheckItem,dynamodb:DeleteItem,dynamodb:DescribeTable,dynamodb:GetItem," +
				"dynamodb:GetRecords,dynamodb:GetShardIterator,dynamodb:PutItem,dynamodb:Query,dynamodb:Scan,dynamodb:UpdateItem on ${Registrations.Arn}",
			"Allow iot:AttachPolicy,iot:DeleteCertificate,iot:DescribeCertificate,iot:DetachPolicy,iot:UpdateCertificate on " + iotARN + "cert/*",
			"Allow iot:AttachThingPrincipal,iot:CreateThing,iot:DeleteThing,iot:DescribeThing,iot:DetachThingPrincipal on " + iotARN + "thing/" + things,
			"Allow iot:CreateCertificateFromCsr,iot:CreateKeysAndCertificate,iot:ListThingTypes,xray:PutTelemetryRecords,xray:PutTraceSegments on *",
			"Allow iot:CreateThing on " + iotARN + "thingtype/CvmGenericType",
			"Allow iot:GetPolicy on " + iotARN + "policy/multa_backend_policy_%s",
			"Allow logs:CreateLogStream,logs:PutLogEvents on ${RegisterFunctionLogs.Arn}",
			ssm + "%s/config-parameters",
		}
}

func withEnv(lines []string, env string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.ReplaceAll(l, "%s", env)
	}
	return out
}

// apiInvokePermissions are the SourceArns allowed to invoke the vending functions: the stage's two methods and the
// authorizer, never the console's test-invoke-stage (which skips the authorizer).
func apiInvokePermissions(tpl assertions.Template) []string {
	var out []string
	for _, p := range resourcesOfType(tpl, "AWS::Lambda::Permission") {
		out = append(out, flatText(p["FunctionName"])+" from "+flatText(p["SourceArn"]))
	}
	sort.Strings(out)
	return out
}

func TestVendingGrants(t *testing.T) {
	tpl, _ := defaultVending()
	auth, reg := vendingGrants("*")
	checkGrants(t, "authorizer", roleGrants(tpl, "AuthorizerFunction"), withEnv(auth, "dev"))
	checkGrants(t, "registration function", roleGrants(tpl, "RegisterFunction"), withEnv(reg, "dev"))
	api := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/"
	checkGrants(t, "API invoke permissions", apiInvokePermissions(tpl), []string{
		"${AuthorizerFunction.Arn} from " + api + "authorizers/${DeviceTokenAuthorizer}",
		"${RegisterFunction.Arn} from " + api + "${ApiDeploymentStageprod}/GET/",
		"${RegisterFunction.Arn} from " + api + "${ApiDeploymentStageprod}/POST/register",
	})
}

// An environment with a thing-name prefix: the registration function may touch only things of that prefix, the API
// model refuses other names, and the function is told the prefix and the SAN setting.
func TestVendingThingNamePrefix(t *testing.T) {
	sel, err := selection.Select(ctxOf(nil), ctxOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	app := newTestApp(t, map[string]interface{}{"environments": map[string]interface{}{
		"prod": map[string]interface{}{"thing_name_prefix": "sensor-", "csr_allow_sans": true},
	}})
	if err := Define(app, sel, ctxOf(nil)); err != nil {
		t.Fatal(err)
	}
	stack := app.Node().TryFindChild(jsii.String("CertVending-prod")).(awscdk.Stack)
	tpl := assertions.Template_FromStack(stack, nil)
	_, reg := vendingGrants("sensor-*")
	checkGrants(t, "registration function (prefix sensor-)", roleGrants(tpl, "RegisterFunction"), withEnv(reg, "prod"))
	check(t, "model allows only the prefix", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Model"), map[string]interface{}{
			"Schema": assertions.Match_ObjectLike(&map[string]interface{}{
				"properties": assertions.Match_ObjectLike(&map[string]interface{}{
					"thingName": map[string]interface{}{"type": "string", "pattern": "^sensor-[a-zA-Z0-9:_-]{0,121}$"},
				}),
			}),
		})
	})
	check(t, "function environment", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"THING_NAME_PREFIX": "sensor-", "CSR_ALLOW_SANS": "true",
			})},
		})
	})
	for _, bad := range []string{"a/b", strings.Repeat("p", 65)} {
		_, err := vendingEnvironments(map[string]interface{}{"prod": map[string]interface{}{"thing_name_prefix": bad}})
		if err == nil || !strings.Contains(err.Error(), "thing_name_prefix") || !strings.Contains(err.Error(), bad) {
			t.Errorf("vendingEnvironments(thing_name_prefix %q) = %v, want an error naming it", bad, err)
		}
	}
}

// Thing names the certificate's CN cannot hold are refused at synth, for one thing and for a fleet.
func TestThingNameBoundAtSynth(t *testing.T) {
	long := strings.Repeat("t", 65)
	for _, ctx := range []map[string]string{{"thing_name": long, "stack_name": "long-thing"}, {"thing_names": "ok-1," + long}} {
		_, _, err := synthApp(ctx)
		if err == nil || !strings.Contains(err.Error(), "is 65 characters: a certificate's common name holds at most 64") {
			t.Errorf("synth %v = %v, want the common-name bound", ctx, err)
		}
	}
}

// The cross-account signer: describe, update and detach the partner's certificate, detach things attached to it
// outside the stack, and remember issued certificates under its own stack's parameter path.
func TestSignerGrants(t *testing.T) {
	tpl, _ := defaultCrossAccount()
	checkGrants(t, "signer", roleGrants(tpl, "CertificateSignerFunction"), []string{
		"Allow iot:DescribeCertificate,iot:DetachPolicy,iot:ListAttachedPolicies,iot:ListPrincipalThings,iot:UpdateCertificate on " + iotARN + "cert/*",
		"Allow iot:DescribeEndpoint,xray:PutTelemetryRecords,xray:PutTraceSegments on *",
		"Allow iot:DetachThingPrincipal on " + iotARN + "thing/*",
		"Allow logs:CreateLogStream,logs:PutLogEvents on ${CertificateSignerFunctionLogs.Arn}",
		"Allow ssm:DeleteParameter,ssm:GetParameter,ssm:PutParameter on arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/iotcert/certsigner/certificate-based-stack/*",
	})
}
