package naming

import (
	"strings"
	"testing"
)

func TestThingName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"device1234", true},
		{"pool:controller_1-a", true},
		{"", false},
		{"has space", false},
		{"slash/name", false},
		{string(make([]byte, 129)), false},
		{"é", false},
	} {
		err := ThingName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ThingName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestStackName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"device1234", true},
		{"certificate-based-stack", true},
		{"1device", false},
		{"pool:controller", false},
		{"under_score", false},
	} {
		err := StackName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("StackName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestThingNameTooLongSaysSo(t *testing.T) {
	err := ThingName(strings.Repeat("a", 129))
	if err == nil || err.Error() != "thing name is 129 characters long: AWS IoT allows at most 128" {
		t.Errorf("ThingName(129 characters) = %v, want the length message", err)
	}
	if err := ThingName(strings.Repeat("a", 128)); err != nil {
		t.Errorf("ThingName(128 characters) = %v, want nil", err)
	}
}
