package naming

import "testing"

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
