package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// createCSR runs the create-csr command, as a producer would, and returns the directory holding
// cross-account.key and cross-account.csr.
func createCSR(t *testing.T, topic string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build create-csr")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "create-csr")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../create-csr").CombinedOutput(); err != nil {
		t.Fatalf("build create-csr: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-dir", dir, topic).CombinedOutput(); err != nil {
		t.Fatalf("create-csr %s: %v\n%s", topic, err, out)
	}
	return dir
}

// testCA is a CA for the MQTT test only; see TestPublishMQTT.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newTestCA(t *testing.T, name pkix.Name) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: name,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// resign copies an issued certificate's fields (names, serial, validity, extensions, public key) into a
// certificate signed by the test CA.
func (ca *testCA) resign(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: c.SerialNumber, Subject: c.Subject, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		KeyUsage: c.KeyUsage, ExtKeyUsage: c.ExtKeyUsage, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, c.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// TestPublishMQTT publishes over MQTT with mTLS to a real mosquitto broker.
//
// The certificate the stack issues names its issuer (the IoT endpoint) but the issuer's key is discarded, so no
// CA can vouch for it: AWS IoT accepts it only because it is registered without a CA (SNI_ONLY) and matched
// exactly. mosquitto verifies client certificates with OpenSSL, which does not accept a non-self-signed
// certificate as its own trust anchor unless X509_V_FLAG_PARTIAL_CHAIN is set, and mosquitto offers no option
// for that: the first subtest shows the broker refusing it. For the publish path the test therefore re-signs the
// issued certificate with a test CA whose name equals the issuer name (CN=<endpoint>): subject, serial,
// validity, extensions and public key are those IssueCrossAccount produced, so publish reads the same endpoint
// and topic and proves the key with the same private key.
func TestPublishMQTT(t *testing.T) {
	const topic = "producer1/data"
	dir := createCSR(t, topic)
	csrPEM, err := os.ReadFile(filepath.Join(dir, "cross-account.csr"))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	gotTopic, err := pki.TopicFromCSR(csr)
	if err != nil || gotTopic != topic {
		t.Fatalf("TopicFromCSR(create-csr output) = %q, %v, want %q", gotTopic, err, topic)
	}
	// 127.0.0.1 is in the test broker's certificate.
	issuedPEM, _, err := pki.IssueCrossAccount(pki.IssueRequest{CSR: csr, Topic: topic, Endpoint: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	issued, _ := pki.ParseCertificate(issuedPEM)
	keyPath := filepath.Join(dir, "cross-account.key")
	issuedPath := filepath.Join(dir, "issued.pem")
	writeFile(t, issuedPath, issuedPEM)

	publishArgs := func(b *testsvc.Broker, cert string) []string {
		caPath := filepath.Join(t.TempDir(), "broker-ca.pem")
		writeFile(t, caPath, b.ServerCAPEM)
		_, port, _ := net.SplitHostPort(b.Addr)
		return []string{"--mqtt", "--cert", cert, "--key", keyPath, "--ca", caPath, "--port", port, "--timeout", "10s"}
	}

	t.Run("self-issued certificate is not a trust anchor for mosquitto", func(t *testing.T) {
		b := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: issuedPEM})
		var stdout, stderr bytes.Buffer
		if code := run(publishArgs(b, issuedPath), &stdout, &stderr); code == 0 {
			t.Fatalf("run(--mqtt, self-issued cert as broker anchor) = 0, want a refusal")
		}
		// With TLS 1.3 the client may see the broker's unknown-CA alert or only a reset connection: the broker's
		// log (written asynchronously) says why.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(b.Log(), "certificate verify failed") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(b.Log(), "certificate verify failed") {
			t.Errorf("broker log shows no certificate verification failure; publish stderr %q\nbroker log:\n%s", stderr.String(), b.Log())
		}
	})

	t.Run("publish", func(t *testing.T) {
		ca := newTestCA(t, issued.Issuer)
		resignedPath := filepath.Join(dir, "resigned.pem")
		writeFile(t, resignedPath, ca.resign(t, issued))
		b := testsvc.Mosquitto(t, testsvc.MosquittoOptions{ClientCAPEM: ca.pem})

		msgs := make(chan mqtt.Message, 1)
		sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("consumer").
			SetTLSConfig(b.TLSConfig(ca.clientCert(t, "consumer"))).SetAutoReconnect(false))
		if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscriber connect: %v\n%s", tok.Error(), b.Log())
		}
		defer sub.Disconnect(100)
		if tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { msgs <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}

		var stdout, stderr bytes.Buffer
		if code := run(publishArgs(b, resignedPath), &stdout, &stderr); code != 0 {
			t.Fatalf("run(--mqtt) = %d, stderr %q\nbroker log:\n%s", code, stderr.String(), b.Log())
		}
		select {
		case m := <-msgs:
			if m.Topic() != topic || string(m.Payload()) != DefaultMessage {
				t.Errorf("received %q on %q, want %q on %q", m.Payload(), m.Topic(), DefaultMessage, topic)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no message received\nbroker log:\n%s", b.Log())
		}
		// The default client id is the topic's first level; the broker logs it.
		if log := b.Log(); !strings.Contains(log, "producer1") {
			t.Errorf("broker log does not show client id producer1:\n%s", log)
		}
	})
}
