package selection

import (
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/naming"
)

// FuzzSplitNames: fleet lists come from a file or the command line. Every accepted name is a valid thing name, and
// none is listed twice.
func FuzzSplitNames(f *testing.F) {
	f.Add("sensor-1,sensor-2")
	f.Add("# fleet\nsensor-1\r\n\nsensor-2")
	f.Add("a,a")
	f.Add(" , ")
	f.Fuzz(func(t *testing.T, s string) {
		names, err := SplitNames(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("SplitNames error spans lines: %q", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if err := naming.ThingName(n); err != nil {
				t.Fatalf("SplitNames accepted %q: %v", n, err)
			}
			if seen[n] {
				t.Fatalf("SplitNames returned %q twice", n)
			}
			seen[n] = true
		}
	})
}
