package devrot

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iotcert/iotcert/internal/devrot/wire"
)

// Environment variables of both functions (the stack sets them).
const (
	EnvTable            = "TABLE_NAME"
	EnvTemplateARN      = "JOB_TEMPLATE_ARN"
	EnvCACertificateID  = "CA_CERTIFICATE_ID" // optional: no Private CA devices without it
	EnvPCAARN           = "PCA_ARN"           // required with CA_CERTIFICATE_ID
	EnvSigningAlgorithm = "SIGNING_ALGORITHM" // default SHA256WITHRSA
	EnvValidityDays     = "VALIDITY_DAYS"     // default 365
	EnvConfirmTimeout   = "CONFIRM_TIMEOUT_SECONDS"
	EnvGrace            = "GRACE_SECONDS"
	EnvDataEndpoint     = "IOT_DATA_ENDPOINT" // AWS_ENDPOINT_URL_IOT_DATA_PLANE wins over it
)

// ConfigFromEnv reads Config and the data-plane endpoint through getenv; an invalid value is an error naming it.
func ConfigFromEnv(getenv func(string) string) (Config, string, error) {
	c := Config{
		Table: getenv(EnvTable), TemplateARN: getenv(EnvTemplateARN), CACertificateID: getenv(EnvCACertificateID),
		PCAARN: getenv(EnvPCAARN), SigningAlgorithm: getenv(EnvSigningAlgorithm),
	}
	var errs []error
	if c.Table == "" {
		errs = append(errs, fmt.Errorf("%s is required", EnvTable))
	}
	if err := checkTemplateARN(c.TemplateARN); err != nil {
		errs = append(errs, err)
	}
	if c.CACertificateID != "" {
		if err := wire.CheckCertificateID(c.CACertificateID); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvCACertificateID, err))
		}
		if !strings.HasPrefix(c.PCAARN, "arn:") || !strings.Contains(c.PCAARN, ":certificate-authority/") {
			errs = append(errs, fmt.Errorf("%s %q is not a Private CA ARN (required with %s)", EnvPCAARN, c.PCAARN, EnvCACertificateID))
		}
	}
	switch c.SigningAlgorithm {
	case "", "SHA256WITHRSA", "SHA384WITHRSA", "SHA512WITHRSA", "SHA256WITHECDSA", "SHA384WITHECDSA", "SHA512WITHECDSA":
	default:
		errs = append(errs, fmt.Errorf("%s %q is not an AWS Private CA signing algorithm", EnvSigningAlgorithm, c.SigningAlgorithm))
	}
	num := func(name string, lo, hi int64) int64 {
		v := getenv(name)
		if v == "" {
			return 0
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil || i < lo || i > hi {
			errs = append(errs, fmt.Errorf("%s %q is not a whole number from %d to %d", name, v, lo, hi))
			return 0
		}
		return i
	}
	c.ValidityDays = num(EnvValidityDays, 1, 3650)
	c.ConfirmTimeout = time.Duration(num(EnvConfirmTimeout, 60, 7*24*3600)) * time.Second
	c.Grace = time.Duration(num(EnvGrace, 0, 365*24*3600)) * time.Second
	if getenv(EnvGrace) == "0" {
		c.Grace = time.Nanosecond // zero means "no grace": revoke at the next sweep
	}
	endpoint := getenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
	if endpoint == "" {
		endpoint = getenv(EnvDataEndpoint)
	}
	if endpoint == "" {
		region := getenv("AWS_REGION")
		if region == "" {
			errs = append(errs, errors.New("AWS_REGION is required"))
		}
		endpoint = "https://data-ats.iot." + region + ".amazonaws.com"
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("iot data endpoint %q is not an http(s) URL", endpoint))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, "", err
	}
	return c, endpoint, nil
}

// checkTemplateARN accepts the ARN of the rotation job template (JOB_TEMPLATE_ARN).
func checkTemplateARN(arn string) error {
	if !strings.HasPrefix(arn, "arn:") || !strings.HasSuffix(arn, ":jobtemplate/"+wire.TemplateID) {
		return fmt.Errorf("%s %q is not the ARN of job template %s", EnvTemplateARN, arn, wire.TemplateID)
	}
	return nil
}

// Environment variables of the due function besides JOB_TEMPLATE_ARN: the rotation job's options (the stack's, as on
// the template) and, optionally, the scheduled audit whose runs count.
const (
	EnvRollout        = "ROLLOUT_PER_MINUTE"
	EnvAbortPercent   = "ABORT_PERCENT"
	EnvAbortMin       = "ABORT_MIN_EXECUTED"
	EnvTimeout        = "TIMEOUT_MINUTES"
	EnvScheduledAudit = "SCHEDULED_AUDIT_NAME"
)

// DueFromEnv reads the due function's settings through getenv (IoT and Now are left to the caller); an invalid or
// missing value is an error naming it. The bounds are AWS IoT's (the stack's context keys check the same).
func DueFromEnv(getenv func(string) string) (Due, error) {
	d := Due{TemplateARN: getenv(EnvTemplateARN), ScheduledAudit: getenv(EnvScheduledAudit)}
	var errs []error
	if err := checkTemplateARN(d.TemplateARN); err != nil {
		errs = append(errs, err)
	}
	num := func(name string, lo, hi int64) int64 {
		v := getenv(name)
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil || i < lo || i > hi {
			errs = append(errs, fmt.Errorf("%s %q is not a whole number from %d to %d", name, v, lo, hi))
		}
		return i
	}
	d.Options = JobOptions{
		RolloutPerMinute: int32(num(EnvRollout, 1, 1000)), AbortPercent: float64(num(EnvAbortPercent, 1, 100)),
		AbortMinExecuted: int32(num(EnvAbortMin, 1, 1000000)), TimeoutMinutes: num(EnvTimeout, 1, 10080),
	}
	return d, errors.Join(errs...)
}
