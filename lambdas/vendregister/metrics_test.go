package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/metrics/metricstest"
)

func TestPublish(t *testing.T) {
	for status, want := range map[int]string{
		http.StatusOK:                    "CertificatesIssued C,VendingRegistrations C",
		http.StatusBadRequest:            "Refused C Malformed",
		http.StatusForbidden:             "Refused C Unauthorized",
		http.StatusConflict:              "Refused C Conflict",
		http.StatusRequestEntityTooLarge: "Refused C Limit",
		http.StatusMethodNotAllowed:      "Refused C Malformed",
		http.StatusInternalServerError:   "",
	} {
		rec := metricstest.Capture(t)
		publish(status)
		if got := strings.Join(rec.Names(t), ","); got != want {
			t.Errorf("publish(%d) = %q, want %q", status, got, want)
		}
	}
}
