package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/replay/replaytest"
)

func TestHandlePublishesDrift(t *testing.T) {
	env := replaytest.New(t)
	p := replaytest.NewPrimary(t)
	replaytest.Scenario(t, p)
	var metrics bytes.Buffer
	h := &Handler{Primary: p.IoT, Replica: iot.NewFromConfig(env.Replica.Config(context.Background())), Applier: env.Applier,
		Namespace: "IotMultiRegion", Region: "us-east-1", Metrics: &metrics, Now: time.Now}
	rep, err := h.Handle(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Drift == 0 || rep.Created == 0 || rep.Failed != 0 {
		t.Errorf("backfill report = %+v, want everything created", rep)
	}
	var emf struct{ RegistryDrift int }
	if err := json.Unmarshal(bytes.TrimSpace(metrics.Bytes()), &emf); err != nil || emf.RegistryDrift != rep.Drift {
		t.Errorf("metric line %q (%v), want RegistryDrift %d", metrics.String(), err, rep.Drift)
	}
	if d := replaytest.Diff(p.Srv, env.Replica); len(d) != 0 {
		t.Errorf("after the backfill the replica differs:\n%s", strings.Join(d, "\n"))
	}
}

func TestNewHandlerRefusesBadEnvironment(t *testing.T) {
	for _, tc := range []struct{ primary, rate, want string }{
		{"", "", "PRIMARY_REGION"},
		{"us-west-2", "lots", "RATE_PER_SECOND"},
		{"us-west-2", "500", "RATE_PER_SECOND"},
		{"us-west-2", "5", "VERSIONS_TABLE"},
	} {
		t.Setenv("PRIMARY_REGION", tc.primary)
		t.Setenv("RATE_PER_SECOND", tc.rate)
		t.Setenv("VERSIONS_TABLE", "")
		if _, err := newHandler(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newHandler(PRIMARY_REGION=%q RATE_PER_SECOND=%q) = %v, want an error naming %s", tc.primary, tc.rate, err, tc.want)
		}
	}
}
