package main

import (
	"net/http"

	"github.com/iotcert/iotcert/internal/metrics"
)

// publish records what a registration's answer stands for: a device registered with its certificate, or a refusal by
// its status code. Server errors are no refusal: API Gateway's 5XXError counts them.
func publish(status int) {
	switch {
	case status == http.StatusOK:
		metrics.Inc(metrics.CapC, metrics.VendingRegistrations)
		metrics.Inc(metrics.CapC, metrics.CertificatesIssued)
	case status == http.StatusForbidden:
		metrics.Refuse(metrics.CapC, metrics.ReasonUnauthorized)
	case status == http.StatusConflict:
		metrics.Refuse(metrics.CapC, metrics.ReasonConflict)
	case status == http.StatusRequestEntityTooLarge:
		metrics.Refuse(metrics.CapC, metrics.ReasonLimit)
	case status >= 400 && status < 500:
		metrics.Refuse(metrics.CapC, metrics.ReasonMalformed)
	}
}
