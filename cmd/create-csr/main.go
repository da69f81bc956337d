// Command create-csr writes a producer's private key and certificate signing request for the cross-account
// certificate-based stack, as the seed's create-csr.sh did:
//
//	create-csr [-dir DIR] <topic>
//
// It writes cross-account.key (EC P-256, SEC 1 PEM, mode 0600: keep it) and cross-account.csr (subject
// CN=<topic> with "/" written "%2F": send it to the consumer). Existing files are never overwritten.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/internal/pki"
)

// File names of the seed's contract.
const (
	KeyFile = "cross-account.key"
	CSRFile = "cross-account.csr"
)

const usageText = "You must specify the desired topic as the first and only parameter to this script"

var tool = cli.Tool{
	Name:     "create-csr",
	Synopsis: "create-csr [-dir DIR] <topic>",
	About: `makes a producer's private key and certificate signing request for the cross-account stack.
It writes ` + KeyFile + ` (EC P-256, mode 0600: keep it) and ` + CSRFile + ` (subject CN = the topic, "/" written "%2F": send it
to the consumer). The common name holds at most 64 characters, so the topic does too (each "/" counts 3); existing
files are never overwritten.`,
	Examples: []string{"create-csr producer1/data", "create-csr -dir keys/ producer1/data"},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("create-csr", flag.ContinueOnError)
	dir := fset.String("dir", ".", "directory to write "+KeyFile+" and "+CSRFile+" into")
	if code, done := tool.Parse(fset, args, stdout, stderr); done {
		return code
	}
	if fset.NArg() != 1 || fset.Arg(0) == "" {
		return tool.UsageError(stderr, usageText)
	}
	topic := fset.Arg(0)
	// The consumer's stack refuses reserved topics and policy variables outright: refuse them here, before any file.
	if err := pki.CheckTopicGrant(topic, true); err != nil {
		fmt.Fprintf(stderr, "create-csr: %v\n", err)
		return 1
	}
	cn := pki.EncodeTopic(topic)
	if n := utf8.RuneCountInString(cn); n > pki.MaxCommonNameLength {
		fmt.Fprintf(stderr, "create-csr: the certificate common name %q is %d characters: X.509 allows at most %d (each \"/\" counts 3, as \"%%2F\"); choose a shorter topic\n",
			cn, n, pki.MaxCommonNameLength)
		return 1
	}
	keyPath, csrPath := filepath.Join(*dir, KeyFile), filepath.Join(*dir, CSRFile)
	for _, p := range []string{keyPath, csrPath} {
		if _, err := os.Lstat(p); err == nil {
			fmt.Fprintf(stderr, "create-csr: %s already exists: move it away first, nothing was written\n", p)
			return 1
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "create-csr: %v\n", err)
			return 1
		}
	}
	keyPEM, csrPEM, err := generate(cn)
	if err != nil {
		fmt.Fprintf(stderr, "create-csr: %v\n", err)
		return 1
	}
	if err := cli.WriteNew(keyPath, keyPEM, 0o600); err != nil {
		fmt.Fprintf(stderr, "create-csr: %v\n", err)
		return 1
	}
	if err := cli.WriteNew(csrPath, csrPEM, 0o644); err != nil {
		os.Remove(keyPath) // leave nothing half-done
		fmt.Fprintf(stderr, "create-csr: %v\n", err)
		return 1
	}
	if pki.CheckTopicGrant(topic, false) != nil {
		fmt.Fprintf(stderr, "create-csr: note: topic %s holds an IAM wildcard: the consumer must deploy with -c allow_topic_wildcard=true, which lets you publish to every topic it matches\n", topic)
	}
	fmt.Fprintf(stdout, "Wrote %s (private key: keep it) and %s (send it to the consumer) for topic %s\n", keyPath, csrPath, topic)
	return 0
}

// generate makes an EC P-256 key, as `openssl ecparam -name prime256v1 -genkey` does, and its CSR.
func generate(cn string) (keyPEM, csrPEM []byte, err error) {
	k, err := pki.GenerateKey(pki.KeyECP256)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = pki.EncodePrivateKey(k); err != nil {
		return nil, nil, err
	}
	if csrPEM, err = pki.NewCSR(k, cn); err != nil {
		return nil, nil, err
	}
	return keyPEM, csrPEM, nil
}
