package awsfake

import (
	"slices"
	"testing"
)

func TestSFNIntegrationError(t *testing.T) {
	for _, tc := range []struct{ call, code, want string }{
		{"acmpca:issueCertificate", "MalformedCSRException", "AcmPca.MalformedCSRException"},
		{"acmpca:issueCertificate", "ThrottlingException", "AcmPca.AcmPcaException"}, // not in the model
		{"acmpca:getCertificate", "RequestInProgressException", "AcmPca.RequestInProgressException"},
		{"acmpca:getCertificate", "RequestInProgress", "AcmPca.RequestInProgressException"}, // the suffix is always added
		{"sns:publish", "Throttled", "States.TaskFailed"},
	} {
		if got := SFNIntegrationError(tc.call, tc.code); got != tc.want {
			t.Errorf("SFNIntegrationError(%s, %s) = %s, want %s", tc.call, tc.code, got, tc.want)
		}
	}
	names, ok := SFNIntegrationErrors("acmpca:issueCertificate")
	if !ok || slices.Contains(names, "AcmPca.ThrottlingException") || !slices.Contains(names, "AcmPca.AcmPcaException") {
		t.Errorf("SFNIntegrationErrors(acmpca:issueCertificate) = %v, %v", names, ok)
	}
	if _, ok := SFNIntegrationErrors("dynamodb:updateItem"); ok {
		t.Error("dynamodb:updateItem is not modelled: its names must not be relied on")
	}
}
