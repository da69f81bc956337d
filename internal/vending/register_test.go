package vending

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRegisterBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    RegisterRequest
		wantErr string
	}{
		{"seed body", `{"thingName": "device-1", "version": "1"}`, RegisterRequest{ThingName: "device-1", Version: "1"}, ""},
		{"with csr", `{"thingName":"a:b_c","version":"1.2.3-rc.1","csr":"-----BEGIN CERTIFICATE REQUEST-----"}`,
			RegisterRequest{ThingName: "a:b_c", Version: "1.2.3-rc.1", CSR: "-----BEGIN CERTIFICATE REQUEST-----"}, ""},
		{"missing thingName", `{"version":"1"}`, RegisterRequest{}, "thingName is required"},
		{"null thingName", `{"thingName":null,"version":"1"}`, RegisterRequest{}, "thingName is required"},
		{"missing version", `{"thingName":"d"}`, RegisterRequest{}, "version is required"},
		{"seed accountToken field", `{"thingName":"d","version":"1","accountToken":"x"}`, RegisterRequest{}, `unknown field "accountToken"`},
		{"bad thing name", `{"thingName":"a/b","version":"1"}`, RegisterRequest{}, "thingName must match"},
		{"long thing name", `{"thingName":"` + strings.Repeat("a", 129) + `","version":"1"}`, RegisterRequest{}, "thingName is 129 characters long: AWS IoT allows at most 128"},
		{"version with space", `{"thingName":"d","version":"1 2"}`, RegisterRequest{}, "version must be"},
		{"long version", `{"thingName":"d","version":"` + strings.Repeat("1", 65) + `"}`, RegisterRequest{}, "version must be"},
		{"numeric version", `{"thingName":"d","version":1}`, RegisterRequest{}, "version must be a string"},
		{"blank csr", `{"thingName":"d","version":"1","csr":"  "}`, RegisterRequest{}, "csr must be"},
		{"invalid json", `{"thingName":`, RegisterRequest{}, "invalid JSON body"},
		{"array", `[1]`, RegisterRequest{}, "body must be a JSON object"},
		{"trailing", `{"thingName":"d","version":"1"} {}`, RegisterRequest{}, "trailing data"},
		{"empty", ``, RegisterRequest{}, "invalid JSON body"},
		{"oversized", `{"thingName":"d","version":"1","csr":"` + strings.Repeat("A", MaxBodyBytes) + `"}`, RegisterRequest{}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRegisterBody([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseRegisterBody() error = %v, want nil", err)
				}
				if *got != tt.want {
					t.Errorf("ParseRegisterBody() = %+v, want %+v", *got, tt.want)
				}
				return
			}
			var be *BodyError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseRegisterBody() error = %v, want a *BodyError containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseRegisterBody(f *testing.F) {
	for _, s := range []string{
		`{"thingName": "device-1", "version": "1"}`,
		`{"thingName":"d","version":"1","csr":"x"}`,
		`{"thingName":"d"}`, `[]`, `null`, `{"a":1}`, `{"thingName":"\u0000","version":"1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRegisterBody(body)
		if err != nil {
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("ParseRegisterBody(%q) error %T, want *BodyError", body, err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("ParseRegisterBody(%q) error is %d bytes long", body, len(err.Error()))
			}
			return
		}
		if !ThingNameRe.MatchString(r.ThingName) || !versionRe.MatchString(r.Version) || len(body) > MaxBodyBytes {
			t.Fatalf("ParseRegisterBody(%q) = %+v, accepted an invalid request", body, r)
		}
	})
}
