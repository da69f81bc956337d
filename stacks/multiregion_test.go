package stacks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/crossregion"
	"github.com/iotcert/iotcert/policies"
)

const (
	primaryStack = "IotMultiRegion-Primary"
	replicaStack = "IotMultiRegion-Replica-us-east-1"
)

func mrTestdata(name string) string { return filepath.Join("..", "testdata", "multiregion", name) }

type synthResult struct {
	tpls map[string]assertions.Template
	dir  string
}

func mustSynth(context map[string]string) synthResult {
	tpls, dir, err := synthApp(context)
	if err != nil {
		panic(err)
	}
	return synthResult{tpls, dir}
}

var (
	mrDefault   = sync.OnceValue(func() synthResult { return mustSynth(nil) })
	mrFileCA    = sync.OnceValue(func() synthResult { return mustSynth(map[string]string{"ca_certificate_file": mrTestdata("ca.pem")}) })
	mrJITP      = sync.OnceValue(func() synthResult { return mustSynth(map[string]string{"provisioning": "jitp"}) })
	mrTwoRegion = sync.OnceValue(func() synthResult {
		return mustSynth(map[string]string{"primary_region": "eu-central-1", "replica_regions": "us-east-1, ap-southeast-2"})
	})
)

func (r synthResult) stack(t *testing.T, name string) assertions.Template {
	t.Helper()
	tpl := r.tpls[name]
	if tpl == nil {
		names := make([]string, 0, len(r.tpls))
		for n := range r.tpls {
			names = append(names, n)
		}
		t.Fatalf("no stack %s in the app, got %v", name, names)
	}
	return tpl
}

// props returns the properties of the one resource of type typ (the test fails if there is not exactly one).
func oneResource(t *testing.T, tpl assertions.Template, typ string) (string, map[string]interface{}) {
	t.Helper()
	res := resourcesOfType(tpl, typ)
	if len(res) != 1 {
		t.Fatalf("%d resources of type %s, want 1", len(res), typ)
	}
	for id, p := range res {
		return id, p
	}
	return "", nil
}

func outputs(tpl assertions.Template) map[string]interface{} {
	o, _ := templateJSON(tpl)["Outputs"].(map[string]interface{})
	return o
}

func TestMultiRegionStacksAndEnvironments(t *testing.T) {
	r := mrDefault()
	manifest := readManifest(t, r.dir)
	for name, region := range map[string]string{primaryStack: "us-west-2", replicaStack: "us-east-1"} {
		a, ok := manifest.Artifacts[name]
		if !ok {
			t.Fatalf("manifest has no artifact %s", name)
		}
		if want := "aws://unknown-account/" + region; a.Environment != want {
			t.Errorf("%s environment = %q, want %q", name, a.Environment, want)
		}
	}
	if deps := manifest.Artifacts[replicaStack].Dependencies; !contains(deps, primaryStack) {
		t.Errorf("%s depends on %v, want %s among them (replicas deploy after the primary)", replicaStack, deps, primaryStack)
	}
}

func TestMultiRegionPrivateCA(t *testing.T) {
	tpl := mrDefault().stack(t, primaryStack)
	check(t, "ROOT general-purpose CA with the seed's subject and a CRL in the private bucket", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ACMPCA::CertificateAuthority"), map[string]interface{}{
			"Type": "ROOT", "UsageMode": "GENERAL_PURPOSE", "KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA",
			"Subject": map[string]interface{}{"Country": "DE", "Organization": "AWS", "OrganizationalUnit": "IoT", "State": "Berlin",
				"Locality": "Berlin", "CommonName": "Multi Region CA"},
			"RevocationConfiguration": map[string]interface{}{"CrlConfiguration": assertions.Match_ObjectLike(&map[string]interface{}{
				"Enabled": true, "S3BucketName": map[string]interface{}{"Ref": "CrlBucket56B6A239"},
			})},
		})
	})
	check(t, "self-signed CA certificate from the RootCACertificate template, activated", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ACMPCA::Certificate"), map[string]interface{}{
			"CertificateAuthorityArn":   map[string]interface{}{"Fn::GetAtt": []interface{}{"PrivateCA", "Arn"}},
			"CertificateSigningRequest": map[string]interface{}{"Fn::GetAtt": []interface{}{"PrivateCA", "CertificateSigningRequest"}},
			"TemplateArn":               "arn:aws:acm-pca:::template/RootCACertificate/V1",
			"Validity":                  map[string]interface{}{"Type": "YEARS", "Value": 10},
		})
		tpl.HasResourceProperties(jsii.String("AWS::ACMPCA::CertificateAuthorityActivation"), map[string]interface{}{
			"Certificate": map[string]interface{}{"Fn::GetAtt": []interface{}{"PrivateCACertificate", "Certificate"}}, "Status": "ACTIVE",
		})
	})
	check(t, "CRL bucket private, TLS only, kept", func() {
		tpl.HasResource(jsii.String("AWS::S3::Bucket"), map[string]interface{}{
			"DeletionPolicy": "Retain",
			"Properties": assertions.Match_ObjectLike(&map[string]interface{}{
				"PublicAccessBlockConfiguration": map[string]interface{}{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
			}),
		})
	})
	check(t, "the CA certificate is published for the replicas in SSM", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SSM::Parameter"), map[string]interface{}{
			"Name": CACertificateParameter, "Value": map[string]interface{}{"Fn::GetAtt": []interface{}{"PrivateCACertificate", "Certificate"}},
		})
	})
	// Stateful resources keep their logical ids: a change would replace the CA (every device's root of trust).
	res, _ := templateJSON(tpl)["Resources"].(map[string]interface{})
	for id, policy := range map[string]string{"PrivateCA": "Retain", "PrivateCACertificate": "Retain", "PrivateCAActivation": "Retain",
		"CrlBucket56B6A239": "Retain", "CACertificate": "", "JitrPolicy": "Retain", "ProvisioningTable0CD3D6E7": "Delete"} {
		r, ok := res[id].(map[string]interface{})
		if !ok {
			t.Errorf("no resource with the pinned logical id %s", id)
			continue
		}
		if got, _ := r["DeletionPolicy"].(string); got != policy {
			t.Errorf("%s DeletionPolicy = %q, want %q", id, got, policy)
		}
	}
}

func TestMultiRegionCARegistrationEveryRegion(t *testing.T) {
	r := mrTwoRegion()
	manifest := readManifest(t, r.dir)
	for name, region := range map[string]string{"IotMultiRegion-Primary": "eu-central-1", "IotMultiRegion-Replica-us-east-1": "us-east-1",
		"IotMultiRegion-Replica-ap-southeast-2": "ap-southeast-2"} {
		a := manifest.Artifacts[name]
		if want := "aws://unknown-account/" + region; a.Environment != want {
			t.Errorf("%s environment = %q, want %q", name, a.Environment, want)
		}
		if region != "eu-central-1" && !contains(a.Dependencies, "IotMultiRegion-Primary") {
			t.Errorf("%s depends on %v, want IotMultiRegion-Primary among them", name, a.Dependencies)
		}
	}
	for _, name := range []string{"IotMultiRegion-Primary", "IotMultiRegion-Replica-us-east-1", "IotMultiRegion-Replica-ap-southeast-2"} {
		tpl := r.stack(t, name)
		check(t, name+": SNI_ONLY CA registration with auto-registration", func() {
			tpl.HasResource(jsii.String("AWS::IoT::CACertificate"), map[string]interface{}{
				"Properties": map[string]interface{}{"CertificateMode": "SNI_ONLY", "Status": "ACTIVE", "AutoRegistrationStatus": "ENABLE",
					"CACertificatePem": assertions.Match_AnyValue()},
			})
		})
		check(t, name+": JITR rule on this CA's pending certificates, async Lambda, errors to the dead-letter queue", func() {
			tpl.HasResourceProperties(jsii.String("AWS::IoT::TopicRule"), map[string]interface{}{
				"TopicRulePayload": assertions.Match_ObjectLike(&map[string]interface{}{
					"Sql": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
						"SELECT * FROM '$aws/events/certificates/registered/",
						map[string]interface{}{"Fn::GetAtt": []interface{}{"CACertificate", "Id"}},
						`' WHERE certificateStatus = "PENDING_ACTIVATION"`}}},
					"Actions":     []interface{}{map[string]interface{}{"Lambda": map[string]interface{}{"FunctionArn": map[string]interface{}{"Fn::GetAtt": []interface{}{"JITRFunction1C069911", "Arn"}}}}},
					"ErrorAction": map[string]interface{}{"Sqs": assertions.Match_ObjectLike(&map[string]interface{}{"QueueUrl": map[string]interface{}{"Ref": "JITRFunctionDeadLettersDE452E46"}})},
				}),
			})
		})
		check(t, name+": JITR function configured with this CA and the policy, failures to its queue", func() {
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
				"Architectures": []interface{}{"arm64"},
				"Environment": map[string]interface{}{"Variables": map[string]interface{}{
					"CA_CERTIFICATE_ID": map[string]interface{}{"Fn::GetAtt": []interface{}{"CACertificate", "Id"}}, "POLICY_NAME": "jitr-mr-policy"}},
			})
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]interface{}{
				"FunctionName":      map[string]interface{}{"Ref": "JITRFunction1C069911"},
				"DestinationConfig": map[string]interface{}{"OnFailure": map[string]interface{}{"Destination": map[string]interface{}{"Fn::GetAtt": []interface{}{"JITRFunctionDeadLettersDE452E46", "Arn"}}}},
			})
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]interface{}{
				"FunctionName": map[string]interface{}{"Fn::GetAtt": []interface{}{"JITRFunction1C069911", "Arn"}},
				"Principal":    "iot.amazonaws.com", "SourceArn": map[string]interface{}{"Fn::GetAtt": []interface{}{"JITRRule", "Arn"}},
				"SourceAccount": map[string]interface{}{"Ref": "AWS::AccountId"},
			})
		})
		check(t, name+": CA_CERTIFICATE events on", func() {
			tpl.HasResourceProperties(jsii.String("Custom::AWS"), map[string]interface{}{
				"Create": assertions.Match_SerializedJson(assertions.Match_ObjectLike(&map[string]interface{}{
					"action": "UpdateEventConfigurations",
					"parameters": map[string]interface{}{"eventConfigurations": assertions.Match_ObjectLike(&map[string]interface{}{
						"CA_CERTIFICATE": map[string]interface{}{"Enabled": true}})},
				})),
			})
		})
		// jitr-mr-policy: the seed's statements, scoped to this region, passing the app's policy rules.
		_, pol := oneResource(t, tpl, "AWS::IoT::Policy")
		if pol["PolicyName"] != policies.JITRPolicyName {
			t.Errorf("%s policy name = %v, want %s", name, pol["PolicyName"], policies.JITRPolicyName)
		}
		doc := resolvePseudo(t, pol["PolicyDocument"])
		if _, err := policies.Check(doc, policies.CheckOptions{}); err != nil {
			t.Errorf("%s jitr-mr-policy: %v", name, err)
		}
		region := strings.TrimPrefix(strings.TrimPrefix(name, "IotMultiRegion-Replica-"), "IotMultiRegion-Primary")
		if region == "" {
			region = "eu-central-1"
		}
		if !strings.Contains(string(doc), ":iot:"+region+":123456789012:client/${iot:Connection.Thing.ThingName}") {
			t.Errorf("%s jitr-mr-policy does not name its region %s: %s", name, region, doc)
		}
		checkLeastPrivilege(t, name, tpl)
	}
	// Every replica reads the CA certificate from the primary region's parameter.
	for _, name := range []string{"IotMultiRegion-Replica-us-east-1", "IotMultiRegion-Replica-ap-southeast-2"} {
		tpl := r.stack(t, name)
		check(t, name+": CA certificate read from the primary region at deploy time, on create and update", func() {
			call := assertions.Match_SerializedJson(assertions.Match_ObjectLike(&map[string]interface{}{
				"service": "SSM", "action": "GetParameter", "region": "eu-central-1",
				"parameters": map[string]interface{}{"Name": CACertificateParameter}, "outputPaths": []interface{}{"Parameter.Value"},
			}))
			tpl.HasResourceProperties(jsii.String("Custom::AWS"), map[string]interface{}{"Create": call, "Update": call})
			tpl.HasResourceProperties(jsii.String("AWS::IoT::CACertificate"), map[string]interface{}{
				"CACertificatePem": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CACertificateReader")), "Parameter.Value"}},
			})
		})
	}
}

func TestMultiRegionTableAndCapture(t *testing.T) {
	r := mrTwoRegion()
	tpl := r.stack(t, "IotMultiRegion-Primary")
	check(t, "global table IoTMRProvisioning keyed by uuid, streamed, with TTL and a replica per replica region", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::GlobalTable"), map[string]interface{}{
			"TableName":               "IoTMRProvisioning",
			"KeySchema":               []interface{}{map[string]interface{}{"AttributeName": "uuid", "KeyType": "HASH"}},
			"StreamSpecification":     map[string]interface{}{"StreamViewType": "NEW_AND_OLD_IMAGES"},
			"TimeToLiveSpecification": map[string]interface{}{"AttributeName": "expires", "Enabled": true},
		})
	})
	_, table := oneResource(t, tpl, "AWS::DynamoDB::GlobalTable")
	var regions []string
	for _, rep := range table["Replicas"].([]interface{}) {
		regions = append(regions, rep.(map[string]interface{})["Region"].(string))
	}
	sort.Strings(regions)
	if got := strings.Join(regions, ","); got != "ap-southeast-2,eu-central-1,us-east-1" {
		t.Errorf("table replicas = %s, want ap-southeast-2,eu-central-1,us-east-1", got)
	}
	wantSQL := "SELECT eventId AS uuid, 'eu-central-1' AS originRegion, floor(timestamp() / 1000) + 172800 AS expires, * FROM '$aws/events/#' " +
		"WHERE topic(3) = 'thing' OR topic(3) = 'thingGroup' OR topic(3) = 'thingType' OR topic(3) = 'thingTypeAssociation' " +
		"OR topic(3) = 'thingGroupMembership' OR topic(3) = 'thingGroupHierarchy'"
	check(t, "registry events into the table by eventId with origin region and expiry", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::TopicRule"), map[string]interface{}{
			"TopicRulePayload": assertions.Match_ObjectLike(&map[string]interface{}{
				"Sql": wantSQL,
				"Actions": []interface{}{map[string]interface{}{"DynamoDBv2": map[string]interface{}{
					"PutItem": map[string]interface{}{"TableName": map[string]interface{}{"Ref": "ProvisioningTable0CD3D6E7"}},
					"RoleArn": map[string]interface{}{"Fn::GetAtt": []interface{}{"IoTAccessServicesRole2CE2C609", "Arn"}}}}},
				"ErrorAction": map[string]interface{}{"Sqs": assertions.Match_ObjectLike(&map[string]interface{}{"QueueUrl": map[string]interface{}{"Ref": "RegistryCaptureDeadLettersB48C834C"}})},
			}),
		})
	})
	check(t, "registry events on for the replicated types and CA_CERTIFICATE, never turned off", func() {
		types := map[string]interface{}{}
		for _, k := range []string{"THING", "THING_TYPE", "THING_TYPE_ASSOCIATION", "THING_GROUP", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY", "CA_CERTIFICATE"} {
			types[k] = map[string]interface{}{"Enabled": true}
		}
		call := assertions.Match_SerializedJson(assertions.Match_ObjectLike(&map[string]interface{}{
			"action": "UpdateEventConfigurations", "parameters": map[string]interface{}{"eventConfigurations": types},
		}))
		tpl.HasResourceProperties(jsii.String("Custom::AWS"), map[string]interface{}{"Create": call, "Update": call, "Delete": assertions.Match_Absent()})
	})
	check(t, "cross-region topic and rule with the seed's names", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]interface{}{"TopicName": "IoTCrossRegion", "KmsMasterKeyId": assertions.Match_AnyValue()})
		tpl.HasResourceProperties(jsii.String("AWS::IoT::TopicRule"), map[string]interface{}{
			"RuleName": "IoTMRCrossRegionSNSRule",
			"TopicRulePayload": assertions.Match_ObjectLike(&map[string]interface{}{
				"Sql":     crossregion.RuleSQL("cmd/+/cross/region", "eu-central-1"),
				"Actions": []interface{}{map[string]interface{}{"Sns": assertions.Match_ObjectLike(&map[string]interface{}{"MessageFormat": "RAW"})}},
			}),
		})
	})
	for _, region := range []string{"us-east-1", "ap-southeast-2"} {
		rep := r.stack(t, "IotMultiRegion-Replica-"+region)
		check(t, region+": stream ARN read by DescribeTable in its own region on create and update", func() {
			call := assertions.Match_SerializedJson(assertions.Match_ObjectLike(&map[string]interface{}{
				"service": "DynamoDB", "action": "DescribeTable", "parameters": map[string]interface{}{"TableName": "IoTMRProvisioning"},
				"outputPaths": []interface{}{"Table.LatestStreamArn"}, "region": assertions.Match_Absent(),
			}))
			rep.HasResourceProperties(jsii.String("Custom::AWS"), map[string]interface{}{"Create": call, "Update": call})
		})
		check(t, region+": republisher subscribed to the primary's topic across regions", func() {
			rep.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]interface{}{
				"Protocol": "lambda", "Region": "eu-central-1",
				"TopicArn": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{"arn:aws:sns:eu-central-1:",
					map[string]interface{}{"Ref": "AWS::AccountId"}, ":IoTCrossRegion"}}},
				"RedrivePolicy": assertions.Match_AnyValue(),
			})
			rep.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
				"Environment": map[string]interface{}{"Variables": map[string]interface{}{"TOPIC_FILTER": "cmd/+/cross/region",
					"SOURCE_TOPIC_ARN": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{"arn:aws:sns:eu-central-1:",
						map[string]interface{}{"Ref": "AWS::AccountId"}, ":IoTCrossRegion"}}}}},
			})
			rep.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]interface{}{
				"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{assertions.Match_ObjectLike(&map[string]interface{}{
					"Action": "iot:Publish", "Resource": assertions.Match_AnyValue()})}), "Version": "2012-10-17"},
			})
		})
		check(t, region+": every replay alarm notifies the region's alarm topic", func() {
			alarms := resourcesOfType(rep, "AWS::CloudWatch::Alarm")
			if len(alarms) < 2 {
				t.Errorf("%d alarms, want the dead-letter and drift alarms", len(alarms))
			}
			for id, a := range alarms {
				if got := string(mustJSON(a["AlarmActions"])); !strings.Contains(got, "AlarmTopic") {
					t.Errorf("alarm %s actions = %s, want the AlarmTopic", id, got)
				}
			}
		})
		check(t, region+": no capture rule and no table of its own in a replica", func() {
			rep.ResourceCountIs(jsii.String("AWS::DynamoDB::GlobalTable"), jsii.Number(0))
			rep.ResourceCountIs(jsii.String("AWS::ACMPCA::CertificateAuthority"), jsii.Number(0))
		})
	}
}

func TestMultiRegionOutputs(t *testing.T) {
	r := mrDefault()
	want := map[string][]string{
		primaryStack: {"IoTAccessServicesRoleArn", "JITRLambdaFunctionName", "CACertificateArn", "CACertificateId", "PrivateCaArn",
			"ProvisioningTableName", "DeadLetterQueueUrl", "RegistryCaptureDeadLetterQueueUrl", "CrossRegionTopicArn"},
		replicaStack: {"CrossRegionLambdaFunctionArn", "JITRLambdaFunctionName", "CACertificateArn", "CACertificateId",
			"ProvisioningTableName", "ProvisioningTableStreamArn", "DeadLetterQueueUrl", "SFNThingCrudLambdaFunctionName",
			"SFNThingTypeCrudLambdaFunctionName", "SFNThingGroupCrudLambdaFunctionName", "StateMachineARN", "ReplayDeadLetterQueueUrl", "ReconcilerFunctionName", "AlarmTopicArn"},
	}
	for name, keys := range want {
		out := outputs(r.stack(t, name))
		for _, k := range keys {
			if _, ok := out[k]; !ok {
				t.Errorf("%s has no output %s", name, k)
			}
		}
	}
}

func TestMultiRegionOperatorCA(t *testing.T) {
	pemBytes, err := os.ReadFile(mrTestdata("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	r := mrFileCA()
	for _, name := range []string{primaryStack, replicaStack} {
		tpl := r.stack(t, name)
		check(t, name+": the operator's certificate registered as it is, no Private CA, no reader", func() {
			tpl.HasResourceProperties(jsii.String("AWS::IoT::CACertificate"), map[string]interface{}{"CACertificatePem": string(pemBytes), "CertificateMode": "SNI_ONLY"})
			tpl.ResourceCountIs(jsii.String("AWS::ACMPCA::CertificateAuthority"), jsii.Number(0))
			tpl.ResourceCountIs(jsii.String("AWS::SSM::Parameter"), jsii.Number(0))
		})
		if _, ok := outputs(tpl)["PrivateCaArn"]; ok {
			t.Errorf("%s outputs PrivateCaArn without a Private CA", name)
		}
		if strings.Contains(string(mustJSON(templateJSON(tpl))), "GetParameter") {
			t.Errorf("%s reads a CA parameter although the CA certificate is known at synth", name)
		}
	}
}

// A replaced CA reaches the replicas: with the operator's CA the new PEM is in the replica's template; with a Private
// CA the replica's reader changes its properties, so CloudFormation runs the read again (and replaces the replica's
// registration with the new certificate).
func TestMultiRegionCAReplacement(t *testing.T) {
	replicaCA := func(ctx map[string]string) (pemValue interface{}, reader map[string]interface{}) {
		r := mustSynth(ctx)
		tpl := r.tpls[replicaStack]
		_, ca := oneResource(t, tpl, "AWS::IoT::CACertificate")
		for id, p := range resourcesOfType(tpl, "Custom::AWS") {
			if strings.HasPrefix(id, "CACertificateReader") {
				reader = p
			}
		}
		return ca["CACertificatePem"], reader
	}
	pem1, _ := os.ReadFile(mrTestdata("ca.pem"))
	pem2, _ := os.ReadFile(mrTestdata("ca2.pem"))
	got1, _ := replicaCA(map[string]string{"ca_certificate_file": mrTestdata("ca.pem")})
	got2, _ := replicaCA(map[string]string{"ca_certificate_file": mrTestdata("ca2.pem")})
	if got1 != string(pem1) || got2 != string(pem2) {
		t.Errorf("replica CACertificatePem did not follow the operator's CA file: got %.40q then %.40q", got1, got2)
	}

	_, readerA := replicaCA(map[string]string{"ca_subject": "C=DE,O=AWS,CN=Fleet CA 2026"})
	_, readerB := replicaCA(map[string]string{"ca_subject": "C=DE,O=AWS,CN=Fleet CA 2027"})
	if readerA == nil || readerB == nil {
		t.Fatal("no CACertificateReader in the replica with a Private CA")
	}
	if readerA["Update"] == readerB["Update"] {
		t.Errorf("replica CA reader is unchanged after the CA changed (CloudFormation would not read the new certificate): %v", readerA["Update"])
	}
	var a, b map[string]interface{}
	json.Unmarshal([]byte(readerA["Update"].(string)), &a)
	json.Unmarshal([]byte(readerB["Update"].(string)), &b)
	if string(mustJSON(a["parameters"])) != string(mustJSON(b["parameters"])) {
		t.Errorf("reader parameters changed: %v vs %v, want the same parameter read again", a["parameters"], b["parameters"])
	}
	// And the same CA gives the same reader: no spurious re-read on an unrelated deploy.
	_, readerA2 := replicaCA(map[string]string{"ca_subject": "C=DE,O=AWS,CN=Fleet CA 2026"})
	if readerA["Update"] != readerA2["Update"] {
		t.Errorf("replica CA reader changed without a CA change")
	}
}

func TestMultiRegionJITP(t *testing.T) {
	r := mrJITP()
	for _, name := range []string{primaryStack, replicaStack} {
		tpl := r.stack(t, name)
		_, ca := oneResource(t, tpl, "AWS::IoT::CACertificate")
		rc, _ := ca["RegistrationConfig"].(map[string]interface{})
		if rc == nil {
			t.Fatalf("%s: CA has no RegistrationConfig with provisioning=jitp", name)
		}
		var body struct {
			Resources map[string]struct {
				Type       string
				Properties map[string]interface{}
			}
		}
		if err := json.Unmarshal([]byte(rc["TemplateBody"].(string)), &body); err != nil {
			t.Fatalf("%s: TemplateBody: %v", name, err)
		}
		if got := string(mustJSON(body.Resources["thing"].Properties["ThingName"])); got != `{"Ref":"AWS::IoT::Certificate::CommonName"}` {
			t.Errorf("%s: JITP thing name = %s, want the certificate's CN", name, got)
		}
		if body.Resources["certificate"].Properties["Status"] != "ACTIVE" || body.Resources["policy"].Properties["PolicyName"] != "jitr-mr-policy" {
			t.Errorf("%s: JITP template = %+v, want the certificate activated and jitr-mr-policy attached", name, body.Resources)
		}
		if !strings.Contains(string(mustJSON(rc["RoleArn"])), "JITPRole") {
			t.Errorf("%s: JITP RoleArn = %v, want the stack's JITPRole", name, rc["RoleArn"])
		}
		for _, typ := range []string{"AWS::Lambda::Function", "AWS::IoT::TopicRule"} {
			for id := range resourcesOfType(tpl, typ) {
				if strings.HasPrefix(id, "JITR") {
					t.Errorf("%s: %s %s defined with JITP", name, typ, id)
				}
			}
		}
		if _, ok := outputs(tpl)["JITRLambdaFunctionName"]; ok {
			t.Errorf("%s: JITRLambdaFunctionName output without a JITR function", name)
		}
		checkLeastPrivilege(t, name, tpl)
	}
}

// checkLeastPrivilege: no iot:* (or any action wildcard), no managed policies, and "*" only for actions without
// resource ARNs.
func checkLeastPrivilege(t *testing.T, name string, tpl assertions.Template) {
	t.Helper()
	// Actions that support no resource-level permissions (Service Authorization Reference): "*" is their only resource.
	unscoped := map[string]bool{}
	for _, a := range []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
		"iot:UpdateEventConfigurations", "iot:ListThings", "iot:ListThingTypes", "iot:ListThingGroups", "dynamodb:ListStreams",
		"logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
		"logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery"} {
		unscoped[a] = true
	}
	for id, p := range resourcesOfType(tpl, "AWS::IAM::Policy") {
		doc, _ := p["PolicyDocument"].(map[string]interface{})
		for _, st := range doc["Statement"].([]interface{}) {
			s := st.(map[string]interface{})
			actions := asList(s["Action"])
			for _, a := range actions {
				if strings.HasSuffix(a, ":*") || a == "*" {
					t.Errorf("%s %s grants %s", name, id, a)
				}
			}
			resources := asAny(s["Resource"])
			if resources == nil {
				resources = []interface{}{s["Resource"]}
			}
			for _, r := range resources {
				if r == "*" {
					for _, a := range actions {
						if !unscoped[a] {
							t.Errorf("%s %s grants %s on *", name, id, a)
						}
					}
				}
			}
		}
	}
	for id, p := range resourcesOfType(tpl, "AWS::IAM::Role") {
		for _, m := range asAny(p["ManagedPolicyArns"]) {
			if s := string(mustJSON(m)); !strings.Contains(s, "AWSLambdaBasicExecutionRole") || !strings.HasPrefix(id, "AWS679f53fac002430cb0da5b7982bd2287") {
				t.Errorf("%s %s has managed policy %s", name, id, s)
			}
		}
	}
}

func asAny(v interface{}) []interface{} {
	l, _ := v.([]interface{})
	return l
}

func asList(v interface{}) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []interface{}:
		out := make([]string, len(x))
		for i, e := range x {
			out[i], _ = e.(string)
		}
		return out
	}
	return nil
}

// resolvePseudo turns a synthesized policy document (Fn::Join of strings and pseudo-parameter Refs) into JSON text with
// partition aws and account 123456789012.
func resolvePseudo(t *testing.T, v interface{}) []byte {
	t.Helper()
	var walk func(interface{}) interface{}
	walk = func(v interface{}) interface{} {
		switch x := v.(type) {
		case map[string]interface{}:
			if j, ok := x["Fn::Join"].([]interface{}); ok {
				var b strings.Builder
				for _, part := range j[1].([]interface{}) {
					b.WriteString(walk(part).(string))
				}
				return b.String()
			}
			if ref, ok := x["Ref"].(string); ok {
				return map[string]string{"AWS::Partition": "aws", "AWS::AccountId": "123456789012"}[ref]
			}
			out := map[string]interface{}{}
			for k, e := range x {
				out[k] = walk(e)
			}
			return out
		case []interface{}:
			out := make([]interface{}, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	return mustJSON(walk(v))
}

type cloudManifest struct {
	Artifacts map[string]struct {
		Environment  string   `json:"environment"`
		Dependencies []string `json:"dependencies"`
	} `json:"artifacts"`
}

func readManifest(t *testing.T, dir string) cloudManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m cloudManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Bad context is a one-line error naming the bad value, before anything is defined.
func TestMultiRegionContextErrors(t *testing.T) {
	dir := t.TempDir()
	withKey := filepath.Join(dir, "ca-and-key.pem")
	ca, _ := os.ReadFile(mrTestdata("ca.pem"))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(withKey, append(ca, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...), 0o600)
	tests := []struct {
		ctx  map[string]string
		want string
	}{
		{map[string]string{"primary_region": "us-west"}, `context primary_region: "us-west" is not an AWS region name`},
		{map[string]string{"replica_regions": "us-east-1,US-EAST-2"}, `context replica_regions: "US-EAST-2" is not an AWS region name`},
		{map[string]string{"replica_regions": "us-east-1,eu-west-1,us-east-1"}, `context replica_regions: region "us-east-1" is listed twice`},
		{map[string]string{"replica_regions": "us-west-2"}, `context replica_regions: "us-west-2" is the primary region`},
		{map[string]string{"replica_regions": "us-east-1,,eu-west-1"}, `context replica_regions: empty region name in "us-east-1,,eu-west-1"`},
		{map[string]string{"provisioning": "fleet"}, `context provisioning must be "jitr" or "jitp", got "fleet"`},
		{map[string]string{"ca_key_algorithm": "RSA_1024"}, `got "RSA_1024"`},
		{map[string]string{"ca_subject": "C=DE,CN=A,XX=1"}, `context ca_subject: attribute "XX" is not one of C, O, OU, ST, L, CN`},
		{map[string]string{"ca_subject": "C=Germany,CN=A"}, `C must be a two-letter country code, got "Germany"`},
		{map[string]string{"ca_subject": "O=AWS"}, `context ca_subject: CN is required`},
		{map[string]string{"ca_validity_years": "0"}, `context ca_validity_years must be a whole number from 1 to 30, got "0"`},
		{map[string]string{"replication_ttl_hours": "2h"}, `context replication_ttl_hours must be a whole number from 1 to 840, got "2h"`},
		{map[string]string{"ca_certificate_file": mrTestdata("missing.pem")}, "context ca_certificate_file: open ../testdata/multiregion/missing.pem"},
		{map[string]string{"ca_certificate_file": withKey}, "the file holds a private key"},
		{map[string]string{"ca_certificate_file": mrTestdata("leaf-not-ca.pem")}, `is not a CA certificate`},
		{map[string]string{"ca_certificate_file": mrTestdata("policy-broad.json")}, `no PEM CERTIFICATE block`},
		{map[string]string{"jitr_policy_file": mrTestdata("policy-broad.json")}, `context jitr_policy_file: ../testdata/multiregion/policy-broad.json: iot policy: statement 1: action "iot:*" is a wildcard`},
		{map[string]string{"jitr_thing_name_pattern": "sensor-(["}, `context jitr_thing_name_pattern: "sensor-([" is not a regular expression`},
	}
	for _, tt := range tests {
		_, err := multiRegionPropsFromContext(ctxOf(tt.ctx))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("multiRegionPropsFromContext(%v) = %v, want an error containing %q", tt.ctx, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("multiRegionPropsFromContext(%v) error spans lines: %q", tt.ctx, err)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY-----") {
			t.Errorf("error repeats key material: %q", err)
		}
	}
	// Through the app: Define returns the error and defines no multi-region stack.
	if _, _, err := synthApp(map[string]string{"replica_regions": "us-east-1,us-east-1"}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("synthApp(duplicate replica) = %v, want the duplicate-region error", err)
	}
	// Good values are accepted.
	p, err := multiRegionPropsFromContext(ctxOf(map[string]string{"replica_regions": " us-east-1 , eu-west-1 ", "provisioning": "JITP",
		"ca_certificate_file": mrTestdata("ca.pem"), "jitr_thing_name_pattern": "^sensor-[0-9]+$"}))
	if err != nil {
		t.Fatalf("multiRegionPropsFromContext(good) = %v", err)
	}
	if strings.Join(p.ReplicaRegions, ",") != "us-east-1,eu-west-1" || p.Provisioning != "jitp" || len(p.CA.CertificatePEM) == 0 {
		t.Errorf("multiRegionPropsFromContext(good) = %+v", p)
	}
}

// The construct itself refuses bad props with a one-line panic, before it defines anything.
func TestNewMultiRegionStacksPanics(t *testing.T) {
	for _, tt := range []struct {
		props MultiRegionProps
		want  string
	}{
		{MultiRegionProps{ReplicaRegions: []string{"us-west-2"}}, `context replica_regions: "us-west-2" is the primary region`},
		{MultiRegionProps{CA: CAOptions{CertificatePEM: []byte("not a certificate")}}, "context ca_certificate_file: no PEM CERTIFICATE block"},
		{MultiRegionProps{PolicyDocument: []byte(`{"Version":"2012-10-17","Statement":[]}`)}, "context jitr_policy_file:"},
	} {
		app := newTestApp(t, nil)
		msg := panicMessage(func() { NewMultiRegionStacks(app, &tt.props) })
		if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("NewMultiRegionStacks(%+v) panicked with %q, want one line containing %q", tt.props, msg, tt.want)
		}
		if n := len(*app.Node().Children()); n != 0 {
			t.Errorf("NewMultiRegionStacks(%+v) defined %d constructs before refusing", tt.props, n)
		}
	}
}

// cdk-nag's AwsSolutions and Serverless packs, as `cdk synth` runs them, report nothing unacknowledged on the
// multi-region stacks with the operator's CA and JITP (the default platform is TestEveryStackInAnyEnvironment's).
func TestMultiRegionNagClean(t *testing.T) {
	context := map[string]string{"provisioning": "jitp", "ca_certificate_file": mrTestdata("ca.pem")}
	for stack, findings := range nagErrors(t, newTestApp(t, nil), context) {
		for _, f := range findings {
			t.Errorf("%s: %s", stack, f)
		}
	}
}
