package vending

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vending", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseConfigSeed(t *testing.T) {
	c, err := ParseConfig(readTestdata(t, "appconfig-seed.json"))
	if err != nil {
		t.Fatalf("ParseConfig(seed) error = %v, want nil", err)
	}
	if got, want := c.Policies["CvmGenericType"], "multa_backend_policy_dev"; got != want {
		t.Errorf("Policies[CvmGenericType] = %q, want %q", got, want)
	}
	if got, want := strings.Join(c.Attributes["CvmGenericType"], ","), "creationDate,version"; got != want {
		t.Errorf("Attributes[CvmGenericType] = %q, want %q", got, want)
	}
	if c.TokenPayloadLength != 2 || c.TokenIdentifier != "DeviceToken" {
		t.Errorf("token shape = %d %q, want 2 DeviceToken", c.TokenPayloadLength, c.TokenIdentifier)
	}
	for name, v := range map[string]string{"Preferred": c.RootCA.Preferred, "Backup": c.RootCA.Backup} {
		b, _ := pem.Decode([]byte(v))
		if b == nil || b.Type != "CERTIFICATE" {
			t.Errorf("RootCA.%s is not a PEM certificate: %.40q", name, v)
		}
	}
	ca1, _ := AmazonRootCA(1)
	if c.RootCA.Preferred != ca1 {
		t.Errorf("RootCA.Preferred is not the bundled Amazon Root CA 1")
	}
}

func TestParseConfigErrors(t *testing.T) {
	seed := string(readTestdata(t, "appconfig-seed.json"))
	ca3, _ := AmazonRootCA(3)
	replace := func(old, new string) string {
		if !strings.Contains(seed, old) {
			t.Fatalf("seed config has no %q", old)
		}
		return strings.Replace(seed, old, new, 1)
	}
	tests := []struct {
		name    string
		in      string
		wantErr string // "" means valid
	}{
		{"seed", seed, ""},
		{"pem root ca", replace(`"https://www.amazontrust.com/repository/AmazonRootCA3.pem"`, jsonString(ca3)), ""},
		{"numeric payload length", replace(`"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "2"`, `"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": 3`), ""},
		{"null tokens", replace(`"DEVICE_AUTHORIZER_VALID_TOKENS": []`, `"DEVICE_AUTHORIZER_VALID_TOKENS": null`), ""},
		{"no backup", replace(`,
    "BACKUP": "https://www.amazontrust.com/repository/AmazonRootCA3.pem"`, ``), ""},
		{"plaintext tokens", string(readTestdata(t, "appconfig-plaintext-tokens.json")), "vend-token add"},
		{"tokens as string", replace(`"DEVICE_AUTHORIZER_VALID_TOKENS": []`, `"DEVICE_AUTHORIZER_VALID_TOKENS": "abc"`), "DEVICE_AUTHORIZER_VALID_TOKENS must be empty"},
		{"other url", replace(`https://www.amazontrust.com/repository/AmazonRootCA1.pem`, `https://example.com/ca.pem`), `AWS_ROOT_CA.PREFERRED must be one of`},
		{"bad pem", replace(`"https://www.amazontrust.com/repository/AmazonRootCA1.pem"`, `"-----BEGIN CERTIFICATE-----\nzz\n-----END CERTIFICATE-----\n"`), "AWS_ROOT_CA.PREFERRED"},
		{"no root ca", `{"POLICIES": {"CvmA": {"name": "p"}}}`, "AWS_ROOT_CA is required"},
		{"no preferred", replace(`"PREFERRED"`, `"OTHER"`), "unknown field"},
		{"unknown key", replace(`"POLICIES"`, `"EXTRA": 1, "POLICIES"`), `unknown field "EXTRA"`},
		{"no policies", replace(`"POLICIES": {"CvmGenericType": {"name": "multa_backend_policy_dev"}},`, `"POLICIES": {},`), "POLICIES must name"},
		{"policy without name", replace(`{"name": "multa_backend_policy_dev"}`, `{}`), "POLICIES.CvmGenericType.name is required"},
		{"bad policy name", replace(`multa_backend_policy_dev`, `bad policy`), `POLICIES.CvmGenericType.name must match`},
		{"bad type name", replace(`"POLICIES": {"CvmGenericType"`, `"POLICIES": {"Cvm Type"`), `thing type name must match`},
		{"attributes type without policy", replace(`"ATTRIBUTES": {"CvmGenericType"`, `"ATTRIBUTES": {"CvmOther"`), `thing type "CvmOther" has no POLICIES entry`},
		{"unknown attribute", replace(`{"name": "version"}`, `{"name": "colour"}`), `ATTRIBUTES.CvmGenericType[1].name must be "creationDate" or "version", got "colour"`},
		{"duplicate attribute", replace(`{"name": "version"}`, `{"name": "creationDate"}`), "duplicate"},
		{"payload length 1", replace(`"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "2"`, `"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "1"`), `DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH must be an integer from 2 to 16, got "1"`},
		{"payload length word", replace(`"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "2"`, `"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH": "two"`), `got "two"`},
		{"identifier with space", replace(`"DeviceToken"`, `"Device Token"`), `DEVICE_AUTHORIZER_TOKEN_IDENTIFIER must be a non-empty word without spaces, got "Device Token"`},
		{"not json", `{`, "vending config:"},
		{"empty", ``, "empty JSON document"},
		{"trailing", seed + `{}`, "trailing data"},
		{"array", `[]`, "vending config:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParseConfig() error = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ParseConfig() error = nil, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("ParseConfig() error = %q, want one containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseConfig() error = %q, want one line", err)
			}
			if err != nil && strings.Contains(err.Error(), "NjWO2tVh6fVAeNuLwRsPi") {
				t.Errorf("ParseConfig() error = %q, leaks a plaintext token", err)
			}
		})
	}
}

func jsonString(s string) string {
	r := strings.NewReplacer("\n", `\n`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func TestThingType(t *testing.T) {
	c := &Config{Policies: map[string]string{"CvmGenericType": "p", "CvmOther": "q", "Plain": "r"}}
	tests := []struct {
		name   string
		types  []string
		want   string
		wantOK bool
	}{
		{"first cvm with policy", []string{"Other", "cvmUnconfigured", "CvmOther", "CvmGenericType"}, "CvmOther", true},
		{"case-insensitive match", []string{"CvmGenericType"}, "CvmGenericType", true},
		{"configured but no cvm", []string{"Plain"}, "", false},
		{"none", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.ThingType(tt.types)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ThingType(%q) = %q, %v, want %q, %v", tt.types, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestThingAttributes(t *testing.T) {
	c := &Config{Attributes: map[string][]string{"A": {"version"}, "B": {"creationDate", "version"}}}
	if got := c.ThingAttributes("A", "100", "1.2"); len(got) != 1 || got["version"] != "1.2" {
		t.Errorf("ThingAttributes(A) = %v, want map[version:1.2]", got)
	}
	if got := c.ThingAttributes("B", "100", "1.2"); len(got) != 2 || got["creationDate"] != "100" {
		t.Errorf("ThingAttributes(B) = %v, want creationDate and version", got)
	}
	if got := c.ThingAttributes("C", "100", "1.2"); len(got) != 0 {
		t.Errorf("ThingAttributes(C) = %v, want empty", got)
	}
}

func TestConfigPath(t *testing.T) {
	if got, want := ConfigParameter("", "dev"), "/multa-cvm/dev/config-parameters/appConfig"; got != want {
		t.Errorf("ConfigParameter(\"\", dev) = %q, want %q", got, want)
	}
	if got, want := ConfigPath("p", "prod"), "/p/prod/config-parameters"; got != want {
		t.Errorf("ConfigPath(p, prod) = %q, want %q", got, want)
	}
}
