// Package testsvc starts real servers for tests that need them: DynamoDB Local (shared by the whole test binary) and
// mosquitto (one broker per call, with an mTLS listener).
//
// A package whose tests use DynamoDB must stop the shared server when its tests are done:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testsvc.StopAll()
//		os.Exit(code)
//	}
//
// Forgetting StopAll does not leak a server: on Linux every server is started with a parent-death signal, so it is
// killed when the test process exits. Elsewhere a stray server lives until it is killed by hand.
//
// When a server is not installed the test is skipped with a message naming what to install, except when the
// environment variable CI is "true", where it fails instead (see Require).
package testsvc
