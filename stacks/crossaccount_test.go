package stacks

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/selection"
	"github.com/iotcert/iotcert/policies"
)

func ctxOf(m map[string]string) selection.Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func testCSR(t testing.TB, name string) string {
	return filepath.Join("..", "testdata", "crossaccount", name)
}

// synthCrossAccount synthesizes the cross-account stack from context, as main.go does.
func synthCrossAccount(t *testing.T, context map[string]string) (assertions.Template, string) {
	t.Helper()
	tpl, name, err := synthCrossAccountE(context)
	if err != nil {
		t.Fatalf("synth with context %v: %v", context, err)
	}
	return tpl, name
}

func synthCrossAccountE(context map[string]string) (assertions.Template, string, error) {
	sel, err := selection.Select(ctxOf(context), ctxOf(nil))
	if err != nil {
		return nil, "", err
	}
	props, err := crossAccountPropsFromContext(sel, ctxOf(context))
	if err != nil {
		return nil, "", err
	}
	app := newTestApp(nil, nil)
	s := NewCrossAccountStack(app, props.StackName(), props)
	return assertions.Template_FromStack(s.Stack, nil), *s.StackName(), nil
}

var defaultCrossAccount = sync.OnceValues(func() (assertions.Template, string) {
	tpl, name, err := synthCrossAccountE(map[string]string{"CSR_FILE": testCSR(nil, "cross-account.csr")})
	if err != nil {
		panic(err)
	}
	return tpl, name
})

func TestCrossAccountStackResources(t *testing.T) {
	tpl, name := defaultCrossAccount()
	if name != "certificate-based-stack" {
		t.Errorf("stack name = %q, want certificate-based-stack", name)
	}
	check(t, "certificate is SNI_ONLY and INACTIVE", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::Certificate"), map[string]interface{}{
			"CertificateMode": "SNI_ONLY",
			"Status":          "INACTIVE",
			"CertificatePem":  map[string]interface{}{"Fn::GetAtt": []interface{}{"CertificateSigner", "pem"}},
		})
	})
	check(t, "one certificate, one policy, one attachment", func() {
		tpl.ResourceCountIs(jsii.String("AWS::IoT::Certificate"), jsii.Number(1))
		tpl.ResourceCountIs(jsii.String("AWS::IoT::Policy"), jsii.Number(1))
		tpl.ResourceCountIs(jsii.String("AWS::IoT::PolicyPrincipalAttachment"), jsii.Number(1))
	})
	check(t, "signer custom resource carries the CSR and the decoded topic", func() {
		tpl.HasResourceProperties(jsii.String("Custom::CertificateSigner"), map[string]interface{}{
			"AllowedTopic": "producer1/data",
			"ValidityDays": "365",
			"CSR":          assertions.Match_StringLikeRegexp(jsii.String("-----BEGIN CERTIFICATE REQUEST-----")),
		})
	})
	check(t, "releaser custom resource names the certificate", func() {
		tpl.HasResourceProperties(jsii.String("Custom::CertificateReleaser"), map[string]interface{}{
			"CertificateId": map[string]interface{}{"Ref": "Certificate"},
		})
	})
	check(t, "signer is a Go function on arm64 with JSON logs and tracing", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Runtime":       "provided.al2023",
			"Architectures": []interface{}{"arm64"},
			"Handler":       "bootstrap",
			"TracingConfig": map[string]interface{}{"Mode": "Active"},
			"LoggingConfig": assertions.Match_ObjectLike(&map[string]interface{}{"LogFormat": "JSON"}),
		})
	})
	// The signer's grants are pinned in full by TestSignerGrants.
}

// The seed's logical ids are kept: a stack deployed by the seed updates in place, and the certificate keeps its id.
func TestCrossAccountLogicalIDs(t *testing.T) {
	tpl, _ := defaultCrossAccount()
	for typ, id := range map[string]string{
		"AWS::IoT::Certificate":               "Certificate",
		"AWS::IoT::Policy":                    "PartnerPolicy",
		"AWS::IoT::PolicyPrincipalAttachment": "PrincipalPolicyAttachment",
		"Custom::CertificateSigner":           "CertificateSigner",
		"Custom::CertificateReleaser":         "CertificateReleaser",
	} {
		got := resourcesOfType(tpl, typ)
		if _, ok := got[id]; !ok || len(got) != 1 {
			t.Errorf("logical ids of %s = %v, want exactly [%s]", typ, keys(got), id)
		}
	}
}

func TestCrossAccountPolicyDocument(t *testing.T) {
	tpl, _ := defaultCrossAccount()
	want := map[string]interface{}{
		"PolicyName": map[string]interface{}{"Fn::Join": []interface{}{"-", []interface{}{map[string]interface{}{"Ref": "AWS::StackName"}, "PartnerPolicy"}}},
		"PolicyDocument": map[string]interface{}{
			"Version": "2012-10-17",
			"Statement": []interface{}{map[string]interface{}{
				"Effect": "Allow",
				"Action": "iot:Publish",
				"Resource": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
					"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":iot:", map[string]interface{}{"Ref": "AWS::Region"},
					":", map[string]interface{}{"Ref": "AWS::AccountId"}, ":topic/producer1/data",
				}}},
			}},
		},
	}
	got := resourcesOfType(tpl, "AWS::IoT::Policy")["PartnerPolicy"]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PartnerPolicy = %v, want %v", got, want)
	}
	// Asked of the evaluator: nothing beyond publishing to the agreed topic.
	doc, err := policies.ParseValue(got["PolicyDocument"])
	if err != nil {
		t.Fatal(err)
	}
	if findings, err := policies.AuditPartner(doc, "producer1/data", ""); err != nil || len(findings) != 0 {
		t.Errorf("AuditPartner(PartnerPolicy) = %v, %v; want no finding", findings, err)
	}
}

func TestCrossAccountOutputs(t *testing.T) {
	tpl, _ := defaultCrossAccount()
	outputs, _ := templateJSON(tpl)["Outputs"].(map[string]interface{})
	ref := map[string]interface{}{"Ref": "Certificate"}
	arn := map[string]interface{}{"Fn::GetAtt": []interface{}{"Certificate", "Arn"}}
	join := func(parts ...interface{}) interface{} {
		return map[string]interface{}{"Fn::Join": []interface{}{"", parts}}
	}
	url := join("https://console.aws.amazon.com/iot/home?region=", map[string]interface{}{"Ref": "AWS::Region"}, "#/certificate/", ref)
	for _, tc := range []struct {
		key    string
		value  interface{}
		export string
	}{
		{"CertificateURL", url, "CertificateURL"},
		{"CertificateARN", arn, "CertificateARN"},
		{"CertificateID", ref, "CertificateID"},
		{"CertificatePEMFile", join(ref, ".pem"), "CertificatePEMFile"},
		{"CertificatePEMCommand", join("aws iot describe-certificate --certificate-id ", ref,
			" --query certificateDescription.certificatePem --output text > ", ref, ".pem"), "CertificatePEMCommand"},
		{"CertificateActivateCommand", join("aws iot update-certificate --certificate-id ", ref, " --new-status ACTIVE"), "CertificateActivateCommand"},
		{"CertificateARNOutput", arn, ""},
		{"CertificateIDOutput", ref, ""},
		{"CertificateURLOutput", url, ""},
	} {
		o, ok := outputs[tc.key].(map[string]interface{})
		if !ok {
			t.Errorf("output %s missing; outputs are %v", tc.key, keys(outputs))
			continue
		}
		if !reflect.DeepEqual(o["Value"], tc.value) {
			t.Errorf("output %s = %v, want %v", tc.key, o["Value"], tc.value)
		}
		var export interface{}
		if e, ok := o["Export"].(map[string]interface{}); ok {
			export = e["Name"]
		}
		if tc.export == "" && export != nil || tc.export != "" && export != tc.export {
			t.Errorf("output %s export = %v, want %q", tc.key, export, tc.export)
		}
	}
}

func TestCrossAccountOptions(t *testing.T) {
	tpl, name := synthCrossAccount(t, map[string]string{
		"CSR_FILE": testCSR(t, "cross-account.csr"), "producer": "acme", "activate": "true",
		"mqtt_client_id": "acme-publisher", "validity_days": "30",
	})
	if name != "certificate-based-stack-acme" {
		t.Errorf("stack name = %q, want certificate-based-stack-acme", name)
	}
	check(t, "activate registers ACTIVE", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::Certificate"), map[string]interface{}{"Status": "ACTIVE"})
	})
	check(t, "validity reaches the signer", func() {
		tpl.HasResourceProperties(jsii.String("Custom::CertificateSigner"), map[string]interface{}{"ValidityDays": "30"})
	})
	check(t, "exports carry the producer", func() {
		tpl.HasOutput(jsii.String("CertificateARN"), map[string]interface{}{"Export": map[string]interface{}{"Name": "CertificateARN-acme"}})
	})
	check(t, "MQTT mode allows Connect for the one client id", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::Policy"), map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
				map[string]interface{}{"Effect": "Allow", "Action": "iot:Connect", "Resource": map[string]interface{}{"Fn::Join": []interface{}{"", assertions.Match_ArrayWith(&[]interface{}{":client/acme-publisher"})}}},
			})},
		})
	})
}

func TestCrossAccountDestroyNeedsNoCSR(t *testing.T) {
	tpl, name := synthCrossAccount(t, map[string]string{"DESTROY": "1"})
	if name != "certificate-based-stack" {
		t.Errorf("stack name = %q, want certificate-based-stack", name)
	}
	if res := templateJSON(tpl)["Resources"]; res != nil {
		if r, _ := res.(map[string]interface{}); len(r) > 0 {
			t.Errorf("destroy stack resources = %v, want none", keys(r))
		}
	}
}

func TestCrossAccountBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ctx     map[string]string
		wantErr string
	}{
		{"weak RSA key", map[string]string{"CSR_FILE": testCSR(t, "weak-rsa1024.csr")}, "rsa key of 1024 bits is too weak"},
		{"MQTT wildcard", map[string]string{"CSR_FILE": testCSR(t, "mqtt-wildcard.csr")}, `MQTT wildcard "+"`},
		{"bad signature", map[string]string{"CSR_FILE": testCSR(t, "bad-signature.csr")}, "signature"},
		{"not a CSR", map[string]string{"CSR_FILE": testCSR(t, "not-a-csr.csr")}, "not-a-csr.csr"},
		{"missing file", map[string]string{"CSR_FILE": "nope.csr"}, `CSR_FILE "nope.csr": no such file or directory`},
		{"bad producer", map[string]string{"CSR_FILE": testCSR(t, "cross-account.csr"), "producer": "a b"}, `context producer "a b" is not valid`},
		{"bad validity", map[string]string{"CSR_FILE": testCSR(t, "cross-account.csr"), "validity_days": "0"}, "context validity_days must be a whole number from 1 to 36500"},
		{"bad activate", map[string]string{"CSR_FILE": testCSR(t, "cross-account.csr"), "activate": "maybe"}, `context activate must be true or false, got "maybe"`},
		{"bad client id", map[string]string{"CSR_FILE": testCSR(t, "cross-account.csr"), "mqtt_client_id": "a/b"}, `context mqtt_client_id "a/b" is not valid`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := selection.Select(ctxOf(tc.ctx), ctxOf(nil))
			if err == nil {
				_, err = crossAccountPropsFromContext(sel, ctxOf(tc.ctx))
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines, want one", err)
			}
		})
	}
}

func TestEnsureFixedCSR(t *testing.T) {
	dir := t.TempDir()
	first, err := ensureFixedCSR(dir, "producer1/data")
	if err != nil {
		t.Fatalf("ensureFixedCSR() error = %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, FixedPrivateKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s mode = %v (%v), want 0600", FixedPrivateKeyFile, st, err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, FixedPrivateKeyFile))
	csr, err := pki.ParseCSR(first)
	if err != nil {
		t.Fatalf("ParseCSR(fixed-public.csr) error = %v", err)
	}
	if topic, _ := pki.TopicFromCSR(csr); topic != "producer1/data" {
		t.Errorf("topic of fixed-public.csr = %q, want producer1/data", topic)
	}
	// A second synth reuses key and CSR: same CSR, so the certificate is not reissued.
	second, err := ensureFixedCSR(dir, "producer1/data")
	if err != nil || string(second) != string(first) {
		t.Errorf("second ensureFixedCSR() = changed CSR (err %v), want the same CSR", err)
	}
	// A new topic keeps the key and makes a new CSR for it.
	third, err := ensureFixedCSR(dir, "producer1/other")
	if err != nil || string(third) == string(first) {
		t.Fatalf("ensureFixedCSR(new topic) = same CSR (err %v), want a new one", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, FixedPrivateKeyFile)); string(after) != string(key) {
		t.Errorf("%s was overwritten, want it kept", FixedPrivateKeyFile)
	}
	if _, err := ensureFixedCSR(dir, "a/#"); err == nil || !strings.Contains(err.Error(), "DESIRED_TOPIC") {
		t.Errorf("ensureFixedCSR(a/#) error = %v, want a DESIRED_TOPIC error", err)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
