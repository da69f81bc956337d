package main

import (
	"strings"
	"time"

	"github.com/iotcert/iotcert/internal/metrics"
)

// refusalReason maps verify's reason text to the fixed reasons of the Refused metric (the text itself names a
// certificate's subject and stays in the log).
func refusalReason(reason string) metrics.Reason {
	switch {
	case strings.HasPrefix(reason, "issuer "), strings.HasPrefix(reason, "not signed by"):
		return metrics.ReasonUntrustedIssuer
	case strings.HasPrefix(reason, "not valid now"), strings.HasPrefix(reason, "the CA certificate is not valid"):
		return metrics.ReasonValidity
	case strings.HasPrefix(reason, "subject CN"), strings.HasPrefix(reason, "thing name"):
		return metrics.ReasonInvalidName
	default: // weak key, a CA certificate, key usages: the certificate itself is not acceptable
		return metrics.ReasonInvalidCertificate
	}
}

// activated publishes one certificate this call activated and the time since AWS IoT registered it.
func (h *Handler) activated(ev Event) {
	metrics.Inc(metrics.CapD, metrics.CertificatesIssued)
	if ev.Timestamp > 0 {
		metrics.Duration(metrics.CapD, metrics.JITRLatency, h.now().Sub(time.UnixMilli(ev.Timestamp)))
	}
}
