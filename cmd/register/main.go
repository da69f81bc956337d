// Command register asks the certificate vending API for a certificate for one thing and writes
// <thing>.cert.pem, <thing>.private.key (mode 0600) and <thing>.root-ca.pem.
//
//	register --url https://<api>.execute-api.<region>.amazonaws.com/prod --token <token> --thing <name>
//	         [--version 1] [--csr] [--key-type EC_P256] [--out dir] [--ca file]
//
// With --csr the key pair is generated here and only a certificate signing request is sent: the private key
// never leaves this machine. Without it, AWS IoT generates the key and the API returns it. The token can also
// be given in the environment variable VEND_TOKEN, which keeps it out of the process list.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/vending"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	url, token, thing, version, keyType, out, ca, identifier string
	csr                                                      bool
	timeout                                                  time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "stage URL of the vending API, e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod (required)")
	fs.StringVar(&o.token, "token", "", "device token (default: $VEND_TOKEN)")
	fs.StringVar(&o.thing, "thing", "", "thing name to register (required)")
	fs.StringVar(&o.version, "version", "1", "version attribute of the thing")
	fs.BoolVar(&o.csr, "csr", false, "generate the key here and send a CSR: the private key is never sent")
	fs.StringVar(&o.keyType, "key-type", pki.KeyECP256, "key algorithm in --csr mode: EC_P256, EC_P384 or RSA_2048")
	fs.StringVar(&o.out, "out", ".", "directory for the certificate, key and root CA files")
	fs.StringVar(&o.ca, "ca", "", "PEM file of CA certificates to trust for the API's TLS (default: system roots)")
	fs.StringVar(&o.identifier, "identifier", "DeviceToken", "first word of the Authorization header")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.token == "" {
		o.token = os.Getenv("VEND_TOKEN")
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "register: unexpected argument %q\n", fs.Arg(0))
		return 2
	case o.url == "" || o.thing == "":
		fmt.Fprintln(stderr, "register: --url and --thing are required")
		return 2
	case o.token == "":
		fmt.Fprintln(stderr, "register: --token (or VEND_TOKEN) is required")
		return 2
	case !vending.ThingNameRe.MatchString(o.thing):
		fmt.Fprintf(stderr, "register: --thing must match %s, got %q\n", vending.ThingNameRe, o.thing)
		return 2
	}
	// In --csr mode the thing name is the CSR's common name, which X.509 bounds at 64 characters.
	if o.csr {
		if err := pki.CheckDeviceName(o.thing); err != nil {
			fmt.Fprintf(stderr, "register: --thing: %v; register it without --csr (AWS IoT then makes the key pair)\n", err)
			fmt.Fprintln(stderr, "run 'register -h' for help")
			return 2
		}
	}
	if err := register(o, stdout); err != nil {
		fmt.Fprintf(stderr, "register: %v\n", err)
		return 1
	}
	return 0
}

// apiError is a non-200 answer of the API.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

func register(o options, stdout io.Writer) error {
	client, err := httpClient(o)
	if err != nil {
		return err
	}
	body := vending.RegisterRequest{ThingName: o.thing, Version: o.version}
	var key crypto.Signer
	if o.csr {
		if key, err = pki.GenerateKey(o.keyType); err != nil {
			return err
		}
		csr, err := pki.NewDeviceCSR(key, o.thing)
		if err != nil {
			return err
		}
		body.CSR = string(csr)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.url, "/")+"/register", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", o.identifier+" "+o.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &apiError{status: resp.StatusCode, msg: errorMessage(data)}
	}
	var r vending.RegisterResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	keyPEM := []byte(r.CertificateData.KeyPair.PrivateKey)
	if key != nil {
		if keyPEM, err = pki.EncodePrivateKey(key); err != nil {
			return err
		}
	}
	if _, err := tls.X509KeyPair([]byte(r.CertificateData.PEM), keyPEM); err != nil {
		return fmt.Errorf("the returned certificate does not match the private key: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{o.thing + ".private.key", keyPEM, 0o600},
		{o.thing + ".cert.pem", []byte(r.CertificateData.PEM), 0o644},
		{o.thing + ".root-ca.pem", []byte(r.RootCA), 0o644},
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(o.out, f.name)
		if err := writeFile(path, f.data, f.mode); err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// writeFile writes data with exactly mode, also when the file already exists with a wider one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// errorMessage extracts the "error" (or API Gateway's "message") of an error body.
func errorMessage(data []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil {
		if e.Error != "" {
			return e.Error
		}
		if e.Message != "" {
			return e.Message
		}
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

func httpClient(o options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.ca != "" {
		pemData, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, errors.New("--ca: no PEM certificate in " + o.ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: o.timeout}, nil
}
