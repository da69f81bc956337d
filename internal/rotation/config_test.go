package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/iotcert/iotcert/internal/rotation"
)

// Env reads every setting the functions take from their environment, and reports every missing or malformed one at
// once, naming it.
func TestEnv(t *testing.T) {
	t.Setenv(rotation.EnvTable, "certificates")
	t.Setenv(rotation.EnvRenewShards, "32")
	t.Setenv(rotation.EnvMaxHosts, "0") // out of range
	t.Setenv(rotation.EnvRenewFraction, "0.5")
	t.Setenv(rotation.EnvRenewJitter, "x")
	t.Setenv(rotation.EnvKeyPath, "/opt/app/pki")
	t.Setenv(rotation.EnvCertPath, "/tmp;reboot")
	t.Setenv(rotation.EnvProfileARN, "not-an-arn")
	var env rotation.Env
	if got := env.Required(rotation.EnvTable); got != "certificates" {
		t.Errorf("Required(%s) = %q", rotation.EnvTable, got)
	}
	env.Required(rotation.EnvTopicARN) // unset
	if got := env.Optional(rotation.EnvTemplateARN, rotation.DefaultTemplateARN); got != rotation.DefaultTemplateARN {
		t.Errorf("Optional() = %q, want the default", got)
	}
	if got := env.Int(rotation.EnvRenewShards, 16, 1, 256); got != 32 {
		t.Errorf("Int(%s) = %d, want 32", rotation.EnvRenewShards, got)
	}
	if got := env.Int(rotation.EnvMaxHosts, 5000, 1, 1000000); got != 5000 {
		t.Errorf("Int(%s out of range) = %d, want the default", rotation.EnvMaxHosts, got)
	}
	if got := env.Int(rotation.EnvValidityDays, 7, 1, 3650); got != 7 {
		t.Errorf("Int(unset) = %d, want the default", got)
	}
	sched := env.Schedule()
	if sched.Fraction != 0.5 || sched.Jitter != rotation.DefaultSchedule.Jitter {
		t.Errorf("Schedule() = %+v", sched)
	}
	docs := env.Documents()
	if docs.KeyDir != "/opt/app/pki" || docs.CACertDir != rotation.DefaultDir {
		t.Errorf("Documents() = %+v", docs)
	}
	env.Match(rotation.EnvProfileARN, "not-an-arn", rotation.ProfileARNPattern)
	env.Match(rotation.EnvRoleARN, "", rotation.RoleARNPattern) // unset: checked by Required, not here
	env.Check(nil)
	err := env.Err()
	if err == nil {
		t.Fatal("Err() = nil")
	}
	for _, want := range []string{rotation.EnvTopicARN + " must be set", rotation.EnvMaxHosts + `="0"`, rotation.EnvRenewJitter + `="x" is not a number`,
		`"/tmp;reboot"`, rotation.EnvProfileARN + `="not-an-arn" does not match`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, want it to name %s", err, want)
		}
	}
	var clean rotation.Env
	if err := clean.Err(); err != nil {
		t.Errorf("Err() of nothing read = %v", err)
	}
}

func TestScheduleValidate(t *testing.T) {
	for _, tc := range []struct {
		s  rotation.Schedule
		ok bool
	}{
		{rotation.DefaultSchedule, true},
		{rotation.Schedule{Fraction: 1}, false},
		{rotation.Schedule{Fraction: 0.9, Jitter: 0.2}, false},
		{rotation.Schedule{Fraction: 0.5, Jitter: -0.1}, false},
	} {
		if err := tc.s.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tc.s, err, tc.ok)
		}
	}
	// A recorded renewAt can be recomputed: the jitter comes from the serial.
	nb := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, b := rotation.DefaultSchedule.RenewAt(nb, nb.Add(7*24*time.Hour), "AB"), rotation.DefaultSchedule.RenewAt(nb, nb.Add(7*24*time.Hour), "AB")
	if !a.Equal(b) {
		t.Errorf("RenewAt() = %v then %v for the same serial", a, b)
	}
}

// A step's error reaches Step Functions with its name as errorType; any other error is left to the runtime.
func TestLambdaError(t *testing.T) {
	err := rotation.LambdaError(&rotation.Error{Name: rotation.ErrHostBusy, Message: "host i-1 is being rotated by another run"})
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != rotation.ErrHostBusy || !strings.Contains(ie.Message, "another run") {
		t.Errorf("LambdaError(step error) = %#v", err)
	}
	plain := errors.New("boom")
	if got := rotation.LambdaError(plain); got != plain {
		t.Errorf("LambdaError(plain) = %v, want it unchanged", got)
	}
	if rotation.LambdaError(nil) != nil {
		t.Error("LambdaError(nil) != nil")
	}
}
