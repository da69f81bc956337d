package vending

import (
	"strings"
	"testing"
)

// FuzzParseConfig: the configuration comes from an operator's cdk.json or the SSM parameter. Parsing never panics, an
// accepted configuration is usable (a token identifier, a policy per attribute type, a root CA), and no error message
// ever repeats a plaintext token list.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"AWS_ROOT_CA":{"PREFERRED":"https://www.amazontrust.com/repository/AmazonRootCA1.pem","BACKUP":"https://www.amazontrust.com/repository/AmazonRootCA3.pem"},"POLICIES":{"CvmGenericType":{"name":"multa_backend_policy_dev"}},"ATTRIBUTES":{"CvmGenericType":[{"name":"creationDate"},{"name":"version"}]},"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH":"2","DEVICE_AUTHORIZER_TOKEN_IDENTIFIER":"DeviceToken"}`))
	f.Add([]byte(`{"DEVICE_AUTHORIZER_VALID_TOKENS":["s3cr3t-token-value"]}`))
	f.Add([]byte(`{"AWS_ROOT_CA":{"PREFERRED":"http://example.com/ca.pem"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if strings.Contains(err.Error(), "s3cr3t-token-value") {
				t.Fatalf("ParseConfig error repeats a token: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseConfig error spans lines: %q", err)
			}
			return
		}
		if c.TokenIdentifier == "" || c.TokenPayloadLength < 2 || c.RootCA.Preferred == "" {
			t.Fatalf("ParseConfig accepted an unusable configuration: %+v", c)
		}
		for typ := range c.Attributes {
			if _, ok := c.Policies[typ]; !ok {
				t.Fatalf("ParseConfig accepted attributes for %q without a policy", typ)
			}
		}
	})
}

// FuzzParseTokens: the token secret is edited by vend-token and could be edited by hand. Parsing never panics, and a
// parsed set round-trips through Marshal.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(`{"tokens":[{"id":"a1","sha256":"` + strings.Repeat("ab", 32) + `","thingPrefix":"sensor-","expires":"2030-01-01T00:00:00Z","singleUse":true}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseTokens(data)
		if err != nil {
			return
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed set: %v", err)
		}
		if _, err := ParseTokens(out); err != nil {
			t.Fatalf("ParseTokens(Marshal(set)) = %v, want a set", err)
		}
	})
}
