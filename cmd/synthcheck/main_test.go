package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeTemplate(t *testing.T, tpl map[string]interface{}) string {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(tpl)
	path := filepath.Join(dir, "S.template.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGuardSuppressionsNeedReasons(t *testing.T) {
	path := writeTemplate(t, map[string]interface{}{"Resources": map[string]interface{}{
		"Fn": map[string]interface{}{"Type": "AWS::Lambda::Function", "Metadata": map[string]interface{}{"guard": map[string]interface{}{
			"SuppressedRules": []string{"LAMBDA_INSIDE_VPC_CHECK"},
			"Reasons":         map[string]string{"LAMBDA_INSIDE_VPC_CHECK": "calls only public AWS endpoints"},
		}}},
		"Logs": map[string]interface{}{"Type": "AWS::Logs::LogGroup", "Metadata": map[string]interface{}{"guard": map[string]interface{}{
			"SuppressedRules": []string{"CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK"},
		}}},
	}})
	sup, problems, err := guardSuppressions(path)
	if err != nil {
		t.Fatal(err)
	}
	if !sup["LAMBDA_INSIDE_VPC_CHECK"]["Fn"] {
		t.Errorf("guardSuppressions() = %v, want LAMBDA_INSIDE_VPC_CHECK on Fn", sup)
	}
	if sup["CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK"]["Logs"] {
		t.Errorf("guardSuppressions() honoured an acknowledgement without a reason: %v", sup)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK is acknowledged on Logs without a reason") {
		t.Errorf("guardSuppressions() problems = %v, want the one without a reason", problems)
	}
}

func TestResourcesIn(t *testing.T) {
	raw := json.RawMessage(`{"checks":[{"Clause":{"path":"/Resources/B/Properties/X"}},{"x":{"path":"/Resources/A/Properties"}},{"path":"/Outputs/O"}]}`)
	if got, want := resourcesIn(raw), []string{"A", "B"}; !reflect.DeepEqual(got, want) {
		t.Errorf("resourcesIn() = %v, want %v", got, want)
	}
}

func TestCheckIoTPolicies(t *testing.T) {
	path := writeTemplate(t, map[string]interface{}{"Resources": map[string]interface{}{
		"Broad": map[string]interface{}{"Type": "AWS::IoT::Policy", "Properties": map[string]interface{}{"PolicyDocument": map[string]interface{}{
			"Version": "2012-10-17", "Statement": []interface{}{map[string]interface{}{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}},
		}}},
	}})
	findings, err := checkIoTPolicies(filepath.Dir(path), false)
	if err != nil || len(findings) == 0 || !strings.Contains(strings.Join(findings, "\n"), "iot-action-wildcard") {
		t.Errorf("checkIoTPolicies() = %v, %v, want an iot-action-wildcard finding", findings, err)
	}
	if findings, _ := checkIoTPolicies(filepath.Dir(path), allowBroad([]string{"allow_broad_policy=true"})); len(findings) != 0 {
		t.Errorf("checkIoTPolicies(allow_broad_policy=true) = %v, want none", findings)
	}
}

func TestSynthFindings(t *testing.T) {
	out := []byte("ERROR AwsSolutions-IAM5[Action::iot:*]: wildcard\n   BadStack/Role\nAcknowledge with 'CloudFormation-Validate::F3012'\nplain line\n")
	got := synthFindings("bad", out)
	if len(got) != 2 || !strings.Contains(got[0], "AwsSolutions-IAM5") || !strings.Contains(got[1], "F3012") {
		t.Errorf("synthFindings() = %v, want the nag error and the validator id", got)
	}
}

// A resource that cdk destroy keeps under a fixed name must be listed in the README's Uninstall section, where a
// placeholder stands for any value.
func TestRetainedNames(t *testing.T) {
	path := writeTemplate(t, map[string]interface{}{"Resources": map[string]interface{}{
		"Table":  map[string]interface{}{"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "Properties": map[string]interface{}{"TableName": "certificates-blue"}},
		"Policy": map[string]interface{}{"Type": "AWS::IoT::Policy", "DeletionPolicy": "Retain", "Properties": map[string]interface{}{"PolicyName": "jitr-mr-policy"}},
		"Gone":   map[string]interface{}{"Type": "AWS::IoT::Policy", "DeletionPolicy": "Delete", "Properties": map[string]interface{}{"PolicyName": "other"}},
		"Joined": map[string]interface{}{"Type": "AWS::IoT::Policy", "DeletionPolicy": "Retain", "Properties": map[string]interface{}{"PolicyName": map[string]interface{}{"Fn::Join": []interface{}{}}}},
	}})
	readme := []byte("# x\n## Uninstall\n\n| `certificates-<rotation_name>` |\n\n## Layout\n`jitr-mr-policy`\n")
	got, err := retainedNames(path, uninstallNames(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], `Policy (AWS::IoT::Policy) keeps its fixed PolicyName "jitr-mr-policy" after cdk destroy`) {
		t.Errorf("retainedNames() = %q, want only jitr-mr-policy (listed outside the Uninstall section)", got)
	}
	// The real README lists every retained name the stacks have today.
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := uninstallNames(data)
	for _, name := range []string{"certificates", "certificates-blue", "CvmGenericType", "multa_backend_policy_dev", "jitr-mr-policy"} {
		if !listed(name) {
			t.Errorf("README's Uninstall section does not list %q", name)
		}
	}
}

// A stack with a Private CA must have printed its cost line.
func TestMissingCostLines(t *testing.T) {
	dir := filepath.Dir(writeTemplate(t, map[string]interface{}{"Resources": map[string]interface{}{
		"CA": map[string]interface{}{"Type": "AWS::ACMPCA::CertificateAuthority"}}}))
	if got := missingCostLines(dir, []byte("nothing\n")); len(got) != 1 || !strings.Contains(got[0], "S: holds an AWS Private CA") {
		t.Errorf("missingCostLines(no line) = %q, want one finding for stack S", got)
	}
	line := []byte("cost: S holds a short-lived AWS Private CA: USD 50 a month while it exists (https://aws.amazon.com/private-ca/pricing/)\n")
	if got := missingCostLines(dir, line); len(got) != 0 {
		t.Errorf("missingCostLines(with the line) = %q, want none", got)
	}
}
