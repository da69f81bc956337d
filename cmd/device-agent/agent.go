package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/generations"
	"github.com/iotcert/iotcert/internal/pki"
)

// Agent rotates one device's certificate when its rotation job comes.
type Agent struct {
	Thing      string
	Endpoint   string // host:port of the AWS IoT data endpoint (MQTT over TLS, 8883)
	ServerName string // default: the endpoint's host
	RootCAs    *x509.CertPool
	Dir        generations.Dir
	// KeyAlgorithm of the new key (pki.GenerateKey). Default EC_P256.
	KeyAlgorithm string
	// CertificateTimeout bounds the wait for the certificate after the CSR; the CSR is sent again at each third.
	CertificateTimeout time.Duration
	// ConfirmTimeout bounds the wait for the cloud to accept the confirmation; sent again at each third.
	ConfirmTimeout time.Duration
	// ConnectAttempts and RetryDelay (growing linearly) for a connection refused, as a new Private CA certificate is
	// until Just-in-Time Registration activates it.
	ConnectAttempts int
	RetryDelay      time.Duration
	Log             io.Writer
}

// Phases of a rotation, kept in the state file so that a restart resumes where the agent stopped.
const (
	phaseCSR       = "csr"       // new key and CSR saved; the certificate is awaited
	phaseWritten   = "written"   // certificate received and written as a new generation; not yet confirmed
	phaseConfirmed = "confirmed" // the cloud accepted the confirmation over the new certificate: the old one is retired
	phaseSwitched  = "switched"  // current points at the new generation; the job is reported SUCCEEDED next
)

// state is the rotation in progress, in <dir>/rotation-state.json; the new key waits in <dir>/rotation-key.pem.
type state struct {
	JobID  string `json:"jobId"`
	Phase  string `json:"phase"`
	CSR    string `json:"csr"`
	Gen    string `json:"generation,omitempty"`
	CertID string `json:"certificateId,omitempty"`
}

const (
	stateFile = "rotation-state.json"
	keyFile   = "rotation-key.pem"
)

// ErrNoJob means no rotation job is pending for the thing.
var ErrNoJob = errors.New("no rotation job pending")

// FailedError is a rotation reported FAILED: the old certificate stays in use.
type FailedError struct{ Reason string }

func (e *FailedError) Error() string { return "rotation failed: " + e.Reason }

func (a *Agent) logf(format string, args ...any) {
	if a.Log != nil {
		fmt.Fprintf(a.Log, "device-agent: "+format+"\n", args...)
	}
}

func (a *Agent) loadState() (*state, error) {
	b, err := os.ReadFile(filepath.Join(a.Dir.Path, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rotation state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || wire.CheckJobID(st.JobID) != nil {
		return nil, fmt.Errorf("rotation state %s is damaged: remove it to start over", stateFile)
	}
	return &st, nil
}

func (a *Agent) saveState(st *state) error {
	b, _ := json.Marshal(st)
	return generations.WriteFileAtomic(filepath.Join(a.Dir.Path, stateFile), b)
}

// clear forgets a finished or abandoned rotation: state, pending key, and the new generation unless it is live.
func (a *Agent) clear(st *state) {
	if st.Gen != "" {
		if cur, _ := a.Dir.Current(); cur != st.Gen {
			_ = a.Dir.Remove(st.Gen)
		}
	}
	_ = os.Remove(filepath.Join(a.Dir.Path, keyFile))
	_ = os.Remove(filepath.Join(a.Dir.Path, stateFile))
}

// Rotate runs, or resumes, one rotation: ErrNoJob when none is pending, a *FailedError when it was reported
// FAILED, nil when it SUCCEEDED.
func (a *Agent) Rotate(ctx context.Context) error {
	cur, err := a.Dir.Current()
	if err != nil {
		return fmt.Errorf("generation directory %s: %w", a.Dir.Path, err)
	}
	st, err := a.loadState()
	if err != nil {
		return err
	}
	var s *session
	defer func() { s.close() }()

	if st == nil || st.Phase == phaseCSR {
		if s, err = a.connect(ctx, cur); err != nil {
			return err
		}
		job, doc, err := a.startNext(ctx, s)
		if err != nil {
			return err
		}
		if st != nil && job != st.JobID {
			a.logf("job %s of the saved rotation is no longer in progress: its new key is discarded", st.JobID)
			a.clear(st)
			st = nil
		}
		if job == "" {
			return ErrNoJob
		}
		if err := wire.CheckDocument(doc); err != nil {
			return a.fail(ctx, s, &state{JobID: job}, err.Error())
		}
		if st == nil {
			if st, err = a.newKey(job); err != nil {
				return a.fail(ctx, s, &state{JobID: job}, err.Error())
			}
		}
		if err := a.requestCertificate(ctx, s, st); err != nil {
			return a.fail(ctx, s, st, err.Error())
		}
	}
	if st.Phase == phaseWritten {
		s.close()
		s = nil
		if s, err = a.connect(ctx, st.Gen); err != nil {
			return a.fail(ctx, nil, st, "the new certificate cannot connect: "+err.Error())
		}
		if err := a.confirm(ctx, s, st); err != nil {
			s.close()
			s = nil
			return a.fail(ctx, nil, st, err.Error())
		}
	}
	// From here on the cloud has retired the old certificate: the agent never goes back, it retries.
	if st.Phase == phaseConfirmed {
		if err := a.Dir.Switch(st.Gen); err != nil {
			return err
		}
		st.Phase = phaseSwitched
		if err := a.saveState(st); err != nil {
			return err
		}
		a.logf("generation %s is current", st.Gen)
	}
	if st.Phase == phaseSwitched {
		if s == nil {
			if s, err = a.connect(ctx, st.Gen); err != nil {
				return err
			}
		}
		_, err := s.jobsRequest(ctx, st.JobID+"/update", map[string]any{
			"status": "SUCCEEDED", "statusDetails": map[string]string{"certificateId": st.CertID},
		}, 30*time.Second)
		var rej *jobsRejected
		if err != nil && !(errors.As(err, &rej) && rej.Code == "InvalidStateTransition") {
			return fmt.Errorf("report job %s SUCCEEDED: %w", st.JobID, err)
		}
		a.logf("job %s SUCCEEDED: now on certificate %s", st.JobID, st.CertID)
		a.clear(st)
		return nil
	}
	return fmt.Errorf("rotation state has unknown phase %q", st.Phase)
}

// startNext asks for the next pending job (start-next): its id and document, or "" when there is none.
func (a *Agent) startNext(ctx context.Context, s *session) (string, json.RawMessage, error) {
	b, err := s.jobsRequest(ctx, "start-next", map[string]any{}, 30*time.Second)
	if err != nil {
		return "", nil, err
	}
	var out struct {
		Execution *struct {
			JobID       string          `json:"jobId"`
			Status      string          `json:"status"`
			JobDocument json.RawMessage `json:"jobDocument"`
		} `json:"execution"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", nil, fmt.Errorf("start-next answer: %w", err)
	}
	if out.Execution == nil {
		return "", nil, nil
	}
	if err := wire.CheckJobID(out.Execution.JobID); err != nil {
		return "", nil, fmt.Errorf("next job is not a rotation job: %w", err)
	}
	return out.Execution.JobID, out.Execution.JobDocument, nil
}

func (a *Agent) newKey(job string) (*state, error) {
	key, err := pki.GenerateKey(a.KeyAlgorithm)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewDeviceCSR(key, a.Thing)
	if err != nil {
		return nil, err
	}
	// The key is saved before the CSR leaves: a restart sends the same CSR and gets the same certificate.
	if err := generations.WriteFileAtomic(filepath.Join(a.Dir.Path, keyFile), keyPEM); err != nil {
		return nil, err
	}
	st := &state{JobID: job, Phase: phaseCSR, CSR: string(csr)}
	return st, a.saveState(st)
}

func (a *Agent) pendingKey() (crypto.Signer, []byte, error) {
	keyPEM, err := os.ReadFile(filepath.Join(a.Dir.Path, keyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read the new key: %w", err)
	}
	key, err := pki.ParsePrivateKey(keyPEM)
	return key, keyPEM, err
}

// requestCertificate publishes the CSR and waits for the certificate, then writes the new generation.
func (a *Agent) requestCertificate(ctx context.Context, s *session, st *state) error {
	key, keyPEM, err := a.pendingKey()
	if err != nil {
		return err
	}
	var m wire.CertificateMessage
	if err := a.exchange(ctx, s, wire.CSRTopic(a.Thing), wire.CSRMessage{JobID: st.JobID, CSR: st.CSR}, a.CertificateTimeout, st.JobID, &m); err != nil {
		return fmt.Errorf("no certificate: %w", err)
	}
	if m.Status != wire.StatusIssued {
		return fmt.Errorf("certificate refused: %s", m.Reason)
	}
	chain, err := pki.ParseCertificate([]byte(m.CertificatePEM))
	if err != nil {
		return fmt.Errorf("certificate received: %w", err)
	}
	switch {
	case pki.CertificateID(chain.Raw) != m.CertificateID:
		return errors.New("certificate received does not have the id it was sent with")
	case chain.Subject.CommonName != a.Thing:
		return fmt.Errorf("certificate received names %q, not this thing", chain.Subject.CommonName)
	case !samePublicKey(chain.PublicKey, key.Public()):
		return errors.New("certificate received is not for the new key")
	}
	st.CertID, st.Gen = m.CertificateID, m.CertificateID[:16]
	if err := a.Dir.Write(st.Gen, map[string][]byte{generations.CertFile: []byte(m.CertificatePEM), generations.KeyFile: keyPEM}); err != nil {
		return err
	}
	st.Phase = phaseWritten
	a.logf("certificate %s written as generation %s", st.CertID, st.Gen)
	return a.saveState(st)
}

// confirm publishes the confirmation over the new certificate's connection and waits for the cloud to accept it.
func (a *Agent) confirm(ctx context.Context, s *session, st *state) error {
	var m wire.CertificateMessage
	if err := a.exchange(ctx, s, wire.ConfirmTopic(a.Thing), wire.ConfirmMessage{JobID: st.JobID}, a.ConfirmTimeout, st.JobID, &m); err != nil {
		return fmt.Errorf("confirmation not accepted: %w", err)
	}
	if m.Status != wire.StatusConfirmed || m.CertificateID != st.CertID {
		return fmt.Errorf("confirmation refused: %s", m.Reason)
	}
	st.Phase = phaseConfirmed
	return a.saveState(st)
}

// exchange publishes req on topic and waits for an answer about job on the certificate topic, publishing again at
// each third of the timeout (the functions answer a repeated request with the same answer).
func (a *Agent) exchange(ctx context.Context, s *session, topic string, req any, timeout time.Duration, job string, out *wire.CertificateMessage) error {
	for try := 0; try < 3; try++ {
		if err := s.publish(ctx, topic, req); err != nil {
			return err
		}
		_, err := s.await(ctx, timeout/3, func(m message) bool {
			var c wire.CertificateMessage
			if m.topic != wire.CertificateTopic(a.Thing) || json.Unmarshal(m.payload, &c) != nil || c.JobID != job {
				return false
			}
			if topic == wire.ConfirmTopic(a.Thing) && c.Status == wire.StatusIssued {
				return false // the certificate sent again for a repeated CSR
			}
			*out = c
			return true
		})
		if !errors.Is(err, errTimeout) {
			return err
		}
	}
	return fmt.Errorf("no answer on %s within %s", wire.CertificateTopic(a.Thing), timeout)
}

// fail reports the job FAILED with the reason over the current (old) certificate and forgets the rotation; the
// old pair stays live.
func (a *Agent) fail(ctx context.Context, s *session, st *state, reason string) error {
	a.logf("job %s failed: %s", st.JobID, reason)
	if s == nil {
		cur, err := a.Dir.Current()
		if err == nil {
			s, err = a.connect(ctx, cur)
		}
		if err != nil {
			return fmt.Errorf("%w (and the report failed: %v)", &FailedError{Reason: reason}, err)
		}
		defer s.close()
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	_, err := s.jobsRequest(ctx, st.JobID+"/update", map[string]any{"status": "FAILED", "statusDetails": map[string]string{"reason": reason}}, 30*time.Second)
	var rej *jobsRejected
	if err != nil && !errors.As(err, &rej) {
		return fmt.Errorf("%w (and the report failed: %v)", &FailedError{Reason: reason}, err)
	}
	a.clear(st)
	return &FailedError{Reason: reason}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	da, err1 := x509.MarshalPKIXPublicKey(a)
	db, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(da, db)
}

func certificateTopic(thing string) string { return wire.CertificateTopic(thing) }
