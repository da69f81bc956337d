package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDocument(t *testing.T) {
	if err := CheckDocument(json.RawMessage(JobDocumentJSON())); err != nil {
		t.Fatalf("CheckDocument(the template's document) = %v", err)
	}
	d := JobDocument()
	if d.CSRTopic != "iotcert/${thingName}/rotation/csr" || d.ConfirmTopic != "iotcert/${thingName}/rotation/confirm" {
		t.Fatalf("document topics = %+v", d)
	}
	d.CSRTopic = "iotcert/other/rotation/csr"
	b, _ := json.Marshal(d)
	for _, bad := range []string{string(b), `{"operation":"install-firmware"}`, `[]`, `"x"`} {
		if err := CheckDocument(json.RawMessage(bad)); err == nil {
			t.Errorf("CheckDocument(%s) = nil, want an error", bad)
		}
	}
}

func TestChecks(t *testing.T) {
	for _, id := range []string{"iotcert-rotate-thing-1", JobIDPrefix + strings.Repeat("a", 64-len(JobIDPrefix))} {
		if err := CheckJobID(id); err != nil {
			t.Errorf("CheckJobID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "firmware-1", JobIDPrefix + "a/b", JobIDPrefix + strings.Repeat("a", 65-len(JobIDPrefix))} {
		if err := CheckJobID(id); err == nil {
			t.Errorf("CheckJobID(%q) = nil", id)
		}
	}
	for _, name := range []string{"", "+", "#", "a/b", strings.Repeat("a", 65)} {
		if err := CheckThing(name); err == nil {
			t.Errorf("CheckThing(%q) = nil", name)
		}
	}
	if err := CheckCertificateID(strings.Repeat("A", 64)); err == nil {
		t.Error("CheckCertificateID(upper case) = nil: principal() is lower case")
	}
	if got := CertificateTopic("t1"); got != "iotcert/t1/rotation/certificate" {
		t.Errorf("CertificateTopic = %q", got)
	}
}
