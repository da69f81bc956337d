// Command device-agent rotates a device's certificate over AWS IoT Jobs (the device side of capability F).
//
//	device-agent init   -dir DIR -cert CERT.pem -key KEY.pem
//	device-agent rotate -dir DIR -thing T -endpoint HOST:8883 [-ca FILE] [flags]
//	device-agent run    -dir DIR -thing T -endpoint HOST:8883 [-ca FILE] [-poll D] [flags]
//
// The device's certificate and key live in DIR as generations (internal/generations: DIR/gen-<name>/ and the link
// DIR/current). The agent connects with the current generation over MQTT with mutual TLS, client id = thing name,
// and follows the AWS IoT Jobs MQTT API: start-next on $aws/things/<T>/jobs/start-next, updates on
// $aws/things/<T>/jobs/<jobId>/update, new jobs announced on $aws/things/<T>/jobs/notify-next. For a rotation job
// (internal/devrot/wire) it makes a new key that never leaves the device, publishes a CSR with subject exactly
// CN=<T> on iotcert/<T>/rotation/csr, receives the certificate on iotcert/<T>/rotation/certificate, writes it as a
// new generation, reconnects with it, publishes the confirmation on iotcert/<T>/rotation/confirm over that new
// connection and waits until the cloud accepts it; then it switches current and reports the job SUCCEEDED. Any
// failure before the cloud accepts the confirmation reports FAILED with the reason and keeps the old pair. The
// rotation's state is in DIR/rotation-state.json (the new key in DIR/rotation-key.pem, 0600): a restart at any
// point resumes or fails cleanly.
//
// Exit codes of rotate: 0 rotated, 1 failed (reported FAILED, old pair kept) or an error, 2 usage, 3 no rotation
// job pending.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/generations"
	"github.com/iotcert/iotcert/internal/pki"
)

var tool = cli.Tool{
	Name: "device-agent",
	Synopsis: `device-agent init -dir DIR -cert CERT.pem -key KEY.pem
	device-agent rotate -dir DIR -thing T -endpoint HOST:PORT [-ca FILE] [flags]
	device-agent run -dir DIR -thing T -endpoint HOST:PORT [-ca FILE] [-poll D] [flags]`,
	About: `rotates this device's certificate over AWS IoT Jobs. init installs the first certificate and key as the
current generation of DIR. rotate runs (or resumes) one rotation job and exits: 0 rotated, 1 failed (reported FAILED,
old certificate kept), 3 no rotation job pending. run keeps a connection, waits for rotation jobs (notify-next, and a
start-next every -poll) and rotates each. The new key is made on the device and never leaves it; the new certificate
is used only after it has connected and the cloud has accepted its confirmation.`,
	Examples: []string{
		"device-agent init -dir /var/lib/iotcert -cert device.pem -key device.key",
		"device-agent rotate -dir /var/lib/iotcert -thing sensor-1 -endpoint a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883 -ca AmazonRootCA1.pem",
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return tool.UsageError(stderr, "a command is required: init, rotate or run")
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		tool.Help(stdout)
		return 0
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	dir := fs.String("dir", "", "the generation directory (required)")
	switch cmd {
	case "init":
		certPath := fs.String("cert", "", "the device certificate, PEM, optionally followed by its CA chain (required)")
		keyPath := fs.String("key", "", "the device key, PEM (required)")
		if code, done := tool.Parse(fs, args, stdout, stderr); done {
			return code
		}
		if *dir == "" || *certPath == "" || *keyPath == "" {
			return tool.UsageError(stderr, "init needs -dir, -cert and -key")
		}
		return initDir(generations.Dir{Path: *dir}, *certPath, *keyPath, stdout, stderr)
	case "rotate", "run":
	default:
		return tool.UsageError(stderr, "unknown command %q: use init, rotate or run", cmd)
	}
	thing := fs.String("thing", "", "the thing name: the client id and the CN of the certificates (required)")
	endpoint := fs.String("endpoint", "", "the AWS IoT data endpoint, HOST:PORT (port 8883) (required)")
	caPath := fs.String("ca", "", "PEM file of the CA that signs the endpoint's certificate, e.g. AmazonRootCA1.pem (default: the system roots)")
	serverName := fs.String("server-name", "", "the name to verify in the endpoint's certificate (default: the endpoint's host)")
	keyAlg := fs.String("key-algorithm", pki.KeyECP256, "algorithm of the new key: EC_P256, EC_P384 or RSA_2048")
	certTimeout := fs.Duration("certificate-timeout", time.Minute, "wait for the certificate after the CSR")
	confirmTimeout := fs.Duration("confirm-timeout", 30*time.Second, "wait for the cloud to accept the confirmation")
	attempts := fs.Int("connect-attempts", 6, "connections tried with a new certificate (AWS IoT refuses the first ones until Just-in-Time Registration has run)")
	retryDelay := fs.Duration("retry-delay", 2*time.Second, "delay before the second connection attempt, growing by as much each time")
	poll := fs.Duration("poll", 15*time.Minute, "run: ask for the next job at least this often")
	if code, done := tool.Parse(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return tool.UsageError(stderr, "unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" || *thing == "" || *endpoint == "" {
		return tool.UsageError(stderr, "%s needs -dir, -thing and -endpoint", cmd)
	}
	if err := wire.CheckThing(*thing); err != nil {
		return tool.UsageError(stderr, "-thing: %v", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if *caPath != "" {
		b, err := os.ReadFile(*caPath)
		if err != nil {
			fmt.Fprintf(stderr, "device-agent: %v\n", err)
			return 1
		}
		if !roots.AppendCertsFromPEM(b) {
			return tool.UsageError(stderr, "-ca %s holds no PEM certificate", *caPath)
		}
	}
	a := &Agent{Thing: *thing, Endpoint: *endpoint, ServerName: *serverName, RootCAs: roots, Dir: generations.Dir{Path: *dir},
		KeyAlgorithm: *keyAlg, CertificateTimeout: *certTimeout, ConfirmTimeout: *confirmTimeout,
		ConnectAttempts: *attempts, RetryDelay: *retryDelay, Log: stderr}
	if cmd == "rotate" {
		return exitCode(a.Rotate(ctx), stdout, stderr)
	}
	return a.runLoop(ctx, *poll, stderr)
}

func exitCode(err error, stdout, stderr io.Writer) int {
	var failed *FailedError
	switch {
	case err == nil:
		fmt.Fprintln(stdout, "device-agent: certificate rotated")
		return 0
	case errors.Is(err, ErrNoJob):
		fmt.Fprintln(stdout, "device-agent: no rotation job pending")
		return 3
	case errors.As(err, &failed):
		fmt.Fprintf(stderr, "device-agent: %v; the current certificate is kept\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "device-agent: %v\n", err)
	return 1
}

// runLoop rotates whenever a rotation job is pending: at start, on notify-next, and every poll.
func (a *Agent) runLoop(ctx context.Context, poll time.Duration, stderr io.Writer) int {
	for {
		err := a.Rotate(ctx)
		if ctx.Err() != nil {
			return 0
		}
		if err != nil && !errors.Is(err, ErrNoJob) {
			fmt.Fprintf(stderr, "device-agent: %v\n", err)
		}
		if err == nil {
			continue // another job may be queued
		}
		a.waitForJob(ctx, poll)
		if ctx.Err() != nil {
			return 0
		}
	}
}

// waitForJob listens on notify-next until a job is announced or poll passes.
func (a *Agent) waitForJob(ctx context.Context, poll time.Duration) {
	cur, err := a.Dir.Current()
	if err != nil {
		_ = sleep(ctx, poll)
		return
	}
	s, err := a.connect(ctx, cur)
	if err != nil {
		_ = sleep(ctx, min(poll, time.Minute))
		return
	}
	defer s.close()
	_, _ = s.await(ctx, poll, func(m message) bool {
		return m.topic == jobsTopic(a.Thing, "notify-next") && len(m.payload) > 0 && containsExecution(m.payload)
	})
}

func containsExecution(payload []byte) bool {
	return len(payload) > 0 && (string(payload) != "{}") && jsonHas(payload, "execution")
}

func initDir(d generations.Dir, certPath, keyPath string, stdout, stderr io.Writer) int {
	certPEM, err := os.ReadFile(certPath)
	if err == nil {
		_, err = pki.ParseCertificate(certPEM)
	}
	if err != nil {
		fmt.Fprintf(stderr, "device-agent: -cert: %v\n", err)
		return 1
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err == nil {
		_, err = pki.ParsePrivateKey(keyPEM)
	}
	if err != nil {
		fmt.Fprintf(stderr, "device-agent: -key: %v\n", err)
		return 1
	}
	cert, _ := pki.ParseCertificate(certPEM)
	gen := pki.CertificateID(cert.Raw)[:16]
	if err := d.Write(gen, map[string][]byte{generations.CertFile: certPEM, generations.KeyFile: keyPEM}); err != nil {
		fmt.Fprintf(stderr, "device-agent: %v\n", err)
		return 1
	}
	if err := d.Switch(gen); err != nil {
		fmt.Fprintf(stderr, "device-agent: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "device-agent: generation %s is current\n", gen)
	return 0
}
