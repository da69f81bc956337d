package stacks

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/constructs/iotcert"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/selection"
)

// CrossAccountStackName is the seed's stack name (its main class name in kebab case); producer clients and runbooks use it.
const CrossAccountStackName = "certificate-based-stack"

// Files of the DESIRED_TOPIC mode, named as the seed names them.
const (
	FixedPrivateKeyFile = "fixed-private.pem"
	FixedCSRFile        = "fixed-public.csr"
)

// Context keys of the cross-account stack besides the selecting ones.
const (
	ctxProducer     = "producer"
	ctxValidityDays = "validity_days"
	ctxActivate     = "activate"
	ctxMQTTClientID = "mqtt_client_id"
	// ctxAllowTopicWildcard lets a topic with IAM wildcards ("*", "?") into the partner's policy, on purpose.
	ctxAllowTopicWildcard = "allow_topic_wildcard"
	// ctxBasicIngestRules lists the rules a partner's Basic Ingest topic ($aws/rules/<rule>/...) may name.
	ctxBasicIngestRules = "basic_ingest_rules"
)

// synthLog receives what the stack reports at synth: the grant the consumer approves by deploying.
var synthLog io.Writer = os.Stderr

// DefaultValidityDays is how long a partner certificate is valid when validity_days is not given.
const DefaultValidityDays = 365

var (
	producerRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,39}$`)
	// MQTT client ids that an IoT policy resource can name literally (no policy variables, no wildcards).
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,128}$`)
)

// CrossAccountStackProps configures NewCrossAccountStack.
type CrossAccountStackProps struct {
	awscdk.StackProps
	// CSRPEM is the producer's certificate signing request. Required unless Destroy.
	CSRPEM []byte
	// Topic is the one topic the producer may publish to, taken from the CSR's common name. Required unless Destroy.
	Topic string
	// Producer, when set, suffixes the stack name and the export names so that several producers share an account.
	Producer string
	// ValidityDays of the issued certificate. Default: 365.
	ValidityDays int
	// Active registers the certificate ACTIVE instead of INACTIVE, skipping the consumer's approval step.
	Active bool
	// MQTTClientID, when set, also allows iot:Connect for this one client id, so the producer can publish over MQTT.
	MQTTClientID string
	// AllowTopicWildcard lets Topic hold IAM wildcards ("*", "?"): the partner may then publish to every topic they
	// match ("*" alone is every topic of the account). Policy variables and reserved topics are refused regardless.
	AllowTopicWildcard bool
	// BasicIngestRules are the rules a Basic Ingest topic ($aws/rules/<rule>/<topic>) may deliver to: such a topic
	// reaches the rule directly, and the rule acts with its own role on what the partner sends.
	// Default: none (a Basic Ingest topic is refused).
	BasicIngestRules []string
	// Destroy defines the stack with no resources: `cdk destroy` only needs its name.
	Destroy bool
}

// StackName is certificate-based-stack, or certificate-based-stack-<producer>.
func (p *CrossAccountStackProps) StackName() string {
	if p.Producer == "" {
		return CrossAccountStackName
	}
	return CrossAccountStackName + "-" + p.Producer
}

// exportName keeps the seed's export names for the single-producer case.
func (p *CrossAccountStackProps) exportName(name string) string {
	if p.Producer == "" {
		return name
	}
	return name + "-" + p.Producer
}

// CrossAccountStack turns a partner's CSR into an AWS IoT certificate that may publish to one agreed topic.
type CrossAccountStack struct {
	awscdk.Stack
	Certificate awsiot.CfnCertificate
	Policy      awsiot.CfnPolicy
	Signer      *iotcert.Provider
}

// NewCrossAccountStack defines the signer custom resource, the SNI_ONLY certificate it issues, the partner policy and
// the outputs the seed's users read.
func NewCrossAccountStack(scope constructs.Construct, id string, props *CrossAccountStackProps) *CrossAccountStack {
	p := *props
	if p.ValidityDays == 0 {
		p.ValidityDays = DefaultValidityDays
	}
	sp := p.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Cross-account certificate signing: a partner's CSR becomes an AWS IoT certificate that may publish to one topic")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	s := &CrossAccountStack{Stack: stack}
	if p.Destroy {
		return s
	}
	if p.Topic == "" || len(p.CSRPEM) == 0 {
		panic("certificate-based-stack: a CSR and its topic are required unless DESTROY is set")
	}
	if err := pki.CheckTopicGrant(p.Topic, p.AllowTopicWildcard); err != nil {
		panic(fmt.Sprintf("certificate-based-stack: %v%s", err, topicWildcardHint(p.Topic, p.AllowTopicWildcard)))
	}
	if err := checkBasicIngest(p.Topic, p.BasicIngestRules); err != nil {
		panic(fmt.Sprintf("certificate-based-stack: %v", err))
	}

	fn := iotcert.NewGoFunction(stack, "CertificateSignerFunction", &iotcert.GoFunctionProps{
		Handler:     "certsigner",
		Description: "Signs the partner's CSR into an SNI_ONLY AWS IoT certificate, and deactivates it before deletion",
		Timeout:     awscdk.Duration_Seconds(jsii.Number(30)),
		MemorySize:  256,
		// DescribeEndpoint has no resource ARN.
		UnscopedActions: []string{"iot:DescribeEndpoint"},
	})
	certArns := iotArn(stack, "cert", "*")
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iot:DescribeCertificate", "iot:UpdateCertificate",
			"iot:ListPrincipalThings", "iot:ListAttachedPolicies", "iot:DetachPolicy"),
		Resources: &[]*string{certArns},
	}))
	// Before the stack deletes the certificate, the releaser detaches whatever was attached to it outside the stack.
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DetachThingPrincipal"),
		Resources: &[]*string{iotArn(stack, "thing", "*")},
	}))
	// The signer remembers the certificate it issued for each set of properties (so an update rollback gets it back),
	// under a path of its own stack.
	paramPath := "iotcert/certsigner/" + *stack.StackName() + "/*"
	fn.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"),
		Resources: &[]*string{stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("ssm"), Resource: jsii.String("parameter"), ResourceName: jsii.String(paramPath),
		})},
	}))
	iotcert.Acknowledge(fn.Role, "AwsSolutions-IAM5",
		"the certificate id is the SHA-256 of a certificate this function has not signed yet, so no narrower ARN exists; "+
			"things attached to it outside the stack have names the stack cannot know; the parameters are named by a hash of the properties",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*",
		"Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
		"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/"+paramPath)
	s.Signer = iotcert.NewProvider(stack, "CertificateSignerProvider", fn)

	signer := awscdk.NewCustomResource(stack, jsii.String("CertificateSigner"), &awscdk.CustomResourceProps{
		ServiceToken: s.Signer.ServiceToken(),
		ResourceType: jsii.String("Custom::CertificateSigner"),
		Properties: &map[string]interface{}{
			"CSR":          string(p.CSRPEM),
			"AllowedTopic": p.Topic,
			"ValidityDays": strconv.Itoa(p.ValidityDays),
		},
	})
	pinLogicalID(signer, "CertificateSigner")

	status := "INACTIVE"
	if p.Active {
		status = "ACTIVE"
	}
	s.Certificate = awsiot.NewCfnCertificate(stack, jsii.String("Certificate"), &awsiot.CfnCertificateProps{
		CertificateMode: jsii.String("SNI_ONLY"),
		CertificatePem:  signer.GetAttString(jsii.String("pem")),
		Status:          jsii.String(status),
	})

	// Deleted before the certificate (it depends on it): deactivates an ACTIVE certificate so the delete succeeds.
	releaser := awscdk.NewCustomResource(stack, jsii.String("CertificateReleaser"), &awscdk.CustomResourceProps{
		ServiceToken: s.Signer.ServiceToken(),
		ResourceType: jsii.String("Custom::CertificateReleaser"),
		Properties:   &map[string]interface{}{"CertificateId": s.Certificate.Ref()},
	})
	pinLogicalID(releaser, "CertificateReleaser")

	s.Policy = awsiot.NewCfnPolicy(stack, jsii.String("PartnerPolicy"), &awsiot.CfnPolicyProps{
		PolicyName:     awscdk.Fn_Join(jsii.String("-"), &[]*string{awscdk.Aws_STACK_NAME(), jsii.String("PartnerPolicy")}),
		PolicyDocument: partnerPolicy(stack, p.Topic, p.MQTTClientID),
	})
	// The Ref on the policy name orders the attachment after the policy, as the seed's DependsOn did.
	awsiot.NewCfnPolicyPrincipalAttachment(stack, jsii.String("PrincipalPolicyAttachment"), &awsiot.CfnPolicyPrincipalAttachmentProps{
		PolicyName: s.Policy.Ref(),
		Principal:  s.Certificate.AttrArn(),
	})

	crossAccountOutputs(stack, s.Certificate, &p)
	reportGrant(stack, &p)
	return s
}

// checkBasicIngest refuses a Basic Ingest topic of a rule the operator did not list, and says how to list it.
func checkBasicIngest(topic string, rules []string) error {
	err := pki.CheckBasicIngestRule(topic, rules)
	if err == nil {
		return nil
	}
	rule, _ := pki.BasicIngestRule(topic)
	return fmt.Errorf("%v: to allow it, list it in context %s (-c %s=%s)", err, ctxBasicIngestRules, ctxBasicIngestRules, strings.Join(append(append([]string(nil), rules...), rule), ","))
}

// topicWildcardHint tells how to grant a wildcard topic on purpose, when a wildcard is all that was refused.
func topicWildcardHint(topic string, allowed bool) string {
	if allowed || pki.CheckTopicGrant(topic, true) != nil {
		return ""
	}
	return " (to grant it on purpose, add -c " + ctxAllowTopicWildcard + "=true)"
}

// reportGrant prints, at synth, the topic and the exact policy resources the consumer approves by deploying.
func reportGrant(stack awscdk.Stack, p *CrossAccountStackProps) {
	lit := func(v *string, placeholder string) string {
		if v == nil || *awscdk.Token_IsUnresolved(v) {
			return placeholder
		}
		return *v
	}
	arn := "arn:" + lit(stack.Partition(), "${AWS::Partition}") + ":iot:" + lit(stack.Region(), "${AWS::Region}") + ":" +
		lit(stack.Account(), "${AWS::AccountId}") + ":"
	name := *stack.StackName()
	fmt.Fprintf(synthLog, "%s: the partner may publish (iot:Publish) to topic %q: %stopic/%s\n", name, p.Topic, arn, p.Topic)
	if p.MQTTClientID != "" {
		fmt.Fprintf(synthLog, "%s: the partner may connect (iot:Connect) as client id %q: %sclient/%s\n", name, p.MQTTClientID, arn, p.MQTTClientID)
	}
	if strings.ContainsAny(p.Topic, "*?") {
		fmt.Fprintf(synthLog, "%s: warning: %s=true: the partner may publish to every topic that %s matches\n", name, ctxAllowTopicWildcard, p.Topic)
	}
}

// partnerPolicy allows iot:Publish on exactly the topic's ARN and, in MQTT mode, iot:Connect as one client id.
func partnerPolicy(stack awscdk.Stack, topic, clientID string) map[string]interface{} {
	arn := func(kind, name string) *string {
		return awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("arn:"), stack.Partition(), jsii.String(":iot:"), stack.Region(), jsii.String(":"), stack.Account(),
			jsii.String(":" + kind + "/" + name),
		})
	}
	statements := []interface{}{
		map[string]interface{}{"Effect": "Allow", "Action": "iot:Publish", "Resource": arn("topic", topic)},
	}
	if clientID != "" {
		statements = append(statements, map[string]interface{}{"Effect": "Allow", "Action": "iot:Connect", "Resource": arn("client", clientID)})
	}
	return map[string]interface{}{"Version": "2012-10-17", "Statement": statements}
}

func crossAccountOutputs(stack awscdk.Stack, cert awsiot.CfnCertificate, p *CrossAccountStackProps) {
	id := cert.Ref() // the certificate id: the SHA-256 fingerprint of its DER
	join := func(parts ...*string) *string { return awscdk.Fn_Join(jsii.String(""), &parts) }
	s := jsii.String
	url := join(s("https://console.aws.amazon.com/iot/home?region="), stack.Region(), s("#/certificate/"), id)
	values := []struct {
		key, desc string
		value     *string
		export    bool
	}{
		{"CertificateURL", "Console page of the certificate: review it, then Actions -> Activate", url, true},
		{"CertificateARN", "ARN of the partner certificate", cert.AttrArn(), true},
		{"CertificateID", "Id (SHA-256 fingerprint) of the partner certificate", id, true},
		{"CertificatePEMFile", "File that CertificatePEMCommand writes; send it to the producer", join(id, s(".pem")), true},
		{"CertificatePEMCommand", "Writes the certificate for the producer",
			join(s("aws iot describe-certificate --certificate-id "), id, s(" --query certificateDescription.certificatePem --output text > "), id, s(".pem")), true},
		{"CertificateActivateCommand", "Activates the certificate (the consumer's approval)",
			join(s("aws iot update-certificate --certificate-id "), id, s(" --new-status ACTIVE")), true},
		// The seed README's output names, for scripts written against it.
		{"CertificateARNOutput", "Same as CertificateARN (the seed README's name)", cert.AttrArn(), false},
		{"CertificateIDOutput", "Same as CertificateID (the seed README's name)", id, false},
		{"CertificateURLOutput", "Same as CertificateURL (the seed README's name)", url, false},
	}
	for _, o := range values {
		props := &awscdk.CfnOutputProps{Value: o.value, Description: s(o.desc)}
		if o.export {
			props.ExportName = s(p.exportName(o.key))
		}
		awscdk.NewCfnOutput(stack, s(o.key), props)
	}
}

// pinLogicalID keeps a custom resource's logical id stable (and equal to the seed's) whatever the construct tree.
func pinLogicalID(r awscdk.CustomResource, id string) {
	r.Node().DefaultChild().(awscdk.CfnResource).OverrideLogicalId(jsii.String(id))
}

// crossAccountPropsFromContext reads the CSR (or makes one for DESIRED_TOPIC) and the stack's options.
func crossAccountPropsFromContext(sel selection.Selection, ctx selection.Lookup) (*CrossAccountStackProps, error) {
	p := &CrossAccountStackProps{Destroy: sel.Destroy, Producer: optString(ctx, ctxProducer, "")}
	if p.Producer != "" && !producerRE.MatchString(p.Producer) {
		return nil, fmt.Errorf("context %s %q is not valid: use 1 to 40 letters, digits and '-', starting with a letter or digit", ctxProducer, p.Producer)
	}
	if sel.Destroy {
		return p, nil
	}
	var err error
	if p.ValidityDays, err = optInt(ctx, ctxValidityDays, DefaultValidityDays, 1, 36500); err != nil {
		return nil, err
	}
	if p.Active, err = optBool(ctx, ctxActivate); err != nil {
		return nil, err
	}
	if p.MQTTClientID = optString(ctx, ctxMQTTClientID, ""); p.MQTTClientID != "" && !clientIDRE.MatchString(p.MQTTClientID) {
		return nil, fmt.Errorf("context %s %q is not valid: use 1 to 128 characters of a-z, A-Z, 0-9, ':', '_' and '-'", ctxMQTTClientID, p.MQTTClientID)
	}
	if p.AllowTopicWildcard, err = optBool(ctx, ctxAllowTopicWildcard); err != nil {
		return nil, err
	}
	if p.BasicIngestRules, err = pki.ParseRuleNames(optString(ctx, ctxBasicIngestRules, "")); err != nil {
		return nil, fmt.Errorf("context %s: %v", ctxBasicIngestRules, err)
	}
	switch {
	case sel.CSRFile != "":
		p.CSRPEM, err = os.ReadFile(sel.CSRFile)
		if err != nil {
			return nil, fmt.Errorf("CSR_FILE %q: %w", sel.CSRFile, unwrapPathError(err))
		}
	default:
		// Checked before any file is written.
		if err := pki.CheckTopicGrant(sel.DesiredTopic, p.AllowTopicWildcard); err != nil {
			return nil, fmt.Errorf("DESIRED_TOPIC: %v%s", err, topicWildcardHint(sel.DesiredTopic, p.AllowTopicWildcard))
		}
		if err := checkBasicIngest(sel.DesiredTopic, p.BasicIngestRules); err != nil {
			return nil, fmt.Errorf("DESIRED_TOPIC: %v", err)
		}
		p.CSRPEM, err = ensureFixedCSR(".", sel.DesiredTopic)
		if err != nil {
			return nil, err
		}
	}
	csr, err := pki.ParseCSR(p.CSRPEM)
	if err != nil {
		return nil, fmt.Errorf("CSR %s: %w", csrSource(sel), err)
	}
	if p.Topic, err = pki.TopicFromCSR(csr); err != nil {
		return nil, fmt.Errorf("CSR %s: %w", csrSource(sel), err)
	}
	if err := pki.CheckTopicGrant(p.Topic, p.AllowTopicWildcard); err != nil {
		return nil, fmt.Errorf("CSR %s: csr common name: %v%s", csrSource(sel), err, topicWildcardHint(p.Topic, p.AllowTopicWildcard))
	}
	if err := checkBasicIngest(p.Topic, p.BasicIngestRules); err != nil {
		return nil, fmt.Errorf("CSR %s: csr common name: %v", csrSource(sel), err)
	}
	return p, nil
}

func csrSource(sel selection.Selection) string {
	if sel.CSRFile != "" {
		return strconv.Quote(sel.CSRFile)
	}
	return FixedCSRFile
}

// ensureFixedCSR implements DESIRED_TOPIC: the producer's key (fixed-private.pem, mode 0600) and CSR (fixed-public.csr)
// are made in dir once. An existing key is never overwritten: it is reused, and so is its CSR while it still names the
// topic, so that every synth yields the same CSR and the certificate is not reissued on each deploy.
func ensureFixedCSR(dir, topic string) ([]byte, error) {
	if err := pki.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("DESIRED_TOPIC: %w", err)
	}
	// Validate first, write after: the topic becomes the CSR's common name, which X.509 bounds tighter than AWS IoT
	// bounds a topic.
	if n := utf8.RuneCountInString(pki.EncodeTopic(topic)); n > pki.MaxCommonNameLength {
		return nil, fmt.Errorf("DESIRED_TOPIC: the topic is %d characters as a certificate common name (\"/\" written as %%2F): X.509 allows at most %d", n, pki.MaxCommonNameLength)
	}
	keyPath, csrPath := filepath.Join(dir, FixedPrivateKeyFile), filepath.Join(dir, FixedCSRFile)
	keyPEM, err := os.ReadFile(keyPath)
	var key crypto.Signer
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k, err := pki.GenerateKey(pki.KeyECP384)
		if err != nil {
			return nil, err
		}
		if keyPEM, err = pki.EncodePrivateKey(k); err != nil {
			return nil, err
		}
		// O_EXCL: never replace a key that appeared meanwhile.
		f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", FixedPrivateKeyFile, unwrapPathError(err))
		}
		if _, err := f.Write(keyPEM); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", FixedPrivateKeyFile, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write %s: %w", FixedPrivateKeyFile, err)
		}
		key = k
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", FixedPrivateKeyFile, unwrapPathError(err))
	default:
		k, err := pki.ParsePrivateKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", FixedPrivateKeyFile, err)
		}
		key = k
	}
	if old, err := os.ReadFile(csrPath); err == nil {
		if csr, err := pki.ParseCSR(old); err == nil && samePublicKey(csr, key.Public()) {
			if t, err := pki.TopicFromCSR(csr); err == nil && t == topic {
				return old, nil
			}
		}
	}
	csrPEM, err := pki.NewCSR(key, pki.EncodeTopic(topic))
	if err != nil {
		return nil, fmt.Errorf("DESIRED_TOPIC %q: %w", topic, err)
	}
	if err := os.WriteFile(csrPath, csrPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", FixedCSRFile, unwrapPathError(err))
	}
	return csrPEM, nil
}

func samePublicKey(csr *x509.CertificateRequest, pub any) bool {
	a, err1 := x509.MarshalPKIXPublicKey(csr.PublicKey)
	b, err2 := x509.MarshalPKIXPublicKey(pub)
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// unwrapPathError drops the path the caller already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
