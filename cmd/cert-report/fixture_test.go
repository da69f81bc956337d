package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/capability"
)

// reportNow is the time the fixtures' expiry dates are laid out around, passed to the command as -now.
var reportNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Issuers of the fixture estate. Keys are Ed25519 so that signatures, hence certificate ids, are the same on every
// run and the golden table holds still (the fake does not check key types).
var (
	awsIoTName  = pkix.Name{Country: []string{"US"}, Province: []string{"Washington"}, Locality: []string{"Seattle"}, Organization: []string{"Amazon.com Inc."}, OrganizationalUnit: []string{"Amazon Web Services"}}
	privateCA   = pkix.Name{CommonName: "IoT Multi-Region Private CA", Organization: []string{"Example Corp"}}
	partnerName = pkix.Name{CommonName: "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"}
	factoryCA   = pkix.Name{CommonName: "Acme Factory CA"}
	// privateCAID is the id under which the private CA's certificate is registered.
	privateCAID = hex.EncodeToString(func() []byte { h := sha256.Sum256([]byte("private-ca")); return h[:] }())
)

func key(seed string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(h[:])
}

var issuerKeys = sync.OnceValue(func() map[string]ed25519.PrivateKey {
	return map[string]ed25519.PrivateKey{"aws": key("aws"), "pca": key("pca"), "partner": key("partner"), "factory": key("factory")}
})

// fixture is one certificate of the estate and what the report must say of it.
type fixture struct {
	cert       awsfake.ImportedCertificate
	id         string
	notAfter   time.Time
	capability string
	thing      string
	thingType  string
	attrs      map[string]string
	policy     string
	issuerKind string
}

// estate lays out n certificates of every kind the app makes, and kinds it does not. Certificate i expires within
// the next 30 days of reportNow (or recently expired) when expiresSoon(i); the others expire 60 days to 9 years later.
func estate(n int) []fixture {
	leafKey := key("leaf").Public()
	out := make([]fixture, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i] = fixtureAt(i, leafKey)
			}
		}()
	}
	wg.Wait()
	return out
}

func fixtureAt(i int, leafKey any) fixture {
	notAfter := reportNow.Add(60*24*time.Hour + time.Duration(i*7919%3000)*24*time.Hour + time.Duration(i)*time.Second)
	if expiresSoon(i) {
		notAfter = reportNow.Add(time.Duration(i/401-5)*24*time.Hour + time.Duration(i)*time.Second)
	}
	f := fixture{notAfter: notAfter, cert: awsfake.ImportedCertificate{Status: "ACTIVE",
		Created: reportNow.Add(-time.Duration(n1(i)) * time.Minute)}}
	var issuer pkix.Name
	var signer string
	subject := pkix.Name{CommonName: fmt.Sprintf("device-%06d", i)}
	switch i % 6 {
	case 0: // C: vending, AWS IoT's CA
		issuer, signer = awsIoTName, "aws"
		f.capability, f.thing, f.thingType, f.policy = capability.Vending, fmt.Sprintf("vend-%06d", i), "CvmGenericType", "multa_backend_policy_dev"
		f.attrs = map[string]string{capability.ThingAttribute: capability.Vending, "version": "1.0"}
	case 1: // B: thing stack, AWS IoT's CA, policy named by CloudFormation, thing marked
		issuer, signer = awsIoTName, "aws"
		f.capability, f.thing, f.policy = capability.ThingStack, fmt.Sprintf("thing-%06d", i), fmt.Sprintf("thing-%06d-ThingPolicy-1AB2C3D4E5", i)
		f.attrs = map[string]string{capability.ThingAttribute: capability.ThingStack}
	case 2: // D: JITR under the private CA, thing marked
		issuer, signer = privateCA, "pca"
		f.cert.CAID = privateCAID
		f.capability, f.thing, f.policy = capability.MultiRegion, subject.CommonName, "jitr-mr-policy"
		f.attrs = map[string]string{capability.ThingAttribute: capability.MultiRegion}
		if i%4 == 0 { // registered by AWS IoT, JITR not run yet
			f.cert.Status, f.thing, f.policy, f.attrs = "PENDING_ACTIVATION", "", "", nil
		}
	case 3: // A: partner CSR signed for the account's endpoint, SNI_ONLY, waiting for approval
		issuer, signer = partnerName, "partner"
		f.cert.Mode, f.cert.Status = "SNI_ONLY", "INACTIVE"
		f.capability, f.policy = capability.CrossAccount, "certificate-based-stack-PartnerPolicy"
		subject.CommonName = "telemetry%2Fpartner"
	case 4: // a certificate the operator registered without a CA: no capability made it
		issuer, signer = factoryCA, "factory"
		f.thing, f.policy = fmt.Sprintf("legacy-%06d", i), "legacy-policy"
		f.attrs = map[string]string{"owner": "factory"}
	case 5: // a vending thing from before the attribute existed, and a revoked AWS IoT certificate with nothing attached
		issuer, signer = awsIoTName, "aws"
		if i%12 == 5 {
			f.thing, f.thingType, f.policy = fmt.Sprintf("vend-%06d", i), "CvmGenericType", "multa_backend_policy_dev"
			f.attrs = map[string]string{"version": "0.9"}
		} else {
			f.cert.Status = "REVOKED"
		}
	}
	f.issuerKind = map[string]string{"aws": issuerAWSIoT, "pca": issuerCA, "partner": issuerPartnerCSR, "factory": issuerNoCA}[signer]
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(i) + 1), Subject: subject, Issuer: issuer,
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter,
	}
	parent := &x509.Certificate{Subject: issuer, PublicKey: issuerKeys()[signer].Public()}
	der, err := x509.CreateCertificate(noRand{}, tmpl, parent, leafKey, issuerKeys()[signer])
	if err != nil {
		panic(err)
	}
	f.cert.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	h := sha256.Sum256(der)
	f.id = hex.EncodeToString(h[:])
	return f
}

// expiresSoon picks one certificate in 401: as 401 is 5 modulo 6, they are of every kind in turn.
func expiresSoon(i int) bool { return i%401 == 7 }

// n1 spreads creation dates so that ListCertificates' order is not the fixtures' order.
func n1(i int) int { return (i * 104729) % 1000003 }

// noRand is the random source of CreateCertificate: Ed25519 signs without randomness, so none is needed.
type noRand struct{}

func (noRand) Read(p []byte) (int, error) { return 0, fmt.Errorf("no randomness expected") }

// load puts the estate into the fake.
func load(tb testing.TB, srv *awsfake.Server, fs []fixture) {
	tb.Helper()
	certs := make([]awsfake.ImportedCertificate, len(fs))
	for i, f := range fs {
		certs[i] = f.cert
	}
	if _, err := srv.IoT.ImportCertificates(certs); err != nil {
		tb.Fatal(err)
	}
	for _, f := range fs {
		if f.thing != "" {
			srv.IoT.AttachThingToCertificate(f.id, f.thing, f.thingType, f.attrs)
		}
		if f.policy != "" {
			srv.IoT.AttachPolicyToCertificate(f.id, f.policy)
		}
	}
}

// buildCommand builds cert-report once per test binary.
var buildCommand = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "cert-report-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cert-report")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})
