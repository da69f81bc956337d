package devrot

import (
	"strings"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/devrot/wire"
)

func TestConfigFromEnv(t *testing.T) {
	good := map[string]string{
		EnvTable: "t", EnvTemplateARN: "arn:aws:iot:us-east-1:123456789012:jobtemplate/" + wire.TemplateID, "AWS_REGION": "eu-west-1",
	}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return good[k]
		}
	}
	c, ep, err := ConfigFromEnv(env(nil))
	if err != nil || ep != "https://data-ats.iot.eu-west-1.amazonaws.com" || c.Table != "t" {
		t.Fatalf("ConfigFromEnv(good) = %+v, %q, %v", c, ep, err)
	}
	c, _, err = ConfigFromEnv(env(map[string]string{EnvGrace: "3600", EnvConfirmTimeout: "600"}))
	if err != nil || c.Grace != time.Hour || c.ConfirmTimeout != 10*time.Minute {
		t.Fatalf("ConfigFromEnv(durations) = %+v, %v", c, err)
	}
	bad := []struct {
		over map[string]string
		want string
	}{
		{map[string]string{EnvTable: ""}, EnvTable},
		{map[string]string{EnvTemplateARN: "arn:aws:iot:us-east-1:123456789012:jobtemplate/other"}, EnvTemplateARN},
		{map[string]string{EnvCACertificateID: strings.Repeat("a", 64)}, EnvPCAARN},
		{map[string]string{EnvCACertificateID: "xyz", EnvPCAARN: "arn:aws:acm-pca:us-east-1:1:certificate-authority/x"}, EnvCACertificateID},
		{map[string]string{EnvSigningAlgorithm: "MD5"}, EnvSigningAlgorithm},
		{map[string]string{EnvConfirmTimeout: "5"}, EnvConfirmTimeout},
		{map[string]string{EnvDataEndpoint: "ftp://x"}, "endpoint"},
	}
	for _, b := range bad {
		if _, _, err := ConfigFromEnv(env(b.over)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ConfigFromEnv(%v) error = %v, want one naming %s", b.over, err, b.want)
		}
	}
}
