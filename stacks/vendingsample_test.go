package stacks

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleEnvironments reads the environments block of the vending sample's cdk.json (testdata/vending/sample-cdk.json,
// the layout the sample ships), optionally changed by edit.
func sampleEnvironments(t *testing.T, edit func(dev map[string]interface{})) interface{} {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "vending", "sample-cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	envs := f.Context["environments"].(map[string]interface{})
	if edit != nil {
		edit(envs["dev"].(map[string]interface{}))
	}
	return envs
}

// captureWarnings collects what synth warns while f runs.
func captureWarnings(f func()) string {
	var buf bytes.Buffer
	old := warnings
	warnings = &buf
	defer func() { warnings = old }()
	f()
	return buf.String()
}

// The sample's environments block, as it ships, is accepted: ssm.string_value is the config, and the keys this app
// does not need are named in one warning line.
func TestVendingSampleLayout(t *testing.T) {
	var envs []vendingEnv
	var err error
	warned := captureWarnings(func() { envs, err = vendingEnvironments(sampleEnvironments(t, nil)) })
	if err != nil || len(envs) != 1 || envs[0].name != "dev" {
		t.Fatalf("vendingEnvironments(sample) = %+v, %v, want the dev environment", envs, err)
	}
	var conf map[string]interface{}
	if err := json.Unmarshal(envs[0].props.ConfigJSON, &conf); err != nil || conf["DEVICE_AUTHORIZER_TOKEN_IDENTIFIER"] != "DeviceToken" {
		t.Errorf("config from ssm.string_value = %s, %v, want the sample's appConfig", envs[0].props.ConfigJSON, err)
	}
	want := "warning: context environments.dev: ignoring the vending sample's iot_registry_cold_events_pipeline, lambda_layer, ssm.description, ssm.name, views: "
	if !strings.HasPrefix(warned, want) || strings.Count(warned, "\n") != 1 {
		t.Errorf("warnings = %q, want one line starting %q", warned, want)
	}
	// string_value may also be a string holding the JSON, as the parameter stores it.
	envs, err = vendingEnvironments(sampleEnvironments(t, func(dev map[string]interface{}) {
		ssm := dev["ssm"].(map[string]interface{})
		b, _ := json.Marshal(ssm["string_value"])
		ssm["string_value"] = string(b)
	}))
	if err != nil || len(envs) != 1 || len(envs[0].props.ConfigJSON) == 0 {
		t.Errorf("vendingEnvironments(string_value as a string) = %+v, %v, want the dev environment with its config", envs, err)
	}
}

func TestVendingSampleLayoutRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(dev map[string]interface{})
		want []string
	}{
		{"plaintext tokens in the sample's layout reach the plaintext-token message", func(dev map[string]interface{}) {
			dev["ssm"].(map[string]interface{})["string_value"].(map[string]interface{})["DEVICE_AUTHORIZER_VALID_TOKENS"] = []interface{}{"NjWO2tVh6fVAeNuLwRsPi-c6N7SP5-DT"}
		}, []string{"context environments.dev.config: ", "plaintext tokens are refused"}},
		{"every unknown key at once, in our words", func(dev map[string]interface{}) {
			dev["throttle"] = 1.0
			dev["cors"] = []interface{}{}
		}, []string{`context environments.dev: unknown setting "cors", "throttle"; the settings are `, "throttle_rate"}},
		{"config and ssm.string_value both", func(dev map[string]interface{}) { dev["config"] = map[string]interface{}{} },
			[]string{"give config or the sample's ssm.string_value, not both"}},
		{"a wrong type names the setting", func(dev map[string]interface{}) { dev["throttle_rate"] = "fast" },
			[]string{"context environments.dev.throttle_rate must be a number, got a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			captureWarnings(func() { _, err = vendingEnvironments(sampleEnvironments(t, tc.edit)) })
			if err == nil {
				t.Fatal("vendingEnvironments() = nil error, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("vendingEnvironments() = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "json: ") {
				t.Errorf("vendingEnvironments() = %q: Go's json prefix leaks", err)
			}
		})
	}
}
