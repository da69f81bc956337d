package main

import (
	"context"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/pki"
)

// The signer never issues a certificate for a topic no stack may grant (a reserved topic or a policy variable), even
// when the CSR and AllowedTopic agree: the synth-time refusal is not the only guard.
func TestSignerRefusesUngrantableTopics(t *testing.T) {
	srv, h, _ := setup(t)
	for _, topic := range []string{"$aws/things/victim/shadow/update", "things/${iot:ClientId}"} {
		t.Run(topic, func(t *testing.T) {
			k, err := pki.GenerateKey(pki.KeyECP256)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := pki.NewCSR(k, pki.EncodeTopic(topic))
			if err != nil {
				t.Fatal(err)
			}
			req := event(t, "signer-create.json")
			req.ResourceProperties["CSR"] = string(csr)
			req.ResourceProperties["AllowedTopic"] = topic
			_, err = h.Handle(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), "property AllowedTopic") || !strings.Contains(err.Error(), topic) {
				t.Fatalf("Handle(topic %q) = %v, want a refusal naming the topic", topic, err)
			}
		})
	}
	if n := srv.Calls("iot", "DescribeEndpoint"); n != 0 {
		t.Errorf("DescribeEndpoint calls = %d, want 0 (refused before any AWS call)", n)
	}
}
