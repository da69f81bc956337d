package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/metrics/metricstest"
	"github.com/iotcert/iotcert/internal/rotation"
)

func TestPublish(t *testing.T) {
	rejected := &rotation.Error{Name: rotation.ErrCSRRejected, Message: "host i-1: wrong CN"}
	pending := &rotation.Error{Name: rotation.ErrCertificateInProgress, Message: "not yet"}
	for _, c := range []struct {
		step string
		err  error
		want string
	}{
		{StepGetCertificate, nil, "CertificatesIssued E"},
		{StepGetCertificate, pending, ""},
		{StepRecord, nil, "RotationSucceeded E"},
		{StepNotifyFailure, nil, "RotationFailed E"},
		{StepCheckCSR, rejected, "Refused E InvalidCSR"},
		{StepCheckCSR, nil, ""},
		{StepSendCSR, errors.New("ssm down"), ""},
	} {
		rec := metricstest.Capture(t)
		publish(c.step, c.err)
		if got := strings.Join(rec.Names(t), ","); got != c.want {
			t.Errorf("publish(%s, %v) = %q, want %q", c.step, c.err, got, c.want)
		}
	}
}
