package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/vending"
)

func attr(item map[string]ddbtypes.AttributeValue, k string) string {
	switch v := item[k].(type) {
	case *ddbtypes.AttributeValueMemberS:
		return v.Value
	case *ddbtypes.AttributeValueMemberN:
		return v.Value
	case *ddbtypes.AttributeValueMemberBOOL:
		return strconv.FormatBool(v.Value)
	}
	return ""
}

func certificateIDOf(t testing.TB, resp events.APIGatewayProxyResponse) string {
	t.Helper()
	var r vending.RegisterResponse
	if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
		t.Fatal(err)
	}
	return r.CertificateData.CertificateID
}

func fastCleanup(t *testing.T) {
	old := cleanupBackoff
	cleanupBackoff = time.Millisecond
	t.Cleanup(func() { cleanupBackoff = old })
}

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
	if item := env.Item(t, "slow-detach"); item != nil {
		t.Errorf("guard after a complete rollback = %v, want released", item)
	}
	if resp := call(t, h, request(t, registerBody("slow-detach", ""))); resp.StatusCode != 200 {
		t.Errorf("retry = %d %s, want 200", resp.StatusCode, resp.Body)
	}
}

// TestRollbackPendingFinishedByNextRequest: when the detach takes longer than the rollback may wait, the guard
// stays ROLLBACK with the leftovers recorded, and the next request for the name removes them, then registers.
func TestRollbackPendingFinishedByNextRequest(t *testing.T) {
	fastCleanup(t)
	env, h := setup(t)
	// DeleteThing and DeleteCertificate each give up after cleanupAttempts; the detach settles 2 calls later.
	env.Srv.IoT.SetDetachDelay(2*cleanupAttempts + 2)
	env.Srv.Inject(awsfake.ServiceIoT, "UpdateCertificate", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	if resp := call(t, h, request(t, registerBody("stuck", ""))); resp.StatusCode != 500 {
		t.Fatalf("Handle(fault in UpdateCertificate) = %d %s, want 500", resp.StatusCode, resp.Body)
	}
	certs := env.Srv.IoT.Certificates()
	if len(certs) != 1 {
		t.Fatalf("certificates after an unfinished rollback = %d, want the 1 AWS IoT would not let go", len(certs))
	}
	item := env.Item(t, "stuck")
	if attr(item, "status") != vending.StatusRollback || attr(item, "certificateId") != certs[0].ID || attr(item, "thingPlanned") != "true" {
		t.Errorf("guard after an unfinished rollback = %v, want ROLLBACK recording certificate %s and the thing", item, certs[0].ID)
	}
	if attr(item, vending.TTLAttribute) != "" {
		t.Errorf("ROLLBACK guard has a TTL (%s): it must stay until its leftovers are removed", attr(item, vending.TTLAttribute))
	}

	resp := call(t, h, request(t, registerBody("stuck", "")))
	if resp.StatusCode != 200 {
		t.Fatalf("next request = %d %s, want 200 after finishing the cleanup", resp.StatusCode, resp.Body)
	}
	checkIssued(t, env, resp, "stuck", nil)
	if _, ok := env.Srv.IoT.Certificate(certs[0].ID); ok {
		t.Errorf("certificate %s of the failed registration still exists", certs[0].ID)
	}
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
}

// crashingIoT ends the calling goroutine, as a crash or a Lambda timeout would, when op is called: nothing after it
// runs, not even the rollback.
type crashingIoT struct {
	IoTAPI
	mu sync.Mutex
	op string
}

func (c *crashingIoT) crash(op string) {
	c.mu.Lock()
	hit := c.op == op
	if hit {
		c.op = ""
	}
	c.mu.Unlock()
	if hit {
		runtime.Goexit()
	}
}

func (c *crashingIoT) GetPolicy(ctx context.Context, in *iot.GetPolicyInput, o ...func(*iot.Options)) (*iot.GetPolicyOutput, error) {
	c.crash("GetPolicy")
	return c.IoTAPI.GetPolicy(ctx, in, o...)
}

func (c *crashingIoT) AttachPolicy(ctx context.Context, in *iot.AttachPolicyInput, o ...func(*iot.Options)) (*iot.AttachPolicyOutput, error) {
	c.crash("AttachPolicy")
	return c.IoTAPI.AttachPolicy(ctx, in, o...)
}

func (c *crashingIoT) AttachThingPrincipal(ctx context.Context, in *iot.AttachThingPrincipalInput, o ...func(*iot.Options)) (*iot.AttachThingPrincipalOutput, error) {
	c.crash("AttachThingPrincipal")
	return c.IoTAPI.AttachThingPrincipal(ctx, in, o...)
}

func (c *crashingIoT) UpdateCertificate(ctx context.Context, in *iot.UpdateCertificateInput, o ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error) {
	c.crash("UpdateCertificate")
	return c.IoTAPI.UpdateCertificate(ctx, in, o...)
}

// crashOnce runs one registration that dies when it calls op.
func crashOnce(t *testing.T, h *Handler, req events.APIGatewayProxyRequest, op string) {
	t.Helper()
	orig := h.IoT
	h.IoT = &crashingIoT{IoTAPI: orig, op: op}
	defer func() { h.IoT = orig }()
	done := make(chan bool)
	go func() {
		defer close(done)
		_, _ = h.Handle(context.Background(), req)
		done <- true
	}()
	if <-done {
		t.Fatalf("registration did not reach %s", op)
	}
}

// TestTakeoverCleansCrashedRequest: a request that dies mid-registration has recorded each artefact in its guard;
// after the lease, the next request removes them, gives the single-use token back and registers.
func TestTakeoverCleansCrashedRequest(t *testing.T) {
	tests := []struct {
		crashAt   string
		wantCert  bool // the crashed request had made a certificate
		wantThing bool // ... and the thing
	}{
		{"GetPolicy", false, false},
		{"AttachPolicy", true, false},
		{"AttachThingPrincipal", true, true},
		{"UpdateCertificate", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.crashAt, func(t *testing.T) {
			env, h := setup(t)
			clock := time.Now()
			h.Now = func() time.Time { return clock }
			auth := map[string]any{"tokenId": "device-7", "thingPrefix": "", "singleUse": "true"}
			req := request(t, registerBody("crashy", ""))
			req.RequestContext.Authorizer = auth
			crashOnce(t, h, req, tt.crashAt)

			item := env.Item(t, "crashy")
			if attr(item, "status") != vending.StatusPending {
				t.Fatalf("guard after the crash = %v, want PENDING", item)
			}
			certs := env.Srv.IoT.Certificates()
			if got := len(certs) == 1 && attr(item, "certificateId") == certs[0].ID; got != tt.wantCert {
				t.Errorf("certificate recorded in the guard = %v (guard %v, certificates %d), want %v", got, item, len(certs), tt.wantCert)
			}
			if _, ok := env.Srv.IoT.Thing("crashy"); ok != tt.wantThing {
				t.Errorf("thing exists after the crash = %v, want %v", ok, tt.wantThing)
			}
			if attr(env.Item(t, vending.TokenItemKey("device-7")), "status") != vending.StatusUsed {
				t.Fatalf("single-use token not spent by the crashed request")
			}
			// TTL only while the guard records nothing to clean up.
			if got := attr(item, vending.TTLAttribute) != ""; got == tt.wantCert {
				t.Errorf("guard TTL set = %v with certificate recorded = %v, want a TTL only without", got, tt.wantCert)
			}

			if resp := call(t, h, req); resp.StatusCode != 409 {
				t.Errorf("retry within the lease = %d %s, want 409", resp.StatusCode, resp.Body)
			}
			clock = clock.Add(DefaultLease + time.Second)
			resp := call(t, h, req)
			if resp.StatusCode != 200 {
				t.Fatalf("retry after the lease = %d %s, want 200", resp.StatusCode, resp.Body)
			}
			checkIssued(t, env, resp, "crashy", nil)
			newID := certificateIDOf(t, resp)
			for _, c := range env.Srv.IoT.Certificates() {
				if c.ID != newID {
					t.Errorf("certificate %s of the crashed request left behind", c.ID)
				}
			}
			tok := env.Item(t, vending.TokenItemKey("device-7"))
			if attr(tok, "status") != vending.StatusUsed || attr(tok, "requestId") != attr(env.Item(t, "crashy"), "requestId") {
				t.Errorf("token item = %v, want USED by the request that registered", tok)
			}
		})
	}
}

// TestGuardTTL: a guard records the table's TTL attribute while it holds nothing to clean up, and loses it once
// complete.
func TestGuardTTL(t *testing.T) {
	env, h := setup(t)
	clock := time.Now()
	h.Now = func() time.Time { return clock }
	crashOnce(t, h, request(t, registerBody("ttl-1", "")), "GetPolicy")
	got := attr(env.Item(t, "ttl-1"), vending.TTLAttribute)
	if want := strconv.FormatInt(clock.Add(DefaultGuardTTL).Unix(), 10); got != want {
		t.Errorf("guard %s = %q, want %s", vending.TTLAttribute, got, want)
	}
	if resp := call(t, h, request(t, registerBody("ttl-2", ""))); resp.StatusCode != 200 {
		t.Fatalf("Handle() = %d %s", resp.StatusCode, resp.Body)
	}
	if got := attr(env.Item(t, "ttl-2"), vending.TTLAttribute); got != "" {
		t.Errorf("COMPLETE guard %s = %q, want none", vending.TTLAttribute, got)
	}
}

// TestLostSuccessRetry documents what a device gets when it retries after a registration whose answer it never
// received. CSR mode: the same token and the same key get the same certificate (it is public; the key never left
// the device). Key mode: the private key was never stored, so the retry is refused as before; devices that need
// safe retries use CSR mode.
func TestLostSuccessRetry(t *testing.T) {
	env, h := setup(t)
	csrs := map[string]string{}
	for _, singleUse := range []string{"false", "true"} {
		t.Run("singleUse="+singleUse, func(t *testing.T) {
			thing := "lost-" + singleUse
			key, csr := newCSR(t, thing)
			csrs[thing] = csr
			req := request(t, registerBody(thing, csr))
			req.RequestContext.Authorizer = map[string]any{"tokenId": "tok-" + singleUse, "thingPrefix": "", "singleUse": singleUse}
			first := call(t, h, req)
			checkIssued(t, env, first, thing, key)
			again := call(t, h, req)
			checkIssued(t, env, again, thing, key)
			if a, b := certificateIDOf(t, first), certificateIDOf(t, again); a != b {
				t.Errorf("retry got certificate %s, want the one issued, %s", b, a)
			}
			if n := len(env.Srv.IoT.Certificates()); n != map[string]int{"false": 1, "true": 2}[singleUse] {
				t.Errorf("certificates = %d: the retry issued another", n)
			}
		})
	}
	t.Run("other key", func(t *testing.T) {
		_, other := newCSR(t, "lost-false")
		req := request(t, registerBody("lost-false", other))
		req.RequestContext.Authorizer = map[string]any{"tokenId": "tok-false", "thingPrefix": "", "singleUse": "false"}
		if resp := call(t, h, req); resp.StatusCode != 400 || errorOf(t, resp) != vending.MsgThingExists {
			t.Errorf("retry with another key = %d %s, want 400 %q", resp.StatusCode, resp.Body, vending.MsgThingExists)
		}
	})
	t.Run("other token", func(t *testing.T) {
		req := request(t, registerBody("lost-false", csrs["lost-false"]))
		req.RequestContext.Authorizer = map[string]any{"tokenId": "someone-else", "thingPrefix": "", "singleUse": "false"}
		if resp := call(t, h, req); resp.StatusCode != 400 || errorOf(t, resp) != vending.MsgThingExists {
			t.Errorf("retry with another token = %d %s, want 400 %q", resp.StatusCode, resp.Body, vending.MsgThingExists)
		}
	})
	t.Run("key mode", func(t *testing.T) {
		req := request(t, registerBody("lost-keys", ""))
		if resp := call(t, h, req); resp.StatusCode != 200 {
			t.Fatalf("Handle() = %d %s", resp.StatusCode, resp.Body)
		}
		if resp := call(t, h, req); resp.StatusCode != 400 || errorOf(t, resp) != vending.MsgThingExists {
			t.Errorf("key-mode retry = %d %s, want 400 %q", resp.StatusCode, resp.Body, vending.MsgThingExists)
		}
	})
}

// TestLostSuccessKeyMode: in key mode the private key of the lost answer was never stored. The same single-use
// token, within the replay window, gets a new key and certificate for its thing, and the lost certificate is
// retired; after the window, or with a multi-use token, the retry is refused.
func TestLostSuccessKeyMode(t *testing.T) {
	env, h := setup(t)
	clock := time.Now()
	h.Now = func() time.Time { return clock }
	req := request(t, registerBody("lost-key", ""))
	req.RequestContext.Authorizer = map[string]any{"tokenId": "one-device", "thingPrefix": "", "singleUse": "true"}
	first := call(t, h, req)
	checkIssued(t, env, first, "lost-key", nil)
	lost := certificateIDOf(t, first)

	clock = clock.Add(DefaultReplayWindow - time.Second)
	again := call(t, h, req)
	checkIssued(t, env, again, "lost-key", nil)
	if id := certificateIDOf(t, again); id == lost {
		t.Fatalf("retry got the lost certificate %s, whose key the device never had", id)
	}
	if _, ok := env.Srv.IoT.Certificate(lost); ok {
		t.Errorf("certificate %s of the lost answer still exists", lost)
	}
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
	if got := attr(env.Item(t, "lost-key"), "certificateId"); got != certificateIDOf(t, again) {
		t.Errorf("guard certificateId = %s, want the new certificate", got)
	}

	clock = clock.Add(DefaultReplayWindow + time.Second)
	if resp := call(t, h, req); resp.StatusCode != 400 || errorOf(t, resp) != vending.MsgThingExists {
		t.Errorf("retry after the replay window = %d %s, want 400 %q", resp.StatusCode, resp.Body, vending.MsgThingExists)
	}
}

// TestReissueCrash: a reissue that dies leaves its new certificate recorded; the next request removes it, puts the
// registration back as it was, then reissues.
func TestReissueCrash(t *testing.T) {
	env, h := setup(t)
	clock := time.Now()
	h.Now = func() time.Time { return clock }
	req := request(t, registerBody("reissue-crash", ""))
	req.RequestContext.Authorizer = map[string]any{"tokenId": "dev-9", "thingPrefix": "", "singleUse": "true"}
	first := call(t, h, req)
	checkIssued(t, env, first, "reissue-crash", nil)
	crashOnce(t, h, req, "AttachThingPrincipal")
	item := env.Item(t, "reissue-crash")
	if attr(item, "status") != vending.StatusReissue || attr(item, "newCertificateId") == "" {
		t.Fatalf("guard after a crashed reissue = %v, want REISSUE recording the new certificate", item)
	}
	if resp := call(t, h, req); resp.StatusCode != 409 {
		t.Errorf("retry within the lease = %d %s, want 409", resp.StatusCode, resp.Body)
	}
	clock = clock.Add(DefaultLease + time.Second)
	resp := call(t, h, req)
	checkIssued(t, env, resp, "reissue-crash", nil)
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1 (the lost one and the crashed reissue's removed)", n)
	}
}

// TestTakeoverCleanupIncomplete: when the next request cannot finish the cleanup either, it answers 500 and leaves
// the guard ROLLBACK, free at once for the request after it, which finishes.
func TestTakeoverCleanupIncomplete(t *testing.T) {
	fastCleanup(t)
	env, h := setup(t)
	// Two rounds of cleanup (the failed request's, then the first takeover's) each give up after
	// 2*cleanupAttempts observations; the detach settles 2 calls into the third round.
	env.Srv.IoT.SetDetachDelay(4*cleanupAttempts + 2)
	env.Srv.Inject(awsfake.ServiceIoT, "UpdateCertificate", awsfake.Fault{Status: 400, Code: "InvalidRequestException", Times: 1})
	for i, want := range []int{500, 500, 200} {
		resp := call(t, h, request(t, registerBody("very-stuck", "")))
		if resp.StatusCode != want {
			t.Fatalf("request %d = %d %s, want %d", i+1, resp.StatusCode, resp.Body, want)
		}
		if want == 500 {
			if got := attr(env.Item(t, "very-stuck"), "status"); got != vending.StatusRollback {
				t.Errorf("guard after request %d = %q, want ROLLBACK", i+1, got)
			}
		}
	}
	if n := len(env.Srv.IoT.Certificates()); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
}
