package main

import (
	"testing"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// TestRollbackWaitsForDetach: AWS IoT applies DetachThingPrincipal asynchronously, so the rollback's DeleteThing
// and DeleteCertificate fail for a while; the rollback waits with bounded back-off and the name stays usable.
func TestRollbackWaitsForDetach(t *testing.T) {
	env, h := setup(t)
	env.Srv.IoT.SetDetachDelay(3)
	env.Srv.Inject(awsfake.ServiceIoT, "UpdateCertificate", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	if resp := call(t, h, request(t, registerBody("slow-detach", ""))); resp.StatusCode != 500 {
		t.Fatalf("Handle(fault in UpdateCertificate) = %d %s, want 500", resp.StatusCode, resp.Body)
	}
	if _, ok := env.Srv.IoT.Thing("slow-detach"); ok {
		t.Error("thing left after the rollback")
	}
	if n := len(env.Srv.IoT.Certificates()); n != 0 {
		t.Errorf("certificates after the rollback = %d, want 0", n)
	}
	if got := env.Srv.Calls(awsfake.ServiceIoT, "DeleteThing"); got != 4 {
		t.Errorf("DeleteThing calls = %d, want 4 (3 while the detach propagates, then success)", got)
	}
	if resp := call(t, h, request(t, registerBody("slow-detach", ""))); resp.StatusCode != 200 {
		t.Errorf("retry = %d %s, want 200", resp.StatusCode, resp.Body)
	}
}
