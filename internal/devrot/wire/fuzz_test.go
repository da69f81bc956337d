package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// Job documents come from whoever can create jobs; the device runs only the exact rotation document.
func FuzzCheckDocument(f *testing.F) {
	f.Add([]byte(JobDocumentJSON()))
	f.Add([]byte(`{"operation":"iotcert-rotate-certificate","version":"1","csrTopic":"iotcert/x/rotation/csr"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if CheckDocument(json.RawMessage(raw)) != nil {
			return
		}
		var d Document
		if err := json.Unmarshal(raw, &d); err != nil || d != JobDocument() {
			t.Fatalf("CheckDocument accepted %q, which is not the rotation document", raw)
		}
	})
}

// Thing names and job ids arrive in topics and payloads; an accepted one never carries a topic separator or wildcard.
func FuzzChecks(f *testing.F) {
	for _, s := range []string{"sensor-1", "iotcert-rotate-thing-1", "+", "a/b", "#", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, check := range map[string]func(string) error{"thing": CheckThing, "job": CheckJobID, "certificate": CheckCertificateID} {
			if check(s) == nil && strings.ContainsAny(s, "/+#$ \x00") {
				t.Fatalf("%s check accepted %q", name, s)
			}
		}
	})
}
