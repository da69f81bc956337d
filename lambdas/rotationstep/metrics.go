package main

import (
	"errors"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/rotation"
)

// publish records the metric a step's result stands for: a certificate obtained from the CA, a host rotated and
// recorded, a host's CSR refused, a rotation failed.
func publish(step string, err error) {
	var se *rotation.Error
	switch {
	case step == StepNotifyFailure:
		metrics.Inc(metrics.CapE, metrics.RotationFailed)
	case err == nil && step == StepGetCertificate:
		metrics.Inc(metrics.CapE, metrics.CertificatesIssued)
	case err == nil && step == StepRecord:
		metrics.Inc(metrics.CapE, metrics.RotationSucceeded)
	case errors.As(err, &se) && se.Name == rotation.ErrCSRRejected:
		metrics.Refuse(metrics.CapE, metrics.ReasonInvalidCSR)
	}
}
