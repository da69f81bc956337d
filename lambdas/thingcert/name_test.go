package main

import (
	"strings"
	"testing"
)

// TestThingNameFitsCommonName: AWS IoT accepts thing names of up to 128 characters, but the certificate's subject
// CN holds at most 64 (X.509). A longer name is refused with a FAILED status that says so, before any AWS call; a
// 64-character name gets a certificate whose CN is the whole name.
func TestThingNameFitsCommonName(t *testing.T) {
	t.Run("65 characters refused", func(t *testing.T) {
		f := setup(t)
		ev := f.event("create.json", "")
		ev.ResourceProperties.ThingName = strings.Repeat("t", 65)
		_, err := f.handle(ev)
		if err == nil || !strings.Contains(err.Error(), "is 65 characters: a certificate's common name holds at most 64") {
			t.Fatalf("Handle(65-character thing name) = %v, want the common-name bound", err)
		}
		if n := f.srv.Calls("iot", "CreateCertificateFromCsr"); n != 0 {
			t.Errorf("CreateCertificateFromCsr calls = %d, want 0", n)
		}
		if n := f.srv.Calls("secretsmanager", "PutSecretValue"); n != 0 {
			t.Errorf("PutSecretValue calls = %d, want 0", n)
		}
	})
	t.Run("64 characters accepted", func(t *testing.T) {
		f := setup(t)
		ev := f.event("create.json", "")
		name := strings.Repeat("t", 64)
		ev.ResourceProperties.ThingName = name
		resp := f.mustHandle(ev)
		cert := parseCert(t, f.cert(resp.PhysicalResourceID).PEM)
		if cert.Subject.CommonName != name {
			t.Errorf("subject CN = %q, want %q", cert.Subject.CommonName, name)
		}
	})
}
