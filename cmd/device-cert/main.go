// Command device-cert makes the certificate of a device for the multi-region stacks, whose Just-in-Time
// Registration activates it on the device's first connection. It has two halves:
//
//	device-cert csr  -thing NAME [-key-algorithm EC_P256] [-dir DIR]          (on the device)
//	device-cert sign -ca-arn ARN -csr FILE [-days 365] [-out FILE] [...]       (the operator, with AWS credentials)
//	device-cert sign -ca-cert CA.pem -ca-key CA.key -csr FILE [...]            (the operator, with its own CA)
//
// csr makes the device's private key and a CSR whose subject is CN=<thing name>: the key never leaves the device
// (mode 0600, never printed). sign has AWS Private CA sign a CSR, with an idempotency token derived from the CSR (a
// repeat within AWS's 5-minute window returns the same certificate instead of a second one), waits for the
// issuance, and writes the certificate followed by the CA chain: the chain the device presents so that AWS IoT can
// register the certificate under the CA on first connect. AWS credentials and endpoint come from the standard SDK
// environment (AWS_ENDPOINT_URL_ACM_PCA included); the region is the CA ARN's. With -ca-cert and -ca-key (the
// ca_certificate_file mode of the multi-region stacks) it signs with the operator's own CA instead, offline.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/internal/naming"
	"github.com/iotcert/iotcert/internal/pki"
)

// DefaultTemplateARN is AWS Private CA's client-authentication end-entity template: the certificate can log in to
// AWS IoT and nothing else (the default template also allows server authentication).
const DefaultTemplateARN = "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1"

const usage = `device-cert makes a device certificate for Just-in-Time Registration with AWS IoT.

On the device (the private key never leaves it):
  device-cert csr -thing NAME [-key-algorithm EC_P256|EC_P384|RSA_2048] [-dir DIR]
    writes DIR/NAME.key (mode 0600) and DIR/NAME.csr (subject CN=NAME); existing files are never overwritten.

By the operator, with AWS credentials allowed acm-pca:GetCertificateAuthorityCertificate, acm-pca:IssueCertificate
and acm-pca:GetCertificate on the CA (the region is the CA ARN's, whatever AWS_REGION says):
  device-cert sign -ca-arn ARN -csr FILE [-thing NAME] [-days 365] [-signing-algorithm auto]
                   [-template-arn ARN] [-out FILE] [-wait 5m]
    signs the CSR with AWS Private CA and writes the certificate and the CA chain to FILE
    (default: the CSR path with .csr replaced by .cert.pem).

Or, with the operator's own CA (the multi-region stacks' ca_certificate_file mode), no AWS access at all:
  device-cert sign -ca-cert CA.pem -ca-key CA.key -csr FILE [-thing NAME] [-days 365] [-out FILE]
    signs the CSR with that CA's key (client authentication only) and writes the certificate and the CA certificate.

Example:
  device-cert csr -thing thing-mr04 -dir /etc/iot
  device-cert sign -ca-arn arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/11223344-1234-1122-2233-112233445566 \
      -csr thing-mr04.csr
  device-cert sign -ca-cert ca.crt.pem -ca-key ca.key.pem -csr thing-mr04.csr
  publish --mqtt --cert /etc/iot/thing-mr04.cert.pem --key /etc/iot/thing-mr04.key \
      --endpoint <iot:Data-ATS endpoint> --topic dt/thing-mr04/hello

Flags of csr:
`

// waiterMinDelay is the first delay of the issuance waiter (AWS's default); tests shorten it.
var waiterMinDelay = time.Second

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "device-cert: "+format+"\n", args...)
	fmt.Fprintln(stderr, "run 'device-cert -h' for help")
	return 2
}

func run(args []string, stdout, stderr io.Writer) int {
	csrFlags, csrOpts := newCSRFlags()
	signFlags, signOpts := newSignFlags()
	if len(args) == 0 {
		return usageError(stderr, "a command is required: csr or sign")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		csrFlags.SetOutput(stdout)
		csrFlags.PrintDefaults()
		fmt.Fprintln(stdout, "\nFlags of sign:")
		signFlags.SetOutput(stdout)
		signFlags.PrintDefaults()
		return 0
	case "csr":
		if code, ok := parse(csrFlags, args[1:], stdout, stderr); !ok {
			return code
		}
		return runCSR(*csrOpts, stdout, stderr)
	case "sign":
		if code, ok := parse(signFlags, args[1:], stdout, stderr); !ok {
			return code
		}
		return runSign(*signOpts, stdout, stderr)
	default:
		return usageError(stderr, "unknown command %q: use csr or sign", args[0])
	}
}

// parse parses a command's flags; ok is false when run must return code.
func parse(fset *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fset.SetOutput(io.Discard)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fset.SetOutput(stdout)
			fset.PrintDefaults()
			return 0, false
		}
		return usageError(stderr, "%s: %v", fset.Name(), err), false
	}
	if fset.NArg() > 0 {
		return usageError(stderr, "%s: unexpected argument %q", fset.Name(), fset.Arg(0)), false
	}
	return 0, true
}

type csrOptions struct{ thing, keyAlg, dir string }

func newCSRFlags() (*flag.FlagSet, *csrOptions) {
	o := &csrOptions{}
	fset := flag.NewFlagSet("csr", flag.ContinueOnError)
	fset.StringVar(&o.thing, "thing", "", "thing name, the certificate's subject CN (required)")
	fset.StringVar(&o.keyAlg, "key-algorithm", pki.KeyECP256, "key algorithm: EC_P256, EC_P384 or RSA_2048")
	fset.StringVar(&o.dir, "dir", ".", "directory to write NAME.key and NAME.csr into")
	return fset, o
}

func runCSR(o csrOptions, stdout, stderr io.Writer) int {
	if o.thing == "" {
		return usageError(stderr, "csr: -thing is required")
	}
	if err := naming.ThingName(o.thing); err != nil {
		return usageError(stderr, "csr: -thing: %v", err)
	}
	switch o.keyAlg {
	case pki.KeyECP256, pki.KeyECP384, pki.KeyRSA2048:
	default:
		return usageError(stderr, "csr: -key-algorithm %q is not valid: use EC_P256, EC_P384 or RSA_2048", o.keyAlg)
	}
	keyPath, csrPath := filepath.Join(o.dir, o.thing+".key"), filepath.Join(o.dir, o.thing+".csr")
	for _, p := range []string{keyPath, csrPath} {
		if _, err := os.Lstat(p); err == nil {
			fmt.Fprintf(stderr, "device-cert: %s already exists: move it away first, nothing was written\n", p)
			return 1
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "device-cert: %v\n", err)
			return 1
		}
	}
	k, err := pki.GenerateKey(o.keyAlg)
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	keyPEM, err := pki.EncodePrivateKey(k)
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	csrPEM, err := pki.NewCSR(k, o.thing)
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	if err := cli.WriteNew(keyPath, keyPEM, 0o600); err != nil {
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	if err := cli.WriteNew(csrPath, csrPEM, 0o644); err != nil {
		os.Remove(keyPath) // leave nothing half-done
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s (private key: keep it on the device) and %s (send it to the operator) for thing %s\n",
		keyPath, csrPath, o.thing)
	return 0
}

type signOptions struct {
	caARN, caCert, caKey, csr, thing, signingAlg, templateARN, out string
	days                                                           int
	wait                                                           time.Duration
}

func newSignFlags() (*flag.FlagSet, *signOptions) {
	o := &signOptions{}
	fset := flag.NewFlagSet("sign", flag.ContinueOnError)
	fset.StringVar(&o.caARN, "ca-arn", "", "ARN of the AWS Private CA (the stack's CA ARN output); the region is taken from it")
	fset.StringVar(&o.caCert, "ca-cert", "", "PEM certificate of the operator's own CA (instead of -ca-arn; with -ca-key)")
	fset.StringVar(&o.caKey, "ca-key", "", "PEM private key of that CA (with -ca-cert; encrypted keys are refused)")
	fset.StringVar(&o.csr, "csr", "", "PEM CSR made by 'device-cert csr' (required)")
	fset.StringVar(&o.thing, "thing", "", "refuse the CSR unless its CN is this thing name")
	fset.IntVar(&o.days, "days", 365, "validity of the certificate in days")
	fset.StringVar(&o.signingAlg, "signing-algorithm", "auto",
		"signing algorithm, e.g. SHA256WITHRSA or SHA256WITHECDSA; auto: from the CA's key")
	fset.StringVar(&o.templateARN, "template-arn", DefaultTemplateARN, "AWS Private CA certificate template")
	fset.StringVar(&o.out, "out", "", "certificate file to write (default: the CSR path with .csr replaced by .cert.pem)")
	fset.DurationVar(&o.wait, "wait", 5*time.Minute, "longest wait for the issuance")
	return fset, o
}

// IdempotencyToken derives IssueCertificate's token from the CSR: the same CSR (so the same key) within AWS's
// window gets the same certificate back; a new key always gets a new certificate. AWS allows 36 characters.
func IdempotencyToken(csrDER []byte) string {
	sum := sha256.Sum256(csrDER)
	return hex.EncodeToString(sum[:])[:36]
}

func runSign(o signOptions, stdout, stderr io.Writer) int {
	local := o.caCert != "" || o.caKey != ""
	switch {
	case local && o.caARN != "":
		return usageError(stderr, "sign: give -ca-arn (AWS Private CA) or -ca-cert and -ca-key (your own CA), not both")
	case local && (o.caCert == "" || o.caKey == ""):
		return usageError(stderr, "sign: -ca-cert and -ca-key go together")
	case !local && o.caARN == "":
		return usageError(stderr, "sign: -ca-arn is required (or -ca-cert and -ca-key for your own CA)")
	case !local && caRegion(o.caARN) == "":
		return usageError(stderr, "sign: -ca-arn %q is not a certificate authority ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)", o.caARN)
	case o.csr == "":
		return usageError(stderr, "sign: -csr is required")
	case o.days < 1 || o.days > 36500:
		return usageError(stderr, "sign: -days %d is not valid: use 1 to 36500", o.days)
	case o.wait <= 0:
		return usageError(stderr, "sign: -wait %v is not valid: use a positive duration", o.wait)
	}
	if o.out == "" {
		o.out = strings.TrimSuffix(o.csr, filepath.Ext(o.csr)) + ".cert.pem"
	}
	csrPEM, err := os.ReadFile(o.csr)
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: read CSR: %v\n", err)
		return 1
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: %s: %v\n", o.csr, err)
		return 1
	}
	// Exactly one attribute, CN: a second CN or an O/OU the certificate would carry is refused before anything is
	// signed (x509 shows one CN of two; AWS IoT's provisioning may pick the other).
	cn, err := pki.SubjectCommonName(csr.RawSubject)
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: %s: %v: nothing was signed\n", o.csr, err)
		return 1
	}
	if err := naming.ThingName(cn); err != nil {
		fmt.Fprintf(stderr, "device-cert: %s: subject CN: %v\n", o.csr, err)
		return 1
	}
	if o.thing != "" && cn != o.thing {
		fmt.Fprintf(stderr, "device-cert: %s is for thing %q, not %q: nothing was signed\n", o.csr, cn, o.thing)
		return 1
	}
	if _, err := os.Lstat(o.out); err == nil {
		fmt.Fprintf(stderr, "device-cert: %s already exists: move it away first, nothing was signed\n", o.out)
		return 1
	}

	var chainPEM []byte
	if local {
		chainPEM, err = signLocal(o, csr, time.Now())
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), o.wait+30*time.Second)
		defer cancel()
		var cfg aws.Config
		if cfg, err = caConfig(ctx, o.caARN); err == nil {
			chainPEM, err = sign(ctx, acmpca.NewFromConfig(cfg), o, csr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	if err := cli.WriteNew(o.out, chainPEM, 0o644); err != nil {
		fmt.Fprintf(stderr, "device-cert: %v\n", err)
		return 1
	}
	first, _ := pki.ParseCertificate(chainPEM)
	fmt.Fprintf(stdout, "Wrote %s for thing %s: the certificate (AWS IoT id %s, valid until %s) and the CA chain\n",
		o.out, cn, pki.CertificateID(first.Raw), first.NotAfter.UTC().Format(time.RFC3339))
	return 0
}

// PCAAPI is the part of the AWS Private CA client sign uses.
type PCAAPI interface {
	acmpca.GetCertificateAPIClient
	IssueCertificate(context.Context, *acmpca.IssueCertificateInput, ...func(*acmpca.Options)) (*acmpca.IssueCertificateOutput, error)
	GetCertificateAuthorityCertificate(context.Context, *acmpca.GetCertificateAuthorityCertificateInput, ...func(*acmpca.Options)) (*acmpca.GetCertificateAuthorityCertificateOutput, error)
}

// sign issues the certificate and returns it followed by its chain, checked: it certifies the CSR's key and
// subject, and the chain verifies it.
func sign(ctx context.Context, pca PCAAPI, o signOptions, csr *x509.CertificateRequest) ([]byte, error) {
	caOut, err := pca.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(o.caARN),
	})
	if err != nil {
		return nil, fmt.Errorf("read the CA certificate of %s: %w", o.caARN, err)
	}
	caCert, err := pki.ParseCertificate([]byte(aws.ToString(caOut.Certificate)))
	if err != nil {
		return nil, fmt.Errorf("CA certificate of %s: %w", o.caARN, err)
	}
	alg := pcatypes.SigningAlgorithm(o.signingAlg)
	if o.signingAlg == "auto" {
		if alg, err = signingAlgorithmFor(caCert); err != nil {
			return nil, err
		}
	}
	in := &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(o.caARN),
		Csr:                     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw}),
		SigningAlgorithm:        alg,
		Validity:                &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(int64(o.days))},
		IdempotencyToken:        aws.String(IdempotencyToken(csr.Raw)),
	}
	if o.templateARN != "" {
		in.TemplateArn = aws.String(o.templateARN)
	}
	issued, err := pca.IssueCertificate(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	get := &acmpca.GetCertificateInput{CertificateArn: issued.CertificateArn, CertificateAuthorityArn: aws.String(o.caARN)}
	waiter := acmpca.NewCertificateIssuedWaiter(pca, func(w *acmpca.CertificateIssuedWaiterOptions) {
		w.MinDelay = waiterMinDelay
	})
	out, err := waiter.WaitForOutput(ctx, get, o.wait)
	if err != nil {
		return nil, fmt.Errorf("wait for certificate %s: %w", aws.ToString(issued.CertificateArn), err)
	}
	certPEM := strings.TrimSpace(aws.ToString(out.Certificate)) + "\n"
	chain := strings.TrimSpace(aws.ToString(out.CertificateChain))
	if chain == "" {
		chain = strings.TrimSpace(aws.ToString(caOut.Certificate))
	}
	full := certPEM + chain + "\n"
	if err := checkIssued([]byte(full), csr); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", aws.ToString(issued.CertificateArn), err)
	}
	return []byte(full), nil
}

// signingAlgorithmFor picks the algorithm that matches the CA's key, as AWS Private CA requires.
func signingAlgorithmFor(ca *x509.Certificate) (pcatypes.SigningAlgorithm, error) {
	switch k := ca.PublicKey.(type) {
	case *rsa.PublicKey:
		return pcatypes.SigningAlgorithmSha256withrsa, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return pcatypes.SigningAlgorithmSha384withecdsa, nil
		case elliptic.P521():
			return pcatypes.SigningAlgorithmSha512withecdsa, nil
		}
		return pcatypes.SigningAlgorithmSha256withecdsa, nil
	}
	return "", fmt.Errorf("CA key type %T: give -signing-algorithm", ca.PublicKey)
}

// checkIssued verifies that the first certificate of chainPEM holds the CSR's key and subject CN and chains to the
// last certificate.
func checkIssued(chainPEM []byte, csr *x509.CertificateRequest) error {
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("parse issued chain: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		return errors.New("the issued certificate came without its CA chain")
	}
	leaf := certs[0]
	if eq, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(csr.PublicKey) {
		return errors.New("the issued certificate does not hold the CSR's key")
	}
	// The certificate's subject too must be the CN alone: JITR refuses anything else.
	cn, err := pki.SubjectCommonName(leaf.RawSubject)
	if err != nil {
		return fmt.Errorf("the issued certificate's %w", err)
	}
	if cn != csr.Subject.CommonName {
		return fmt.Errorf("the issued certificate is for CN %q, not %q", cn, csr.Subject.CommonName)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(certs[len(certs)-1])
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the issued certificate does not verify against its chain for client authentication: %w", err)
	}
	return nil
}

// caRegion returns the region of an AWS Private CA ARN (arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<id>),
// or "" when arn is not one.
func caRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "acm-pca" || parts[3] == "" ||
		!strings.HasPrefix(parts[5], "certificate-authority/") || len(parts[5]) == len("certificate-authority/") {
		return ""
	}
	return parts[3]
}

// caConfig loads the AWS configuration for calls to the CA: the CA lives in its ARN's region, whatever AWS_REGION or
// the profile says.
func caConfig(ctx context.Context, caARN string) (aws.Config, error) {
	cfg, err := awsconfig.Load(ctx, 5*time.Second)
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Region = caRegion(caARN)
	return cfg, nil
}

// signLocal signs the CSR with the operator's own CA (files), as AWS Private CA's client-authentication template
// would: CN from the CSR, clientAuth only, a random 159-bit serial, and returns the certificate followed by the CA
// certificate, checked like a Private CA issuance.
func signLocal(o signOptions, csr *x509.CertificateRequest, now time.Time) ([]byte, error) {
	caPEM, err := os.ReadFile(o.caCert)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	ca, err := pki.ParseCertificate(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.caCert, err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate (basic constraints CA:TRUE and key usage keyCertSign)", o.caCert)
	}
	keyPEM, err := os.ReadFile(o.caKey)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	key, err := pki.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.caKey, err)
	}
	if eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(ca.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of the CA certificate %s", o.caKey, o.caCert)
	}
	notBefore, notAfter := pki.ValidityWindow(now, time.Duration(o.days)*24*time.Hour)
	if notAfter.After(ca.NotAfter) {
		return nil, fmt.Errorf("-days %d would outlive the CA certificate (valid until %s): give fewer days", o.days, ca.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	full := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	if err := checkIssued(full, csr); err != nil {
		return nil, err
	}
	return full, nil
}
