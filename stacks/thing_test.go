package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/policies"
)

// synthApp defines the app for context as main.go does and returns the synthesized templates by stack name.
func synthApp(context map[string]string) (map[string]assertions.Template, string, error) {
	sel, err := selection.Select(ctxOf(context), ctxOf(nil))
	if err != nil {
		return nil, "", err
	}
	app := newTestApp(nil, nil)
	if err := Define(app, sel, ctxOf(context)); err != nil {
		return nil, "", err
	}
	out := map[string]assertions.Template{}
	for _, c := range *app.Node().Children() {
		if s, ok := c.(awscdk.Stack); ok && *awscdk.Stack_IsStack(c) {
			out[*s.StackName()] = assertions.Template_FromStack(s, nil)
		}
	}
	asm := app.Synth(nil)
	return out, *asm.Directory(), nil
}

var defaultThing = sync.OnceValues(func() (assertions.Template, string) {
	tpls, dir, err := synthApp(map[string]string{"thing_name": "device1234"})
	if err != nil {
		panic(err)
	}
	return tpls["device1234"], dir
})

func TestThingStackResources(t *testing.T) {
	tpl, _ := defaultThing()
	check(t, "thing named after the stack, marked as made by B", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::Thing"), map[string]interface{}{"ThingName": "device1234",
			"AttributePayload": map[string]interface{}{"Attributes": map[string]interface{}{"iotcert_capability": "B"}}})
	})
	check(t, "certificate custom resource", func() {
		tpl.HasResourceProperties(jsii.String("Custom::ThingCertificate"), map[string]interface{}{
			"ThingName": "device1234", "KeyAlgorithm": "EC_P256", "SecretId": map[string]interface{}{"Ref": "PrivateKeySecret"},
		})
	})
	check(t, "secret encrypted with the stack's customer-managed key", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SecretsManager::Secret"), map[string]interface{}{
			"KmsKeyId": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^SecretKey")), "Arn"}},
		})
		tpl.HasResourceProperties(jsii.String("AWS::KMS::Key"), map[string]interface{}{"EnableKeyRotation": true})
	})
	check(t, "secret holds no value from the template", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SecretsManager::Secret"), map[string]interface{}{"SecretString": assertions.Match_Absent()})
	})
	check(t, "attachments", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::ThingPrincipalAttachment"), map[string]interface{}{
			"ThingName": map[string]interface{}{"Ref": "Thing"},
			"Principal": map[string]interface{}{"Fn::GetAtt": []interface{}{"ThingCertificate", "CertificateArn"}},
		})
		tpl.HasResourceProperties(jsii.String("AWS::IoT::PolicyPrincipalAttachment"), map[string]interface{}{
			"PolicyName": map[string]interface{}{"Ref": "ThingPolicy"},
			"Principal":  map[string]interface{}{"Fn::GetAtt": []interface{}{"ThingCertificate", "CertificateArn"}},
		})
	})
	for _, o := range []string{"ThingId", "CertificateId", "SecretId", "CertificateArn", "PrivateKeyCommand", "EndpointCommand"} {
		check(t, "output "+o, func() { tpl.HasOutput(jsii.String(o), map[string]interface{}{}) })
	}
	check(t, "ThingId, CertificateId and SecretId values", func() {
		tpl.HasOutput(jsii.String("ThingId"), map[string]interface{}{"Value": map[string]interface{}{"Ref": "Thing"}})
		tpl.HasOutput(jsii.String("CertificateId"), map[string]interface{}{"Value": map[string]interface{}{"Fn::GetAtt": []interface{}{"ThingCertificate", "CertificateId"}}})
		tpl.HasOutput(jsii.String("SecretId"), map[string]interface{}{"Value": map[string]interface{}{"Ref": "PrivateKeySecret"}})
	})
}

func TestThingStackDefaultPolicyIsLeastPrivilege(t *testing.T) {
	tpl, _ := defaultThing()
	doc, err := policies.CheckTemplate(mustJSON(templateJSON(tpl)), policies.CheckOptions{})
	if err != nil || doc != 1 {
		t.Fatalf("CheckTemplate() = %d, %v, want 1 policy and no finding", doc, err)
	}
	text := string(mustJSON(resourcesOfType(tpl, "AWS::IoT::Policy")))
	for _, want := range []string{"${iot:Connection.Thing.ThingName}", "iot:Connection.Thing.IsAttached"} {
		if !strings.Contains(text, want) {
			t.Errorf("thing policy lacks %q: %s", want, text)
		}
	}
	if strings.Contains(text, `"iot:*"`) {
		t.Errorf("thing policy grants iot:*: %s", text)
	}
}

// No private key material reaches the cloud assembly: the key is made at deploy time inside the function.
func TestThingStackCloudAssemblyHoldsNoKey(t *testing.T) {
	_, dir := defaultThing()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), "PRIVATE KEY") {
			t.Errorf("%s contains private key material", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestThingStackOptions(t *testing.T) {
	tpls, _, err := synthApp(map[string]string{
		"thing_name": "pool_controller:1", "stack_name": "pool-controller-1", "key_algorithm": "RSA_2048",
		"policy_file": "../testdata/thing/policy-good.json", "region": "eu-west-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	tpl, ok := tpls["pool-controller-1"]
	if !ok {
		t.Fatalf("stacks = %v, want pool-controller-1", keys(tpls))
	}
	check(t, "RSA key requested", func() {
		tpl.HasResourceProperties(jsii.String("Custom::ThingCertificate"), map[string]interface{}{"KeyAlgorithm": "RSA_2048", "ThingName": "pool_controller:1"})
	})
	check(t, "policy from the file", func() {
		tpl.ResourceCountIs(jsii.String("AWS::IoT::Policy"), jsii.Number(1))
	})
}

func TestThingBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ctx     map[string]string
		wantErr string
	}{
		{"thing name not a stack name", map[string]string{"thing_name": "pool:1"}, "give a valid name with -c stack_name=<name>"},
		{"iot:* policy", map[string]string{"thing_name": "d1", "policy_file": "../testdata/thing/policy-iot-star.json"}, "allow_broad_policy=true"},
		{"policy not JSON", map[string]string{"thing_name": "d1", "policy_file": "../testdata/thing/policy-not-json.json"}, "policy-not-json.json"},
		{"unscoped connect", map[string]string{"thing_name": "d1", "policy_file": "../testdata/thing/policy-unscoped-connect.json"}, "Connect"},
		{"missing policy file", map[string]string{"thing_name": "d1", "policy_file": "nope.json"}, `context policy_file "nope.json": no such file or directory`},
		{"unknown key algorithm", map[string]string{"thing_name": "d1", "key_algorithm": "DSA"}, `context key_algorithm "DSA" is not supported`},
		{"bad fleet_stacks", map[string]string{"thing_names": "a,b", "fleet_stacks": "0"}, "context fleet_stacks must be a whole number from 1 to 200"},
		{"large fleet without fleet_stacks", map[string]string{"thing_names": fleetNames(91)}, "91 things need several stacks: give their number with -c fleet_stacks=<n> (for example 2"},
		{"fleet_stacks too small", map[string]string{"thing_names": fleetNames(300), "fleet_stacks": "3"}, "would hold 99 things, more than the 97"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := synthApp(tc.ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// A broad policy passes only with the explicit flag.
func TestThingBroadPolicyFlag(t *testing.T) {
	if _, _, err := synthApp(map[string]string{"thing_name": "d1", "policy_file": "../testdata/thing/policy-iot-star.json", "allow_broad_policy": "true"}); err != nil {
		t.Fatalf("allow_broad_policy=true: error = %v, want none", err)
	}
}

func fleetNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%03d", i)
	}
	return strings.Join(names, ",")
}

func TestFleetStacks(t *testing.T) {
	tpls, _, err := synthApp(map[string]string{"thing_names": fleetNames(200), "fleet_name": "plant-a", "fleet_stacks": "4"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tpls) != 4 {
		t.Fatalf("fleet stacks = %v, want plant-a-1 to plant-a-4", keys(tpls))
	}
	total := 0
	for _, name := range []string{"plant-a-1", "plant-a-2", "plant-a-3", "plant-a-4"} {
		tpl, ok := tpls[name]
		if !ok {
			t.Fatalf("fleet stacks = %v, want %s", keys(tpls), name)
		}
		things := len(resourcesOfType(tpl, "AWS::IoT::Thing"))
		secrets := len(resourcesOfType(tpl, "AWS::SecretsManager::Secret"))
		if things == 0 || things > 97 || secrets != things {
			t.Errorf("%s: %d things, %d secrets; want 1 to 97 things, one secret each", name, things, secrets)
		}
		total += things
		res, _ := templateJSON(tpl)["Resources"].(map[string]interface{})
		if len(res) > 500 {
			t.Errorf("%s has %d resources, want at most 500", name, len(res))
		}
		if size := len(mustJSON(templateJSON(tpl))); size > 1<<20 {
			t.Errorf("%s template is %d bytes, want at most 1 MB", name, size)
		}
	}
	if total != 200 {
		t.Errorf("things over all fleet stacks = %d, want 200", total)
	}
	var secretStack string
	for name, tpl := range tpls {
		for _, props := range resourcesOfType(tpl, "AWS::SecretsManager::Secret") {
			if props["Name"] == "plant-a/sensor-190/private-key" {
				secretStack = name
			}
		}
	}
	if secretStack == "" {
		t.Errorf("no secret named plant-a/sensor-190/private-key: fleet secrets are named by fleet and thing")
	}
}

// A thing's stack depends on its name and the number of stacks only: removing or adding other things moves nothing.
func TestFleetShardsAreStable(t *testing.T) {
	names := strings.Split(fleetNames(300), ",")
	where := func(list []string) map[string]int {
		m := map[string]int{}
		for i, shard := range fleetShards(list, 5) {
			for _, n := range shard {
				m[n] = i
			}
		}
		return m
	}
	before := where(names)
	after := where(append(append([]string{"new-device"}, names[:10]...), names[11:]...)) // one added, one removed
	for _, n := range names {
		if n == names[10] {
			continue
		}
		if after[n] != before[n] {
			t.Errorf("%s moved from stack %d to %d when another thing was added and one removed", n, before[n]+1, after[n]+1)
		}
	}
}

// A fleet stack whose things have all left is still defined, so that deploying it deletes them.
func TestFleetEmptyStackStillDefined(t *testing.T) {
	tpls, _, err := synthApp(map[string]string{"thing_names": "a", "fleet_stacks": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tpls) != 3 {
		t.Fatalf("fleet stacks = %v, want 3 (two without things)", keys(tpls))
	}
}
