package main

import (
	"encoding/json"
	"testing"

	"github.com/iotcert/iotcert/internal/pki"
)

// FuzzSecretMatches: whatever the secret holds (it is outside input: anyone with write access may change it),
// reading it never panics, and only a key that matches the certificate is ever taken for reuse.
func FuzzSecretMatches(f *testing.F) {
	key, err := pki.GenerateKey("")
	if err != nil {
		f.Fatal(err)
	}
	keyPEM, _ := pki.EncodePrivateKey(key)
	csr, _ := pki.NewCSR(key, thingName)
	good, _ := json.Marshal(SecretValue{CertificateID: "ab", CSR: string(csr), PrivateKey: string(keyPEM)})
	f.Add(string(good), "")
	f.Add(`{"certificateId":1}`, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	f.Add("Xq9!placeholder", "")
	f.Fuzz(func(t *testing.T, secret, certPEM string) {
		var sv SecretValue
		if json.Unmarshal([]byte(secret), &sv) != nil {
			return
		}
		for _, alg := range []string{pki.KeyECP256, pki.KeyRSA2048} {
			if sv.matches(Properties{ThingName: thingName, KeyAlgorithm: alg}, certPEM) && certPEM == "" {
				t.Fatalf("matches() accepted a secret without a certificate: %q", secret)
			}
		}
	})
}
