package iotcert

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/capability"
)

// DeviceProps configures NewDevice.
type DeviceProps struct {
	// ThingName names the AWS IoT thing and the certificate's subject. Required.
	ThingName string
	// Provider is the custom-resource provider backed by the thingcert function. Required.
	Provider *Provider
	// Key encrypts the secret that keeps the device's private key. Required.
	Key awskms.IKey
	// PolicyName is the AWS IoT policy attached to the certificate. Required.
	PolicyName *string
	// KeyAlgorithm of the device key: "EC_P256" (default), "EC_P384" or "RSA_2048".
	KeyAlgorithm string
	// SecretName names the secret; empty lets CloudFormation name it.
	SecretName string
	// Generation of the certificate; a change issues a new key and certificate (device rotation for per-thing
	// stacks). Zero leaves the property out (generation 1), so stacks that never rotate keep their template.
	Generation int
	// GraceDays the replaced certificate stays ACTIVE and attached after a new generation (with Generation only).
	GraceDays int
}

// Device is one AWS IoT thing with its certificate and policy attachment. The private key is made by the thingcert
// function and written straight into the device's secret: it never passes through the template or CloudFormation.
type Device struct {
	constructs.Construct
	Thing       awsiot.CfnThing
	Secret      awssecretsmanager.Secret
	Certificate awscdk.CustomResource
}

// NewDevice defines a thing, its key secret, its certificate and the thing and policy attachments. Logical ids are
// pinned by the caller's ids: the stateful resources keep them across refactors.
func NewDevice(scope constructs.Construct, id string, props *DeviceProps) *Device {
	p := *props
	if p.KeyAlgorithm == "" {
		p.KeyAlgorithm = "EC_P256"
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	d := &Device{Construct: c}
	d.Thing = awsiot.NewCfnThing(c, jsii.String("Thing"), &awsiot.CfnThingProps{ThingName: jsii.String(p.ThingName),
		// read back by cert-report: certificates cannot be tagged, so the thing says which capability made them
		AttributePayload: &awsiot.CfnThing_AttributePayloadProperty{Attributes: &map[string]*string{
			capability.ThingAttribute: jsii.String(capability.ThingStack)}}})

	sp := &awssecretsmanager.SecretProps{
		Description:   jsii.String("Private key, CSR and certificate of AWS IoT thing " + p.ThingName),
		EncryptionKey: p.Key,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	}
	if p.SecretName != "" {
		sp.SecretName = jsii.String(p.SecretName)
	}
	d.Secret = awssecretsmanager.NewSecret(c, jsii.String("PrivateKeySecret"), sp)
	Acknowledge(d.Secret, "AwsSolutions-SMG4",
		"the secret holds a device private key bound to its certificate; it is renewed by issuing a new certificate "+
			"(change key_algorithm or redeploy the thing), not by Secrets Manager rotation")

	crProps := map[string]interface{}{
		"ThingName":    p.ThingName,
		"KeyAlgorithm": p.KeyAlgorithm,
		"SecretId":     d.Secret.SecretArn(),
	}
	if p.Generation > 0 {
		crProps["Generation"] = fmt.Sprint(p.Generation)
		crProps["GraceDays"] = fmt.Sprint(p.GraceDays)
		crProps["PolicyName"] = p.PolicyName
	}
	d.Certificate = awscdk.NewCustomResource(c, jsii.String("ThingCertificate"), &awscdk.CustomResourceProps{
		ServiceToken: p.Provider.ServiceToken(),
		ResourceType: jsii.String("Custom::ThingCertificate"),
		Properties:   &crProps,
	})
	arn := d.Certificate.GetAttString(jsii.String("CertificateArn"))
	// Both attachments reference the certificate, so CloudFormation removes them before the certificate's Delete,
	// which then deactivates and deletes it.
	awsiot.NewCfnThingPrincipalAttachment(c, jsii.String("ThingCertificateAttachment"), &awsiot.CfnThingPrincipalAttachmentProps{
		Principal: arn,
		ThingName: d.Thing.Ref(),
	})
	awsiot.NewCfnPolicyPrincipalAttachment(c, jsii.String("ThingPolicyAttachment"), &awsiot.CfnPolicyPrincipalAttachmentProps{
		Principal:  arn,
		PolicyName: p.PolicyName,
	})
	return d
}

// CertificateID is the AWS IoT certificate id (the custom resource's CertificateId attribute).
func (d *Device) CertificateID() *string {
	return d.Certificate.GetAttString(jsii.String("CertificateId"))
}

// CertificateArn is the AWS IoT certificate ARN.
func (d *Device) CertificateArn() *string {
	return d.Certificate.GetAttString(jsii.String("CertificateArn"))
}

// PinLogicalIDs gives the device's resources the logical ids prefix+Thing, prefix+PrivateKeySecret,
// prefix+ThingCertificate, prefix+ThingCertificateAttachment and prefix+ThingPolicyAttachment (with an empty prefix:
// the per-thing seed's ids).
func (d *Device) PinLogicalIDs(prefix string) {
	for _, id := range []string{"Thing", "PrivateKeySecret", "ThingCertificate", "ThingCertificateAttachment", "ThingPolicyAttachment"} {
		child := d.Node().FindChild(jsii.String(id))
		res, ok := cfnResource(child)
		if !ok {
			panic("iotcert: device child " + id + " has no CloudFormation resource")
		}
		res.OverrideLogicalId(jsii.String(prefix + id))
	}
}
