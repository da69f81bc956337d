package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// DefaultPolicyName is the seed's policy name (jitr-mr-policy).
const DefaultPolicyName = "jitr-mr-policy"

// IoTAPI is the part of the AWS IoT client the handler uses.
type IoTAPI interface {
	DescribeCACertificate(context.Context, *iot.DescribeCACertificateInput, ...func(*iot.Options)) (*iot.DescribeCACertificateOutput, error)
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	UpdateCertificate(context.Context, *iot.UpdateCertificateInput, ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	DescribeThing(context.Context, *iot.DescribeThingInput, ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
	CreateThing(context.Context, *iot.CreateThingInput, ...func(*iot.Options)) (*iot.CreateThingOutput, error)
	AttachThingPrincipal(context.Context, *iot.AttachThingPrincipalInput, ...func(*iot.Options)) (*iot.AttachThingPrincipalOutput, error)
	AttachPolicy(context.Context, *iot.AttachPolicyInput, ...func(*iot.Options)) (*iot.AttachPolicyOutput, error)
}

// Config is the function's configuration, read once from the environment.
type Config struct {
	CACertificateID  string
	PolicyName       string
	ThingNamePattern *regexp.Regexp
	MinRSABits       int
}

// Event is the AWS IoT certificate registration event.
type Event struct {
	CertificateID                    string `json:"certificateId"`
	CACertificateID                  string `json:"caCertificateId"`
	Timestamp                        int64  `json:"timestamp"`
	CertificateStatus                string `json:"certificateStatus"`
	AWSAccountID                     string `json:"awsAccountId"`
	CertificateRegistrationTimestamp *int64 `json:"certificateRegistrationTimestamp"`
}

// Result reports what the function did with one event.
type Result struct {
	Status        string `json:"status"`
	CertificateID string `json:"certificateId,omitempty"`
	ThingName     string `json:"thingName,omitempty"`
}

// Handler registers device certificates signed by the stack's CA.
type Handler struct {
	IoT    IoTAPI
	Config Config
	Now    func() time.Time
}

func getenv(k string) string { return os.Getenv(k) }

// ConfigFromEnv reads Config with getenv; see main.go for the variables.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{CACertificateID: getenv("CA_CERTIFICATE_ID"), PolicyName: getenv("POLICY_NAME"), MinRSABits: 2048}
	if c.CACertificateID == "" {
		return Config{}, fmt.Errorf("CA_CERTIFICATE_ID is required")
	}
	if c.PolicyName == "" {
		c.PolicyName = DefaultPolicyName
	}
	if p := getenv("THING_NAME_PATTERN"); p != "" {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return Config{}, fmt.Errorf("THING_NAME_PATTERN %q: %w", p, err)
		}
		c.ThingNamePattern = re
	}
	if v := getenv("MIN_RSA_BITS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2048 {
			return Config{}, fmt.Errorf("MIN_RSA_BITS %q: want a number of at least 2048", v)
		}
		c.MinRSABits = n
	}
	return c, nil
}

// Handle processes one registration event.
func (h *Handler) Handle(ctx context.Context, ev Event) (Result, error) {
	if ev.CACertificateID != h.Config.CACertificateID {
		return Result{Status: "ignored"}, nil
	}
	return Result{}, fmt.Errorf("jitr: certificate %s: registration is not available in this build", ev.CertificateID)
}
