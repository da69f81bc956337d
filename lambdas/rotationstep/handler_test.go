package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/rotation"
)

func TestNewHandlerEnvironment(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	anchor := "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/11111111-2222-3333-4444-555555555555"
	profile := "arn:aws:rolesanywhere:us-east-1:123456789012:profile/11111111-2222-3333-4444-555555555555"
	cases := []struct {
		name string
		env  map[string]string
		want string // "" = builds
	}{
		{"no step", map[string]string{}, `STEP="" is not one of`},
		{"unknown step", map[string]string{"STEP": "Reboot"}, `STEP="Reboot"`},
		{"SendCSR without table", map[string]string{"STEP": StepSendCSR, "CSR_DOCUMENT": "d"}, "TABLE_NAME"},
		{"SendCSR with a bad default path", map[string]string{"STEP": StepSendCSR, "CSR_DOCUMENT": "d", "TABLE_NAME": "t", "DEFAULT_KEY_PATH": "/tmp;reboot"}, "/tmp;reboot"},
		{"SendCSR", map[string]string{"STEP": StepSendCSR, "CSR_DOCUMENT": "d", "TABLE_NAME": "t"}, ""},
		{"SendInstall without ARNs", map[string]string{"STEP": StepSendInstall, "INSTALL_DOCUMENT": "d", "TABLE_NAME": "t"}, "IAMRAProfileARN, IAMRARoleARN, IAMRATrustAnchorARN"},
		{"SendInstall with a bad role", map[string]string{"STEP": StepSendInstall, "INSTALL_DOCUMENT": "d", "TABLE_NAME": "t",
			"IAMRAProfileARN": profile, "IAMRATrustAnchorARN": anchor, "IAMRARoleARN": "arn:aws:iam::123:role/x y"}, "IAMRARoleARN"},
		{"SendInstall", map[string]string{"STEP": StepSendInstall, "INSTALL_DOCUMENT": "d", "TABLE_NAME": "t",
			"IAMRAProfileARN": profile, "IAMRATrustAnchorARN": anchor, "IAMRARoleARN": "arn:aws:iam::123456789012:role/IAMRA-Role"}, ""},
		{"Issue without CA", map[string]string{"STEP": StepIssue, "TABLE_NAME": "t"}, "PCAarn"},
		{"Issue with a bad validity", map[string]string{"STEP": StepIssue, "TABLE_NAME": "t", "PCAarn": "a", "VALIDITY_DAYS": "x"}, "VALIDITY_DAYS"},
		{"GetCertificate", map[string]string{"STEP": StepGetCertificate, "PCAarn": "a"}, ""},
		{"Record with a bad schedule", map[string]string{"STEP": StepRecord, "TABLE_NAME": "t", "RENEW_FRACTION": "1.5"}, "renewal fraction"},
		{"Record with too many shards", map[string]string{"STEP": StepRecord, "TABLE_NAME": "t", "RENEW_SHARDS": "1000"}, "RENEW_SHARDS"},
		{"NotifyFailure without topic", map[string]string{"STEP": StepNotifyFailure, "TABLE_NAME": "t"}, "SNS_TOPIC_ARN"},
		{"CommandResult", map[string]string{"STEP": StepCommandResult}, ""},
		{"CheckCSR", map[string]string{"STEP": StepCheckCSR}, ""},
	}
	all := []string{"STEP", "TABLE_NAME", "CSR_DOCUMENT", "INSTALL_DOCUMENT", "DEFAULT_KEY_PATH", "IAMRAProfileARN",
		"IAMRARoleARN", "IAMRATrustAnchorARN", "PCAarn", "VALIDITY_DAYS", "RENEW_FRACTION", "RENEW_SHARDS", "SNS_TOPIC_ARN"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range all {
				t.Setenv(k, tc.env[k])
			}
			h, err := newHandler(context.Background())
			if tc.want == "" {
				if err != nil || h == nil {
					t.Fatalf("newHandler() = %v, want a handler", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newHandler() error = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

func TestHandleReportsErrorNames(t *testing.T) {
	h := &Handler{Step: StepCheckCSR, Steps: &rotation.Steps{}}
	_, err := h.Handle(context.Background(), json.RawMessage(`{"hostID":"i-01234567","output":"no csr here"}`))
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != rotation.ErrCSRRejected {
		t.Fatalf("Handle() error = %#v, want errorType %s", err, rotation.ErrCSRRejected)
	}
	_, err = h.Handle(context.Background(), json.RawMessage(`[1,2]`))
	if !errors.As(err, &ie) || ie.Type != rotation.ErrHostInvalid {
		t.Fatalf("Handle(malformed) error = %#v, want errorType %s", err, rotation.ErrHostInvalid)
	}
}

func TestHandleNotifyFailure(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	for k, v := range map[string]string{"STEP": StepNotifyFailure, "TABLE_NAME": "certificates", "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:FailedCertRotationTopic"} {
		t.Setenv(k, v)
	}
	h, err := newHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A host id that is not valid is reported without touching the table.
	out, err := h.Handle(context.Background(), json.RawMessage(`{"hostID":"$(reboot)","error":{"Error":"HostInvalid","Cause":"{\"errorMessage\":\"host id refused\"}"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := out.(rotation.FailureOutput)
	if !strings.HasPrefix(got.Message, `Certificate rotation failed for "$(reboot)": HostInvalid: host id refused`) {
		t.Errorf("message = %q", got.Message)
	}
	if n := len(srv.SNS.Messages()); n != 1 {
		t.Errorf("SNS messages = %d, want 1", n)
	}
}
