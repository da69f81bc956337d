package rotation

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Config is what the steps need to know about the deployment. Each function fills the part it uses from its
// environment (see the main.go of each function for its variables).
type Config struct {
	TableName string
	// Documents are the directory and key defaults the documents were defined with.
	Documents DocumentDefaults
	// CSRDocument and InstallDocument are the names (or ARNs) of the two SSM documents.
	CSRDocument, InstallDocument string
	// PCAARN, SigningAlgorithm, TemplateARN and ValidityDays describe the certificates issued.
	PCAARN, SigningAlgorithm, TemplateARN string
	ValidityDays                          int
	// ProfileARN, RoleARN and TrustAnchorARN are what hosts test new certificates against.
	ProfileARN, RoleARN, TrustAnchorARN string
	TopicARN                            string
	StateMachineARN                     string
	Schedule                            Schedule
	RenewShards                         int
	// MaxHosts bounds one run's selection; the rest stay due and are taken by the next run.
	MaxHosts int
	// ManifestBucket, when set, receives the selection as a JSON array for a distributed Map's ItemReader.
	ManifestBucket string
	// CRLBucket is the only bucket whose CRLs are forwarded, CRLName the name of the CRL in IAM Roles Anywhere.
	CRLBucket, CRLName string
	// CRLTable holds one record per trust anchor: the CRL's id, its number and the lock of a delivery.
	CRLTable string
}

// Environment variable names (the sample's where it had one).
const (
	EnvTable            = "TABLE_NAME"
	EnvCSRDocument      = "CSR_DOCUMENT"
	EnvInstallDocument  = "INSTALL_DOCUMENT"
	EnvKeyAlgorithm     = "KEY_ALGORITHM"
	EnvCertPath         = "DEFAULT_CERT_PATH"
	EnvKeyPath          = "DEFAULT_KEY_PATH"
	EnvCACertPath       = "DEFAULT_CACERT_PATH"
	EnvSigningHelper    = "DEFAULT_AWSSigningHelperPath"
	EnvPCAARN           = "PCAarn"
	EnvSigningAlgorithm = "SigningAlgorithm"
	EnvTemplateARN      = "TEMPLATE_ARN"
	EnvValidityDays     = "VALIDITY_DAYS"
	EnvProfileARN       = "IAMRAProfileARN"
	EnvRoleARN          = "IAMRARoleARN"
	EnvTrustAnchorARN   = "IAMRATrustAnchorARN"
	EnvTopicARN         = "SNS_TOPIC_ARN"
	EnvStateMachineARN  = "STATE_MACHINE_ARN"
	EnvRenewFraction    = "RENEW_FRACTION"
	EnvRenewJitter      = "RENEW_JITTER"
	EnvRenewShards      = "RENEW_SHARDS"
	EnvMaxHosts         = "MAX_HOSTS"
	EnvManifestBucket   = "MANIFEST_BUCKET"
	EnvCRLBucket        = "CRL_BUCKET"
	EnvCRLName          = "CRL_NAME"
	EnvCRLTable         = "CRL_TABLE"
)

// Defaults of the optional settings.
const (
	DefaultSigningAlgorithm = "SHA256WITHRSA"
	// DefaultTemplateARN is Private CA's client-authentication end-entity template (the sample used the default
	// EndEntityCertificate/V1, which also allows server authentication).
	DefaultTemplateARN  = "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1"
	DefaultValidityDays = 7
	DefaultMaxHosts     = 5000
	DefaultCRLName      = "CRL"
)

// Env reads configuration from the environment; required names are checked at once and reported together.
type Env struct {
	missing []string
	errs    []error
}

// Required returns the variable, noting it when empty.
func (e *Env) Required(name string) string {
	v := os.Getenv(name)
	if v == "" {
		e.missing = append(e.missing, name)
	}
	return v
}

// Optional returns the variable or def.
func (e *Env) Optional(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an integer in [lo, hi], or def when unset.
func (e *Env) Int(name string, def, lo, hi int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.errs = append(e.errs, fmt.Errorf("%s=%q is not an integer from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

// Float returns the variable as a number, or def when unset.
func (e *Env) Float(name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q is not a number", name, v))
		return def
	}
	return f
}

// Match checks a variable's value against a pattern.
func (e *Env) Match(name, value, pattern string) {
	if value != "" && !regexp.MustCompile(pattern).MatchString(value) {
		e.errs = append(e.errs, fmt.Errorf("%s=%q does not match %s", name, value, pattern))
	}
}

// Check adds err (if any) to the errors reported by Err.
func (e *Env) Check(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// Err reports every missing or malformed variable.
func (e *Env) Err() error {
	errs := e.errs
	if len(e.missing) > 0 {
		errs = append([]error{fmt.Errorf("environment variables %s must be set", strings.Join(e.missing, ", "))}, errs...)
	}
	return errors.Join(errs...)
}

// Documents reads the document defaults (the directories and key algorithm) and checks them.
func (e *Env) Documents() DocumentDefaults {
	d := DocumentDefaults{
		CertDir:          e.Optional(EnvCertPath, DefaultDir),
		KeyDir:           e.Optional(EnvKeyPath, DefaultDir),
		CACertDir:        e.Optional(EnvCACertPath, DefaultDir),
		SigningHelperDir: e.Optional(EnvSigningHelper, DefaultSigningHelperDir),
		KeyAlgorithm:     e.Optional(EnvKeyAlgorithm, "RSA_2048"),
	}
	e.Check(d.Validate())
	return d
}

// Schedule reads the renewal schedule and checks it.
func (e *Env) Schedule() Schedule {
	s := Schedule{
		Fraction: e.Float(EnvRenewFraction, DefaultSchedule.Fraction),
		Jitter:   e.Float(EnvRenewJitter, DefaultSchedule.Jitter),
	}
	e.Check(s.Validate())
	return s
}
