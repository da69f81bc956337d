package stacks

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/rotation"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// rotationGolden is the synthesized workflow with placeholder ARNs: the interpreter test runs exactly this file.
const rotationGolden = "testdata/rotation-workflow.asl.json"

var defaultRotation = sync.OnceValue(func() assertions.Template {
	tpls, _, err := synthApp(nil)
	if err != nil {
		panic(err)
	}
	return tpls["CertRotation"]
})

var namedRotation = sync.OnceValue(func() assertions.Template {
	tpls, _, err := synthApp(map[string]string{"rotation_name": "blue", "rotation_ca_mode": "general_purpose",
		"rotation_validity_days": "30", "rotation_session_seconds": "3600", "SNSSubscriberEmail": "pat_candella@example.org",
		"rotation_host_policies": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "rotation_host_roles": "arn:aws:iam::123456789012:role/app-reader"})
	if err != nil {
		panic(err)
	}
	return tpls["CertRotation-blue"]
})

func TestRotationCA(t *testing.T) {
	tpl := defaultRotation()
	if tpl == nil {
		t.Fatal("no CertRotation stack in the platform app")
	}
	check(t, "root CA, short-lived, the sample's parameters", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ACMPCA::CertificateAuthority"), map[string]interface{}{
			"Type": "ROOT", "UsageMode": "SHORT_LIVED_CERTIFICATE", "KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA",
			"Subject": map[string]interface{}{"Country": "US", "Organization": "Example Corp", "CommonName": "pca.example.com"},
		})
		tpl.HasResourceProperties(jsii.String("AWS::ACMPCA::Certificate"), map[string]interface{}{
			"Validity": map[string]interface{}{"Type": "YEARS", "Value": 10},
		})
	})
	check(t, "CRL bucket: only our CA writes (aws:SourceArn is the CA, aws:SourceAccount this account), public access blocked", func() {
		tpl.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
				"Effect":    "Allow",
				"Principal": map[string]interface{}{"Service": "acm-pca.amazonaws.com"},
				"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{
					"aws:SourceAccount": map[string]interface{}{"Ref": "AWS::AccountId"},
					"aws:SourceArn":     map[string]interface{}{"Fn::GetAtt": []interface{}{"PCA", "Arn"}},
				}},
			})})},
		})
		tpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]interface{}{
			"PublicAccessBlockConfiguration": map[string]interface{}{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
			"NotificationConfiguration":      map[string]interface{}{"EventBridgeConfiguration": map[string]interface{}{"EventBridgeEnabled": true}},
		})
	})
	// CRLs are turned on after the policy names the CA, by UpdateCertificateAuthority, to the bucket with owner ACL.
	res := templateJSON(tpl)["Resources"].(map[string]interface{})
	var crlConf map[string]interface{}
	for id, r := range res {
		if strings.HasPrefix(id, "CRLConfiguration") && r.(map[string]interface{})["Type"] == "Custom::AWS" {
			crlConf = r.(map[string]interface{})
		}
	}
	if crlConf == nil {
		t.Fatal("no CRLConfiguration custom resource")
	}
	create := string(mustJSON(crlConf["Properties"].(map[string]interface{})["Create"]))
	for _, want := range []string{`\"action\":\"UpdateCertificateAuthority\"`, `\"Enabled\":true`, `\"ExpirationInDays\":7`, `BUCKET_OWNER_FULL_CONTROL`, `"Ref":"CRLBucket`} {
		if !strings.Contains(create, want) {
			t.Errorf("CRLConfiguration's call lacks %s: %s", want, create)
		}
	}
	deps := string(mustJSON(crlConf["DependsOn"]))
	for _, want := range []string{"CRLBucketPolicy", "PCAActivation"} {
		if !strings.Contains(deps, want) {
			t.Errorf("CRLConfiguration does not wait for %s: DependsOn %s", want, deps)
		}
	}
	if _, ok := res["PCA"].(map[string]interface{})["Properties"].(map[string]interface{})["RevocationConfiguration"]; ok {
		t.Error("the CA turns CRLs on itself, before the bucket policy can name it")
	}
	// A CRL delivery's lock must outlive the delivery that holds it: the function's timeout is below the lock's term.
	for id, r := range res {
		rm := r.(map[string]interface{})
		if strings.HasPrefix(id, "CRLProcessorLambda") && rm["Type"] == "AWS::Lambda::Function" {
			if timeout, _ := rm["Properties"].(map[string]interface{})["Timeout"].(float64); timeout == 0 || timeout >= rotation.CRLLockSeconds {
				t.Errorf("CRLProcessor timeout %v s, want below the lock's %d s", timeout, rotation.CRLLockSeconds)
			}
		}
	}
	check(t, "CRL processor: verifies against the CA, keeps its record in the CRL table, alarms on refusals", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]interface{}{
			"KeySchema": []interface{}{map[string]interface{}{"AttributeName": "trustAnchorArn", "KeyType": "HASH"}},
		})
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"PCAarn": map[string]interface{}{"Fn::GetAtt": []interface{}{"PCA", "Arn"}}, "CRL_TABLE": map[string]interface{}{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^CRLStateTable"))},
			})},
		})
		tpl.HasResourceProperties(jsii.String("AWS::Logs::MetricFilter"), map[string]interface{}{
			"FilterPattern":         `{ $.event = "CRLRefused" }`,
			"MetricTransformations": []interface{}{assertions.Match_ObjectLike(&map[string]interface{}{"MetricName": "CRLRefusals", "MetricNamespace": "CertRotation"})},
		})
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]interface{}{
			"MetricName": "CRLRefusals", "Threshold": 1,
			"AlarmActions": []interface{}{map[string]interface{}{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^FailedCertRotationSNSTopic"))}},
		})
	})
	// The CA and the table are stateful: their logical ids must not change.
	for _, id := range []string{"PCA", "PCACert", "PCAActivation", "IAMRATA", "IAMRAProfile1"} {
		if _, ok := templateJSON(tpl)["Resources"].(map[string]interface{})[id]; !ok {
			t.Errorf("logical id %s missing", id)
		}
	}
}

// TestRotationServicePrincipalsScoped: every statement of the key's and the topic's policies that allows an AWS
// service carries aws:SourceAccount or aws:SourceArn, and none names events.amazonaws.com (the expiry rule publishes
// through a role): otherwise rules and alarms of any account could mail spoofed failures through the topic.
func TestRotationServicePrincipalsScoped(t *testing.T) {
	for _, tpl := range []assertions.Template{defaultRotation(), namedRotation()} {
		var docs []interface{}
		for _, r := range resourcesOfType(tpl, "AWS::KMS::Key") {
			docs = append(docs, r["KeyPolicy"])
		}
		for _, r := range resourcesOfType(tpl, "AWS::SNS::TopicPolicy") {
			docs = append(docs, r["PolicyDocument"])
		}
		if len(docs) < 2 {
			t.Fatalf("%d key and topic policies, want at least 2", len(docs))
		}
		for _, d := range docs {
			for _, st := range d.(map[string]interface{})["Statement"].([]interface{}) {
				stm := st.(map[string]interface{})
				principal, _ := stm["Principal"].(map[string]interface{})
				if stm["Effect"] != "Allow" || principal["Service"] == nil {
					continue
				}
				text := string(mustJSON(stm))
				if strings.Contains(text, "events.amazonaws.com") {
					t.Errorf("a policy allows events.amazonaws.com: %s", text)
				}
				cond := string(mustJSON(stm["Condition"]))
				if !strings.Contains(cond, "aws:SourceAccount") && !strings.Contains(cond, "aws:SourceArn") {
					t.Errorf("service statement without aws:SourceAccount or aws:SourceArn: %s", text)
				}
			}
		}
	}
}

func TestRotationRolesAnywhere(t *testing.T) {
	tpl := defaultRotation()
	check(t, "trust anchor IAMRA-TA1 on the CA with expiry notifications", func() {
		tpl.HasResourceProperties(jsii.String("AWS::RolesAnywhere::TrustAnchor"), map[string]interface{}{
			"Name": "IAMRA-TA1", "Enabled": true,
			"Source": map[string]interface{}{"SourceType": "AWS_ACM_PCA", "SourceData": map[string]interface{}{"AcmPcaArn": map[string]interface{}{"Fn::GetAtt": []interface{}{"PCA", "Arn"}}}},
			"NotificationSettings": assertions.Match_ArrayWith(&[]interface{}{
				map[string]interface{}{"Enabled": true, "Event": "CA_CERTIFICATE_EXPIRY", "Threshold": 60, "Channel": "ALL"},
				map[string]interface{}{"Enabled": true, "Event": "END_ENTITY_CERTIFICATE_EXPIRY", "Threshold": 1, "Channel": "ALL"},
			}),
		})
	})
	check(t, "profile IAMRA-Profile, 900 s sessions", func() {
		tpl.HasResourceProperties(jsii.String("AWS::RolesAnywhere::Profile"), map[string]interface{}{
			"Name": "IAMRA-Profile", "DurationSeconds": 900, "Enabled": true,
		})
	})
	check(t, "expiry events reach the topic", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]interface{}{
			"EventPattern": map[string]interface{}{"source": []interface{}{"aws.rolesanywhere"}, "detail-type": []interface{}{"Roles Anywhere Certificate Expiration State Change"}},
			"Targets":      assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{"Arn": map[string]interface{}{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^FailedCertRotationSNSTopic"))}})}),
		})
	})
	// The test role: its name carries the region, it has no policy, and only this trust anchor may let a host of
	// the inventory's form assume it.
	roles := resourcesOfType(tpl, "AWS::IAM::Role")
	var role map[string]interface{}
	for _, r := range roles {
		if strings.Contains(string(mustJSON(r["RoleName"])), "IAMRA-Role-") {
			role = r
		}
	}
	if role == nil {
		t.Fatal("no role named IAMRA-Role-<region>")
	}
	if _, ok := role["Policies"]; ok {
		t.Errorf("IAMRA-Role has inline policies: %s", mustJSON(role["Policies"]))
	}
	stmts := role["AssumeRolePolicyDocument"].(map[string]interface{})["Statement"].([]interface{})
	actions := map[string]bool{}
	for _, s := range stmts {
		st := s.(map[string]interface{})
		cond := string(mustJSON(st["Condition"]))
		if !strings.Contains(cond, `"aws:SourceArn":{"Fn::GetAtt":["IAMRATA","TrustAnchorArn"]}`) ||
			!strings.Contains(cond, `["i-????????","i-?????????????????","mi-?????????????????"]`) {
			t.Errorf("trust statement without the trust-anchor and CN conditions: %s", mustJSON(st))
		}
		switch a := st["Action"].(type) {
		case string:
			actions[a] = true
		case []interface{}:
			for _, x := range a {
				actions[x.(string)] = true
			}
		}
	}
	for _, a := range []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"} {
		if !actions[a] {
			t.Errorf("trust policy lacks %s", a)
		}
	}
	// A CN pattern of the trust policy accepts exactly what the host-id pattern accepts (length and prefix).
	for _, id := range []string{"i-1234abcd", "i-0123456789abcdef0", "mi-0123456789abcdef0"} {
		if !rotation.ValidHostID(id) || !cnLike(id) {
			t.Errorf("host id %s: ValidHostID %v, trust policy %v", id, rotation.ValidHostID(id), cnLike(id))
		}
	}
	for _, id := range []string{"i-123", "mi-0123", "x-1234abcd", "i-0123456789abcdef01"} {
		if cnLike(id) {
			t.Errorf("trust policy accepts CN %q", id)
		}
	}
}

// cnLike applies the trust policy's StringLike patterns ('?' is one character).
func cnLike(cn string) bool {
	for _, p := range []string{"i-????????", "i-?????????????????", "mi-?????????????????"} {
		if regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\?`, ".") + "$").MatchString(cn) {
			return true
		}
	}
	return false
}

func TestRotationInventoryAndSchedule(t *testing.T) {
	tpl := defaultRotation()
	check(t, "table certificates: key hostID, CMK, PITR, sharded renewAt index", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]interface{}{
			"TableName":                        "certificates",
			"KeySchema":                        []interface{}{map[string]interface{}{"AttributeName": "hostID", "KeyType": "HASH"}},
			"SSESpecification":                 map[string]interface{}{"SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^Key")), "Arn"}}},
			"PointInTimeRecoverySpecification": map[string]interface{}{"PointInTimeRecoveryEnabled": true},
			"GlobalSecondaryIndexes": []interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
				"IndexName": "renewAt-index",
				"KeySchema": []interface{}{
					map[string]interface{}{"AttributeName": "renewShard", "KeyType": "HASH"},
					map[string]interface{}{"AttributeName": "renewAt", "KeyType": "RANGE"},
				},
			})},
		})
	})
	check(t, "CertCheckSchedule: the sample's cron with a 15-minute flexible window, to CertCheck-Trigger", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Scheduler::Schedule"), map[string]interface{}{
			"Name": "CertCheckSchedule", "ScheduleExpression": "cron(15 3,15 * * ? *)",
			"FlexibleTimeWindow": map[string]interface{}{"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
			"Target":             assertions.Match_ObjectLike(&map[string]interface{}{"Arn": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CertTriggerLambda")), "Arn"}}}),
		})
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"FunctionName": "CertCheck-Trigger",
			"Environment":  map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{"STATE_MACHINE_ARN": assertions.Match_AnyValue()})},
		})
	})
	check(t, "topic FailedCertRotationTopic, encrypted; CRL objects go to CRLProcessor", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]interface{}{
			"TopicName": "FailedCertRotationTopic", "KmsMasterKeyId": assertions.Match_AnyValue(),
		})
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{"FunctionName": "CRLProcessor"})
		// Only this stack's rule, in this account, may invoke it (the sample's permission had no SourceArn).
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]interface{}{
			"Principal":     "events.amazonaws.com",
			"FunctionName":  map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CRLProcessorLambda")), "Arn"}},
			"SourceArn":     map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CRLBucketEventBridgeRule")), "Arn"}},
			"SourceAccount": map[string]interface{}{"Ref": "AWS::AccountId"},
		})
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]interface{}{
			"EventPattern": map[string]interface{}{
				"source": []interface{}{"aws.s3"}, "detail-type": []interface{}{"Object Created"},
				"detail": map[string]interface{}{
					"bucket": map[string]interface{}{"name": []interface{}{map[string]interface{}{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^CRLBucket"))}}},
					"object": map[string]interface{}{"key": []interface{}{map[string]interface{}{"wildcard": "crl/*.crl"}}},
				},
			},
		})
	})
	check(t, "hand-written host items reach the normalizer from the table's stream", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]interface{}{
			"StreamSpecification": map[string]interface{}{"StreamViewType": "NEW_IMAGE"},
		})
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]interface{}{
			"EventSourceArn":             map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^DynamoDBCertificateTable")), "StreamArn"}},
			"FilterCriteria":             map[string]interface{}{"Filters": []interface{}{map[string]interface{}{"Pattern": `{"eventName":["INSERT","MODIFY"]}`}}},
			"DestinationConfig":          map[string]interface{}{"OnFailure": map[string]interface{}{"Destination": assertions.Match_AnyValue()}},
			"BisectBatchOnFunctionError": true,
		})
		tpl.HasResourceProperties(jsii.String("AWS::Logs::MetricFilter"), map[string]interface{}{
			"FilterPattern": `{ $.msg = "host item refused" }`,
		})
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]interface{}{
			"MetricName": "InvalidHostItems", "Namespace": MetricsNamespace, "Threshold": 1,
		})
	})
	check(t, "seven alarms (five of the workflow, one of hand-written host items, one of refused CRLs), each notifying the topic", func() {
		tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(7))
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]interface{}{
			"MetricName": "StaleHosts", "Namespace": MetricsNamespace, "Threshold": 1, "Period": 43200,
			"ComparisonOperator": "GreaterThanOrEqualToThreshold",
		})
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]interface{}{
			"MetricName": "IssuedCertificates", "Namespace": MetricsNamespace, "Threshold": 800000,
		})
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]interface{}{
			"MetricName": "MatchedEvents", "Namespace": "AWS/Events", "Threshold": 1,
			"Dimensions": []interface{}{map[string]interface{}{"Name": "RuleName", "Value": map[string]interface{}{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^CertificateExpiryRule"))}}},
		})
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]interface{}{
			"MetricName": "CADaysLeft", "Namespace": MetricsNamespace, "Threshold": 90, "ComparisonOperator": "LessThanThreshold", "Period": 86400,
		})
		tpl.HasResourceProperties(jsii.String("AWS::Logs::MetricFilter"), map[string]interface{}{
			"FilterPattern": `{ $.type = "ExecutionFailed" }`,
		})
	})
	outputs := templateJSON(tpl)["Outputs"].(map[string]interface{})
	for id, export := range map[string]string{
		"IAMRATrustAnchorARN": "IAMRATrustAnchorARN", "IAMRAProfileARN": "IAMRAProfileARN", "IAMRARoleARN": "IAMRARoleARN", "PCAARN": "PCA-ARN",
		"CertificatesTableName": "CertRotation-CertificatesTable", "StateMachineArn": "CertRotation-StateMachine",
	} {
		o, ok := outputs[id].(map[string]interface{})
		if !ok {
			t.Errorf("output %s missing", id)
			continue
		}
		if got := o["Export"].(map[string]interface{})["Name"]; got != export {
			t.Errorf("output %s exported as %v, want %s", id, got, export)
		}
	}
}

func TestRotationNamed(t *testing.T) {
	tpl := namedRotation()
	if tpl == nil {
		t.Fatal("rotation_name=blue did not define CertRotation-blue")
	}
	check(t, "every fixed name carries the suffix", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ACMPCA::CertificateAuthority"), map[string]interface{}{"UsageMode": "GENERAL_PURPOSE"})
		tpl.HasResourceProperties(jsii.String("AWS::RolesAnywhere::TrustAnchor"), map[string]interface{}{"Name": "IAMRA-TA1-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::RolesAnywhere::Profile"), map[string]interface{}{"Name": "IAMRA-Profile-blue", "DurationSeconds": 3600})
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]interface{}{"TableName": "certificates-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]interface{}{"TopicName": "FailedCertRotationTopic-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::Scheduler::Schedule"), map[string]interface{}{"Name": "CertCheckSchedule-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{"FunctionName": "CertCheck-Trigger-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{"FunctionName": "CRLProcessor-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), map[string]interface{}{"StateMachineName": "CertRotation-Workflow-blue"})
		tpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]interface{}{"RoleName": map[string]interface{}{
			"Fn::Join": []interface{}{"", []interface{}{"IAMRA-Role-", map[string]interface{}{"Ref": "AWS::Region"}, "-blue"}}}})
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]interface{}{"Protocol": "email", "Endpoint": "pat_candella@example.org"})
	})
	check(t, "the profile vends the test role, the host role of rotation_host_policies and the roles of rotation_host_roles", func() {
		tpl.HasResourceProperties(jsii.String("AWS::RolesAnywhere::Profile"), map[string]interface{}{"RoleArns": []interface{}{
			map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^IAMRARole")), "Arn"}},
			map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^IAMRAHostRole")), "Arn"}},
			"arn:aws:iam::123456789012:role/app-reader",
		}})
		tpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]interface{}{
			"ManagedPolicyArns": []interface{}{"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"},
			"AssumeRolePolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
				"Action": "sts:AssumeRole", "Principal": map[string]interface{}{"Service": "rolesanywhere.amazonaws.com"},
				"Condition": map[string]interface{}{
					"ArnEquals":  map[string]interface{}{"aws:SourceArn": map[string]interface{}{"Fn::GetAtt": []interface{}{"IAMRATA", "TrustAnchorArn"}}},
					"StringLike": map[string]interface{}{"aws:PrincipalTag/x509Subject/CN": []interface{}{"i-????????", "i-?????????????????", "mi-?????????????????"}},
				},
			})})},
		})
	})
	for _, o := range templateJSON(tpl)["Outputs"].(map[string]interface{}) {
		if name := o.(map[string]interface{})["Export"].(map[string]interface{})["Name"].(string); !strings.HasSuffix(name, "-blue") {
			t.Errorf("export %s lacks the rotation name", name)
		}
	}
}

// TestRotationDocuments: every document parameter is pattern-checked and reaches the script only as an environment
// variable; the scripts hold no {{ }} interpolation and stop on an unset variable.
func TestRotationDocuments(t *testing.T) {
	docs := resourcesOfType(defaultRotation(), "AWS::SSM::Document")
	if len(docs) != 2 {
		t.Fatalf("%d SSM documents, want 2", len(docs))
	}
	for id, d := range docs {
		if d["DocumentType"] != "Command" {
			t.Errorf("%s: DocumentType %v", id, d["DocumentType"])
		}
		content := d["Content"].(map[string]interface{})
		params := content["parameters"].(map[string]interface{})
		for name, p := range params {
			pm := p.(map[string]interface{})
			if pat, _ := pm["allowedPattern"].(string); pat == "" {
				t.Errorf("%s: parameter %s has no allowedPattern", id, name)
			} else if _, err := regexp.Compile(pat); err != nil {
				t.Errorf("%s: parameter %s: %v", id, name, err)
			}
			if pm["interpolationType"] != "ENV_VAR" {
				t.Errorf("%s: parameter %s interpolationType %v, want ENV_VAR", id, name, pm["interpolationType"])
			}
		}
		for _, step := range content["mainSteps"].([]interface{}) {
			lines := step.(map[string]interface{})["inputs"].(map[string]interface{})["runCommand"].([]interface{})
			var script strings.Builder
			for _, l := range lines {
				script.WriteString(l.(string) + "\n")
			}
			text := script.String()
			if strings.Contains(text, "{{") {
				t.Errorf("%s: script contains {{: SSM would paste parameter text into it", id)
			}
			if !regexp.MustCompile(`(?m)^set -[a-z]*u`).MatchString(text) {
				t.Errorf("%s: script does not stop on an unset variable (set -u)", id)
			}
			for name := range params {
				if !strings.Contains(text, "SSM_"+name) {
					t.Errorf("%s: parameter %s is never read as $SSM_%s", id, name, name)
				}
			}
		}
	}
}

// TestRotationWorkflow checks what the interpreter cannot run (distributed mode, ItemReader, ResultWriter) and the
// IAM behind the service integrations, and keeps the golden definition the interpreter test runs.
func TestRotationWorkflow(t *testing.T) {
	tpl := defaultRotation()
	sms := resourcesOfType(tpl, "AWS::StepFunctions::StateMachine")
	if len(sms) != 1 {
		t.Fatalf("%d state machines, want 1", len(sms))
	}
	var sm map[string]interface{}
	for _, v := range sms {
		sm = v
	}
	def := renderRotationDefinition(t, sm)
	var asl map[string]interface{}
	if err := json.Unmarshal(def, &asl); err != nil {
		t.Fatalf("definition is not JSON: %v", err)
	}
	m := asl["States"].(map[string]interface{})[stRotateHosts].(map[string]interface{})
	if got := m["ItemProcessor"].(map[string]interface{})["ProcessorConfig"]; string(mustJSON(got)) != `{"ExecutionType":"STANDARD","Mode":"DISTRIBUTED"}` {
		t.Errorf("ProcessorConfig = %s, want a distributed Map of standard executions", mustJSON(got))
	}
	if got := m["ItemReader"].(map[string]interface{})["Resource"]; got != "arn:aws:states:::s3:getObject" {
		t.Errorf("ItemReader = %v", got)
	}
	if got := m["ResultWriter"].(map[string]interface{})["Parameters"].(map[string]interface{})["Bucket"]; got != "manifest-bucket" {
		t.Errorf("ResultWriter bucket = %v", got)
	}
	// Each host in flight issues at most once, so MaxConcurrency bounds concurrent IssueCertificate calls.
	if c := m["MaxConcurrency"].(float64); c < 1 || c > 25 {
		t.Errorf("MaxConcurrency %v is not under Private CA's IssueCertificate rate (25/s)", c)
	}
	// Issuance is a Go step: the SDK retries Private CA's throttling and carries the CSR as its own blob.
	issue := m["ItemProcessor"].(map[string]interface{})["States"].(map[string]interface{})[stIssueCertificate].(map[string]interface{})
	if issue["Resource"] != placeholders[subIssue] {
		t.Errorf("IssueCertificate = %s, want the Issue function", mustJSON(issue))
	}
	if strings.Contains(string(def), "aws-sdk:acmpca") || strings.Contains(string(def), ":::dynamodb:") {
		t.Error("the workflow calls Private CA or the table itself: those calls belong to the Go steps")
	}

	// The role names IAM actions as IAM spells them: acm-pca, never the SDK's acmpca.
	tplText := string(mustJSON(templateJSON(tpl)["Resources"]))
	if strings.Contains(tplText, `"acmpca:`) {
		t.Error("template grants an acmpca: action (IAM's prefix is acm-pca)")
	}
	check(t, "the issue function may issue with the client-auth template only", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
				"Action":    "acm-pca:IssueCertificate",
				"Resource":  map[string]interface{}{"Fn::GetAtt": []interface{}{"PCA", "Arn"}},
				"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"acm-pca:TemplateArn": assertions.Match_AnyValue()}},
			})})},
		})
	})

	golden := filepath.Join(rotationGolden)
	if *update {
		if err := os.WriteFile(golden, def, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./stacks -run TestRotationWorkflow -update)", err)
	}
	if !bytes.Equal(def, want) {
		t.Errorf("synthesized workflow differs from %s: run go test ./stacks -run TestRotationWorkflow -update and review the diff", golden)
	}
}

// placeholders stand for the deployed ARNs and names in the golden definition; the interpreter test binds tasks by
// state name, so the values only need to be recognisable.
var placeholders = map[string]string{
	subSelectFunction: "arn:aws:lambda:us-east-1:123456789012:function:rotationselect",
	subSendCSR:        "arn:aws:lambda:us-east-1:123456789012:function:rotationcsr",
	subCommandResult:  "arn:aws:lambda:us-east-1:123456789012:function:rotationresult",
	subCheckCSR:       "arn:aws:lambda:us-east-1:123456789012:function:rotationcheck",
	subIssue:          "arn:aws:lambda:us-east-1:123456789012:function:rotationissue",
	subGetCertificate: "arn:aws:lambda:us-east-1:123456789012:function:rotationcert",
	subSendInstall:    "arn:aws:lambda:us-east-1:123456789012:function:rotationinstall",
	subRecord:         "arn:aws:lambda:us-east-1:123456789012:function:rotationrecord",
	subNotifyFailure:  "arn:aws:lambda:us-east-1:123456789012:function:rotationnotify",
	subNotifyRun:      "arn:aws:lambda:us-east-1:123456789012:function:rotationnotifyrun",
	subTopic:          "arn:aws:sns:us-east-1:123456789012:FailedCertRotationTopic",
	subManifestBucket: "manifest-bucket",
	subRotation:       "default",
}

// renderDefinition turns the template's DefinitionString (a string or an Fn::Join) and DefinitionSubstitutions into
// the definition with placeholder values, indented for review.
func renderRotationDefinition(t *testing.T, sm map[string]interface{}) []byte {
	t.Helper()
	var text string
	switch d := sm["DefinitionString"].(type) {
	case string:
		text = d
	case map[string]interface{}:
		join := d["Fn::Join"].([]interface{})
		for _, part := range join[1].([]interface{}) {
			s, ok := part.(string)
			if !ok {
				t.Fatalf("definition embeds a token %s: pass it as a substitution", mustJSON(part))
			}
			text += s
		}
	}
	subs, _ := sm["DefinitionSubstitutions"].(map[string]interface{})
	names := make([]string, 0, len(subs))
	for k := range subs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, ok := placeholders[k]
		if !ok {
			t.Fatalf("substitution %s has no placeholder", k)
		}
		text = strings.ReplaceAll(text, "${"+k+"}", v)
	}
	if i := strings.Index(text, "${"); i >= 0 {
		t.Fatalf("definition keeps an unsubstituted %s", text[i:min(len(text), i+40)])
	}
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(text), "", "  "); err != nil {
		t.Fatalf("definition: %v", err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestRotationContext(t *testing.T) {
	bad := []struct{ key, value, want string }{
		{"rotation_name", "a b", `context rotation_name must be 1 to 16 letters`},
		{"rotation_ca_mode", "forever", `context rotation_ca_mode must be short_lived or general_purpose, got "forever"`},
		{"rotation_validity_days", "8", `must be from 1 to 7 days in short_lived mode, got 8`},
		{"rotation_renew_percent", "90", `leaves 17 hours to renew`},
		{"KeyAlgorithm", "DSA", `context KeyAlgorithm must be one of`},
		{"SigningAlgorithm", "SHA256WITHECDSA", `cannot sign with a RSA key`},
		{"CertPath", "/tmp/$(reboot)", `"/tmp/$(reboot)"`},
		{"KeyPath", "/etc/../root", `"/etc/../root"`},
		{"SNSSubscriberEmail", "a@b.c, x@y.z", `context SNSSubscriberEmail must be one email address`},
		{"rotation_session_seconds", "60", `context rotation_session_seconds must be a whole number from 900 to 43200, got "60"`},
		{"rotation_host_key_algorithm", "RSA_1024", `must be RSA_2048 or EC_prime256v1, got "RSA_1024"`},
		{"CACountry", "USA", `context CACountry must be a two-letter country code, got "USA"`},
		// The sample's deploy: its CSRPath is refused with what replaced it, its /tmp directories with the way out.
		{"CSRPath", "/tmp", `context CSRPath ("/tmp") is the sample's CSR directory and is not used`},
		{"CertPath", "/tmp", `context CertPath "/tmp" is in /tmp, which every local user may write: use a directory only root can write, such as /etc/pki/iamra`},
		{"KeyPath", "/tmp", `every local user may write`},
		{"rotation_host_roles", "app-reader", `context rotation_host_roles: "app-reader" is not an IAM role ARN`},
		{"rotation_host_policies", "arn:aws:iam::aws:policy/AdministratorAccess", `would give every host the account`},
		{"rotation_host_policies", "AmazonS3ReadOnlyAccess", `is not a managed policy ARN`},
	}
	for _, c := range bad {
		_, err := rotationPropsFromContext(ctxOf(map[string]string{c.key: c.value}))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rotationPropsFromContext(%s=%q) = %v, want an error containing %q", c.key, c.value, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error for %s is not one line: %q", c.key, err)
		}
	}
	// The constructor refuses the same values with a one-line message naming the stack, before defining anything.
	app := newTestApp(t, nil)
	for _, props := range []*RotationStackProps{{CAMode: "forever"}, {Name: "has space"}, {KeyPath: "/tmp/`id`"}, {ValidityDays: 30}} {
		msg := panicMessage(func() { NewRotationStack(app, "CertRotation-bad", props) })
		if !strings.HasPrefix(msg, "CertRotation-bad: ") || strings.Contains(msg, "\n") {
			t.Errorf("NewRotationStack(%+v) panicked with %q, want one line naming the stack", props, msg)
		}
	}
	if n := len(*app.Node().Children()); n != 0 {
		t.Errorf("refused props left %d constructs in the app", n)
	}
	p, err := rotationPropsFromContext(ctxOf(map[string]string{"rotation_ca_mode": "general_purpose", "rotation_validity_days": "30", "KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA"}))
	if err != nil {
		t.Fatalf("general-purpose, 30 days, EC CA: %v", err)
	}
	if p.ValidityDays != 30 || p.CAMode != CAModeGeneral {
		t.Errorf("props = %+v", p)
	}
}

// envPlaceholders stand for the deployed values of the functions' environment (the template holds references);
// each has the form its function checks at init.
var envPlaceholders = map[string]string{
	"PCAarn":              "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555",
	"IAMRAProfileARN":     "arn:aws:rolesanywhere:us-east-1:123456789012:profile/11111111-2222-3333-4444-555555555555",
	"IAMRATrustAnchorARN": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/11111111-2222-3333-4444-666666666666",
	"IAMRARoleARN":        "arn:aws:iam::123456789012:role/IAMRA-Role-us-east-1",
	"SNS_TOPIC_ARN":       placeholders[subTopic],
	"STATE_MACHINE_ARN":   "arn:aws:states:us-east-1:123456789012:stateMachine:CertRotation-Workflow",
}

// TestRotationFunctionsStart starts every function of the stack, built for this machine, with the environment the
// template gives it: each must get past its configuration check (it then stops only for want of the Lambda runtime
// API). This is the contract between the stack's environment and the handlers' requirements.
func TestRotationFunctionsStart(t *testing.T) {
	tpl := defaultRotation()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./lambdas/rotationstep", "./lambdas/rotationselect", "./lambdas/rotationtrigger", "./lambdas/crlprocessor", "./lambdas/rotationnormalize")
	build.Dir = iotcert.ModuleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the rotation functions: %v\n%s", err, out)
	}
	// The functions by construct id (the handler each runs is the stack's choice).
	handlers := map[string]string{"SelectFunction": "rotationselect", "CertTriggerLambda": "rotationtrigger", "CRLProcessorLambda": "crlprocessor",
		"NormalizeFunction": "rotationnormalize"}
	for _, st := range rotationSteps {
		handlers[st.id] = "rotationstep"
	}
	res, _ := templateJSON(tpl)["Resources"].(map[string]interface{})
	n := 0
	for id, r := range res {
		rm := r.(map[string]interface{})
		if rm["Type"] != "AWS::Lambda::Function" {
			continue
		}
		handler := ""
		for prefix, h := range handlers {
			if strings.HasPrefix(id, prefix) {
				handler = h
			}
		}
		if handler == "" {
			continue
		}
		n++
		vars, _ := rm["Properties"].(map[string]interface{})["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_REGION=us-east-1"}
		for k, v := range vars {
			s, literal := v.(string)
			if !literal {
				if s = envPlaceholders[k]; s == "" {
					s = "placeholder-" + strings.ToLower(k)
				}
			}
			env = append(env, k+"="+s)
		}
		cmd := exec.Command(filepath.Join(bin, handler))
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "init failed") || !strings.Contains(string(out), "AWS_LAMBDA_RUNTIME_API") {
			t.Errorf("%s (%s) does not start with its template environment %v:\n%s", id, handler, env[3:], out)
		}
	}
	if n != 13 {
		t.Errorf("started %d rotation functions, want 13 (9 steps, selection, trigger, CRL processor, normalizer)", n)
	}
}
