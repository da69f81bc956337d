package pki

import (
	"encoding/pem"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseCSR(f *testing.F) {
	for _, name := range []string{"cross-account.csr", "weak-rsa1024.csr", "mqtt-wildcard.csr", "bad-signature.csr", "not-a-csr.csr"} {
		data := testdata(f, name)
		f.Add(data)
		if b, _ := pem.Decode(data); b != nil {
			f.Add(b.Bytes)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			return
		}
		// Whatever is accepted has a verified signature and an acceptable key.
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("ParseCSR accepted a CSR whose signature fails: %v", err)
		}
		if err := CheckPublicKey(csr.PublicKey); err != nil {
			t.Fatalf("ParseCSR accepted a refused key: %v", err)
		}
		if topic, err := TopicFromCSR(csr); err == nil && strings.ContainsAny(topic, "+#") {
			t.Fatalf("TopicFromCSR = %q, contains an MQTT wildcard", topic)
		}
	})
}

func FuzzTopicFromCN(f *testing.F) {
	for _, s := range []string{"producer1%2Fdata", "producer1%2F%2B", "a%2F#", "", "%2F%2F%2F", "$aws/rules/r/a", "a%2f%2b%23", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cn string) {
		topic := DecodeTopic(cn)
		if err := ValidateTopic(topic); err != nil {
			return
		}
		if strings.ContainsAny(topic, "+#\x00") {
			t.Fatalf("ValidateTopic(%q) = nil, but it contains a wildcard or NUL", topic)
		}
		if !utf8.ValidString(topic) || len(topic) == 0 || len(topic) > MaxTopicBytes {
			t.Fatalf("ValidateTopic(%q) = nil, want an error", topic)
		}
		if got := DecodeTopic(EncodeTopic(topic)); got != topic {
			t.Fatalf("DecodeTopic(EncodeTopic(%q)) = %q, want the topic back", topic, got)
		}
	})
}
