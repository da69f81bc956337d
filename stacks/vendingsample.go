package stacks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
)

// warnings receives the one-line warnings of synth (os.Stderr; tests replace it).
var warnings io.Writer = os.Stderr

// sampleOnlyKeys are the keys of an environment in the vending sample's cdk.json that this app does not need: it
// defines the API, the functions and the registry archive itself. They are ignored with one warning, so that the
// sample's environments block works as it ships.
var sampleOnlyKeys = map[string]bool{"views": true, "lambda_layer": true, "iot_registry_cold_events_pipeline": true}

// decodeVendingSettings reads one environment's settings. Besides this app's keys it accepts the sample's layout: its
// ssm.string_value (an object, or a string holding one) is the config, and its sample-only keys are ignored with one
// warning that lists them. Every unknown key is reported at once.
func decodeVendingSettings(env string, raw interface{}) (*vendingSettings, error) {
	where := ctxEnvironments + "." + env
	m, ok := raw.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("context %s must be an object of settings, got %v", where, raw)
	}
	known := map[string]bool{}
	t := reflect.TypeOf(vendingSettings{})
	for i := 0; i < t.NumField(); i++ {
		known[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	own := map[string]interface{}{}
	var ignored, unknown []string
	for k, v := range m {
		switch {
		case known[k]:
			own[k] = v
		case k == "ssm":
			config, rest, err := sampleConfig(where, v)
			if err != nil {
				return nil, err
			}
			if _, both := m["config"]; both && config != nil {
				return nil, fmt.Errorf("context %s: give config or the sample's ssm.string_value, not both", where)
			}
			if config != nil {
				own["config"] = config
			}
			ignored = append(ignored, rest...)
		case sampleOnlyKeys[k]:
			ignored = append(ignored, k)
		default:
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("context %s: unknown setting %s; the settings are %s (and the sample's ssm.string_value for config)",
			where, strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	if len(ignored) > 0 {
		sort.Strings(ignored)
		fmt.Fprintf(warnings, "warning: context %s: ignoring the vending sample's %s: this app defines the API, its functions and the registry archive itself\n",
			where, strings.Join(ignored, ", "))
	}
	b, _ := json.Marshal(own)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var vs vendingSettings
	if err := dec.Decode(&vs); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("context %s.%s must be %s, got a %s", where, te.Field, jsonKind(te.Type), te.Value)
		}
		return nil, fmt.Errorf("context %s: %v", where, strings.TrimPrefix(err.Error(), "json: "))
	}
	return &vs, nil
}

// sampleConfig reads the sample's "ssm" block: string_value is the config; name and description named the sample's
// parameter, which this app names itself (/<prefix>/<env>/config-parameters/appConfig), so they are ignored.
func sampleConfig(where string, v interface{}) (config interface{}, ignored []string, err error) {
	ssm, ok := v.(map[string]interface{})
	if !ok {
		return nil, nil, fmt.Errorf("context %s.ssm must be an object with string_value (the sample's layout), got %v", where, v)
	}
	for k, val := range ssm {
		switch k {
		case "string_value":
			if s, ok := val.(string); ok {
				if err := json.Unmarshal([]byte(s), &config); err != nil {
					return nil, nil, fmt.Errorf("context %s.ssm.string_value is a string but not JSON: %v", where, err)
				}
				continue
			}
			config = val
		default:
			ignored = append(ignored, "ssm."+k)
		}
	}
	return config, ignored, nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float64, reflect.Int:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool, reflect.Pointer:
		return "true or false"
	case reflect.Slice:
		return "a list"
	}
	return "an object"
}
