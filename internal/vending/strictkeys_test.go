package vending

import (
	"errors"
	"strings"
	"testing"
)

// A registration body is taken exactly as written: no second value for a key, no key in another case, and a thing
// name that is too long says so.
func TestParseRegisterBodyExactKeys(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"duplicate thingName", `{"thingName": "a", "version": "1", "thingName": "b"}`, `invalid JSON body: key "thingName" appears more than once`},
		{"duplicate version", `{"version": "1", "thingName": "a", "version": "2"}`, `invalid JSON body: key "version" appears more than once`},
		{"upper-case key", `{"THINGNAME": "a", "version": "1"}`, `invalid JSON body: unknown field "THINGNAME": keys are case-sensitive, write "thingName"`},
		{"case variant besides the key", `{"thingName": "a", "thingname": "b", "version": "1"}`, `unknown field "thingname": keys are case-sensitive, write "thingName"`},
		{"Csr", `{"thingName": "a", "version": "1", "Csr": "x"}`, `write "csr"`},
		{"129 characters", `{"thingName": "` + strings.Repeat("a", 129) + `", "version": "1"}`, "thingName is 129 characters long: AWS IoT allows at most 128"},
		{"unknown key still unknown", `{"thingName": "a", "version": "1", "extra": 1}`, `invalid JSON body: unknown field "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRegisterBody([]byte(tc.body))
			var be *BodyError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRegisterBody(%s) = %v, want a *BodyError containing %q", tc.body, err, tc.want)
			}
		})
	}
	if r, err := ParseRegisterBody([]byte(`{"thingName": "` + strings.Repeat("a", 128) + `", "version": "1", "csr": ""}`)); err != nil || len(r.ThingName) != 128 {
		t.Errorf("ParseRegisterBody(128-character name) = %v, %v, want it accepted", r, err)
	}
}
