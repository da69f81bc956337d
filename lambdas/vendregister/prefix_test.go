package main

import (
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// An environment's thing-name prefix bounds every registration, whatever the token allows: the function's IAM grants
// on things name only that prefix, so a name outside it is refused before any AWS call.
func TestRegisterEnvironmentPrefix(t *testing.T) {
	env, h := setup(t)
	h.ThingNamePrefix = "sensor-"
	resp := call(t, h, request(t, registerBody("pump-1", "")))
	if want := `thingName must start with "sensor-" in this environment`; resp.StatusCode != 403 || !strings.Contains(errorOf(t, resp), want) {
		t.Errorf("Handle(pump-1) = %d %s, want 403 with %q", resp.StatusCode, resp.Body, want)
	}
	if n := env.Srv.Calls(awsfake.ServiceIoT, "DescribeThing"); n != 0 {
		t.Errorf("DescribeThing calls for a refused name = %d, want 0", n)
	}
	if item := env.Item(t, "pump-1"); item != nil {
		t.Errorf("guard item for a refused name = %v, want none", item)
	}
	if resp := call(t, h, request(t, registerBody("sensor-1", ""))); resp.StatusCode != 200 {
		t.Errorf("Handle(sensor-1) = %d %s, want 200", resp.StatusCode, resp.Body)
	}
}
