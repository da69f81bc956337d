package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"
)

// deviceCSR makes a CSR from a template, bypassing NewDeviceCSR's checks, to play the attacker.
func deviceCSR(t testing.TB, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	k, err := GenerateKey(KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der})
}

func TestCheckDeviceName(t *testing.T) {
	tests := []struct {
		name, thing, wantErr string
	}{
		{"short", "sensor-9", ""},
		{"64 characters", strings.Repeat("a", 64), ""},
		{"65 characters", strings.Repeat("a", 65), `thing name "aaaaa` + strings.Repeat("a", 59) + `a" is 65 characters: a certificate's common name holds at most 64`},
		{"128 characters", strings.Repeat("b", 128), "is 128 characters: a certificate's common name holds at most 64"},
		{"empty", "", "thing name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDeviceName(tt.thing)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckDeviceName(%q) = %v, want nil", tt.thing, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckDeviceName(%q) = %v, want error containing %q", tt.thing, err, tt.wantErr)
			}
		})
	}
}

func TestNewDeviceCSR(t *testing.T) {
	k, err := GenerateKey(KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewDeviceCSR(k, "sensor-9")
	if err != nil {
		t.Fatalf("NewDeviceCSR = %v", err)
	}
	csr, canonical, err := ParseDeviceCSR(p)
	if err != nil {
		t.Fatalf("ParseDeviceCSR(NewDeviceCSR) = %v", err)
	}
	if string(canonical) != string(p) {
		t.Errorf("ParseDeviceCSR canonical PEM differs from its single-block input")
	}
	if err := CheckDeviceSubject(csr, "sensor-9", false); err != nil {
		t.Errorf("CheckDeviceSubject(NewDeviceCSR) = %v, want nil", err)
	}
	if _, err := NewDeviceCSR(k, strings.Repeat("x", 65)); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("NewDeviceCSR(65 characters) = %v, want the common-name bound", err)
	}
}

func TestParseDeviceCSR(t *testing.T) {
	good := deviceCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}})
	other := deviceCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin-console"}})
	block, _ := pem.Decode(good)
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"one block", good, ""},
		{"surrounding whitespace", append(append([]byte("\n  "), good...), "\n\n"...), ""},
		{"two csr blocks", append(append([]byte{}, good...), other...), "csr holds more than one PEM block"},
		{"csr then a key", append(append([]byte{}, good...), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"...), "csr holds more than one PEM block"},
		{"trailing text", append(append([]byte{}, good...), "junk"...), "csr has data after its PEM block"},
		{"leading text", append([]byte("hello\n"), good...), "csr has data before its PEM block"},
		{"broken begin line first", append([]byte("-----BEGIN \n"), good...), "csr has data before its PEM block"},
		{"pem headers", pem.EncodeToMemory(&pem.Block{Type: pemCSR, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: block.Bytes}), "csr PEM block has headers"},
		{"der", block.Bytes, "csr must be one PEM"},
		{"wrong type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), `PEM block is "CERTIFICATE"`},
		{"empty", nil, "csr must be one PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, canonical, err := ParseDeviceCSR(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDeviceCSR = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDeviceCSR = %v", err)
			}
			if csr.Subject.CommonName != "sensor-9" {
				t.Errorf("ParseDeviceCSR subject = %v, want CN=sensor-9", csr.Subject)
			}
			// What goes to AWS IoT is exactly the block that was checked.
			b, rest := pem.Decode(canonical)
			if b == nil || len(rest) != 0 || string(b.Bytes) != string(csr.Raw) {
				t.Errorf("canonical PEM is not exactly the checked CSR")
			}
		})
	}
}

func TestCheckDeviceSubject(t *testing.T) {
	oidSerial := asn1.ObjectIdentifier{2, 5, 4, 5}
	parse := func(t *testing.T, p []byte) *x509.CertificateRequest {
		t.Helper()
		csr, _, err := ParseDeviceCSR(p)
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}
	long := strings.Repeat("n", 65)
	tests := []struct {
		name      string
		tmpl      *x509.CertificateRequest
		thing     string
		allowSANs bool
		wantErr   string
	}{
		{"exact", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}}, "sensor-9", false, ""},
		{"other common name", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin-console"}}, "sensor-9", false,
			`csr subject must be exactly CN=sensor-9, got CN=admin-console`},
		{"case differs", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Sensor-9"}}, "sensor-9", false, "must be exactly CN=sensor-9"},
		{"no subject", &x509.CertificateRequest{}, "sensor-9", false, "must be exactly CN=sensor-9"},
		{"extra organization", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9", Organization: []string{"Acme"}}}, "sensor-9", false,
			"must be exactly CN=sensor-9"},
		{"two common names", &x509.CertificateRequest{Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidCommonName, Value: "sensor-9"}, {Type: oidCommonName, Value: "admin"}}}}, "sensor-9", false, "must be exactly CN=sensor-9"},
		{"serial number attribute", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidSerial, Value: "1"}}}}, "sensor-9", false, "must be exactly CN=sensor-9"},
		{"dns san refused", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}, DNSNames: []string{"admin.example.com"}}, "sensor-9", false,
			"csr has subject alternative names"},
		{"uri san refused", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}, URIs: []*url.URL{{Scheme: "urn", Opaque: "x"}}}, "sensor-9", false,
			"csr has subject alternative names"},
		{"ip san refused", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}, "sensor-9", false,
			"csr has subject alternative names"},
		{"email san refused", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}, EmailAddresses: []string{"a@b.c"}}, "sensor-9", false,
			"csr has subject alternative names"},
		{"san allowed when configured", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}, DNSNames: []string{"sensor-9.local"}}, "sensor-9", true, ""},
		{"name over 64", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n"}}, long, false, "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDeviceSubject(parse(t, deviceCSR(t, tt.tmpl)), tt.thing, tt.allowSANs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckDeviceSubject = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckDeviceSubject = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseDeviceCSR(f *testing.F) {
	good := deviceCSR(f, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9"}})
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good...))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, canonical, err := ParseDeviceCSR(data)
		if err != nil {
			return
		}
		b, rest := pem.Decode(canonical)
		if b == nil || len(rest) != 0 || string(b.Bytes) != string(csr.Raw) {
			t.Fatalf("ParseDeviceCSR accepted %q but its canonical form is not the one checked block", data)
		}
		if n := strings.Count(string(data), "-----BEGIN"); n != 1 {
			t.Fatalf("ParseDeviceCSR accepted input with %d PEM blocks", n)
		}
	})
}
