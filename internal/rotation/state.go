package rotation

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

// State is what one host's rotation carries from step to step: every per-host function takes the State and returns
// it with its own fields filled, so the state machine passes each task's result to the next task unchanged.
type State struct {
	// HostID is the Map item: the only field the selection gives.
	HostID string `json:"hostID"`
	// Run is the rotation run's execution id (the Map's ItemSelector adds it): the owner of the host's lease.
	Run string `json:"run,omitempty"`
	// CommandID of the last SendCommand (phase 1, then phase 2).
	CommandID string `json:"commandId,omitempty"`
	// Output is the standard output of the last finished command (phase 1's CSR).
	Output string `json:"output,omitempty"`
	// CSR is the checked CSR, PEM.
	CSR string `json:"csr,omitempty"`
	// IdempotencyToken of IssueCertificate, derived from the CSR.
	IdempotencyToken string `json:"idempotencyToken,omitempty"`
	// CertificateARN of the issued certificate.
	CertificateARN string `json:"certificateArn,omitempty"`
	// Issued is the CA's issuance count after this host's certificate (0 when the certificate was reused or the
	// count could not be kept): the workflow publishes it for the quota alarm.
	Issued int64 `json:"issued"`
	// Certificate and Chain, PEM, once issued.
	Certificate string `json:"certificate,omitempty"`
	Chain       string `json:"chain,omitempty"`
	// Serial of the certificate in upper-case hex (the sample's format) and its expiry (RFC 3339).
	Serial   string `json:"serial,omitempty"`
	NotAfter string `json:"notAfter,omitempty"`
	// Reused is true when the issue step found the certificate already issued for this CSR.
	Reused bool `json:"reused,omitempty"`
}

// Error names a step failure for the state machine: Lambda reports Name as the errorType its Retry and Catch match.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// Error names, the contract with the state machine's Retry and Catch clauses.
const (
	// ErrHostInvalid: the host item is missing or one of its values breaks the patterns. Not retryable.
	ErrHostInvalid = "HostInvalid"
	// ErrCommandInProgress: the host command has not finished. Retry (the state machine's wait).
	ErrCommandInProgress = "CommandInProgress"
	// ErrCommandFailed: the host command failed, timed out or could not be delivered (host offline). Not retryable.
	ErrCommandFailed = "CommandFailed"
	// ErrCSRRejected: the host's CSR is malformed, names another host or has a weak key. Not retryable.
	ErrCSRRejected = "CSRRejected"
	// ErrCertificateInProgress: Private CA has not finished issuing. Retry.
	ErrCertificateInProgress = "CertificateInProgress"
	// ErrIssuanceFailed: Private CA refused or failed the certificate. Not retryable.
	ErrIssuanceFailed = "IssuanceFailed"
	// ErrThrottled: an AWS API still throttled after the SDK's own retries. Retry with back-off.
	ErrThrottled = "Throttled"
	// ErrHostBusy: another run holds the host's lease (it is rotating the host). The host's execution ends quietly.
	ErrHostBusy = "HostBusy"
)

func stepErr(name, format string, args ...any) *Error {
	return &Error{Name: name, Message: fmt.Sprintf(format, args...)}
}

// LambdaError turns a step's *Error into the error value aws-lambda-go reports with errorType = Name; any other
// error is returned unchanged (its errorType is its Go type's name, which the state machine catches as
// States.TaskFailed).
func LambdaError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return messages.InvokeResponse_Error{Type: e.Name, Message: e.Message}
	}
	return err
}

// IdempotencyToken is the 36-character IssueCertificate token for a CSR (DER): the hex SHA-256 of the CSR, cut to
// the API's 36-character limit. The same CSR gives the same token, so a retried issue returns the same certificate
// for as long as Private CA remembers the token (5 minutes).
func IdempotencyToken(csrDER []byte) string {
	sum := sha256.Sum256(csrDER)
	return hex.EncodeToString(sum[:])[:36]
}

// Schedule decides when a certificate is renewed: at Fraction of its lifetime, moved by up to ±Jitter of the
// lifetime so that a fleet rotated together spreads out again. Jitter is derived from the serial number, so a
// recorded renewAt can be recomputed and tested.
type Schedule struct {
	// Fraction of the lifetime at which renewal is due. Default 2/3: a 7-day certificate renews after about 4.7
	// days, leaving about 2.3 days (four or five scheduled runs twelve hours apart) before it expires.
	Fraction float64
	// Jitter as a fraction of the lifetime. Default 1/24 (±7 hours for 7 days).
	Jitter float64
}

// DefaultSchedule renews at two thirds of the lifetime, ±1/24 of it.
var DefaultSchedule = Schedule{Fraction: 2.0 / 3.0, Jitter: 1.0 / 24.0}

// Validate checks that renewal falls inside the lifetime whatever the jitter.
func (s Schedule) Validate() error {
	if s.Fraction <= 0 || s.Fraction >= 1 {
		return fmt.Errorf("renewal fraction %v is not between 0 and 1", s.Fraction)
	}
	if s.Jitter < 0 || s.Fraction-s.Jitter <= 0 || s.Fraction+s.Jitter >= 1 {
		return fmt.Errorf("renewal jitter %v moves renewal %v outside the certificate's lifetime", s.Jitter, s.Fraction)
	}
	return nil
}

// RenewAt is when the certificate valid from notBefore to notAfter with the given serial is due for renewal.
func (s Schedule) RenewAt(notBefore, notAfter time.Time, serial string) time.Time {
	life := notAfter.Sub(notBefore)
	h := fnv.New64a()
	_, _ = h.Write([]byte(serial))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h.Sum64())
	u := float64(binary.BigEndian.Uint64(b[:])>>11) / float64(1<<53) // uniform in [0, 1)
	offset := s.Fraction + s.Jitter*(2*u-1)
	return notBefore.Add(time.Duration(offset * float64(life))).UTC().Truncate(time.Second)
}

// Table attributes of the host inventory (the sample's names first).
const (
	AttrHostID          = "hostID"
	AttrCertPath        = "certPath"
	AttrKeyPath         = "keyPath"
	AttrCACertPath      = "cacertPath"
	AttrSigningHelper   = "signinghelperPath"
	AttrSerial          = "serial"
	AttrExpiry          = "expiry"
	AttrRenewAt         = "renewAt"
	AttrRenewShard      = "renewShard"
	AttrStatus          = "status"
	AttrLastError       = "lastError"
	AttrLastRotation    = "lastRotation"
	AttrPendingCSRHash  = "pendingCsrHash"
	AttrPendingCertARN  = "pendingCertificateArn"
	AttrPendingIssuedAt = "pendingIssuedAt"
	AttrLeaseOwner      = "leaseOwner"
	AttrLeaseUntil      = "leaseUntil"
	ExpiryLayout        = "2006-01-02 15:04:05" // the sample's expiry format
	RenewAtLayout       = time.RFC3339          // sortable: "2026-12-01T03:15:00Z", always UTC
	StatusRotated       = "ROTATED"
	StatusFailed        = "FAILED"
	StatusPending       = "PENDING"
	RenewIndexName      = "renewAt-index"
	// IssuanceCounterKey is the hostID of the item that counts the certificates this CA issued (it does not match
	// the host-id pattern, so no host can collide with it, and it has no renewAt, so it is never selected).
	IssuanceCounterKey = "#pca-issued"
	// ManifestPrefix holds the selections the distributed Map reads, ResultsPrefix what it writes; the stack's
	// grants name the same prefixes.
	ManifestPrefix = "manifests/"
	ResultsPrefix  = "results/"
	// LeaseDuration bounds a host's lease: longer than one host's rotation can take (two commands of at most
	// 5 minutes of polls each, issuance and its retries), so only a run that died leaves a lease to expire.
	LeaseDuration      = 2 * time.Hour
	DefaultRenewShards = 16
	MaxRenewShards     = 256
)

// RenewShard spreads hosts over the shards of the renewAt index (partition key renewShard, a number in
// [0, shards), sort key renewAt), so that no one index partition holds the whole fleet.
func RenewShard(hostID string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(hostID))
	return int(h.Sum32() % uint32(shards))
}
