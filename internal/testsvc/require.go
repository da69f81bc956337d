package testsvc

import (
	"os"
	"testing"
)

// Require reports that the test cannot run because what (a program or file) is missing; hint says how to install it.
// It skips the test, except when the environment variable CI is "true": there nothing may skip, so the test fails.
func Require(t testing.TB, what, hint string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("testsvc: %s is required (CI=true, not skipping): %s", what, hint)
		return
	}
	t.Skipf("testsvc: %s not available, skipping: %s", what, hint)
}
