// Package wire is what a device and the cloud exchange in device-certificate rotation (internal/devrot): topics,
// messages, the job document and the checks of the values they carry. The device agent uses it without the AWS SDK.
//
// The exchange, for a thing T and a job J (each message is JSON, QoS 1):
//
//	device → iotcert/T/rotation/csr          {"jobId": J, "csr": "<PEM>"}          over the current certificate
//	cloud  → iotcert/T/rotation/certificate  {"jobId": J, "status": "issued", "certificatePem": "...", "certificateId": "..."}
//	                                         or {"jobId": J, "status": "refused", "reason": "..."}
//	device → iotcert/T/rotation/confirm      {"jobId": J}                            over the NEW certificate
//	cloud  → iotcert/T/rotation/certificate  {"jobId": J, "status": "confirmed", "certificateId": "..."}
//
// The cloud reads who sent a message from the IoT rule's principal() (the certificate id of the connection), never
// from the payload: the rules select principal(), topic(2) and the named payload fields only.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/iotcert/iotcert/internal/naming"
)

// TemplateID is the AWS IoT job template of rotation jobs; jobs made from it have ids starting with JobIDPrefix.
const (
	TemplateID  = "iotcert-rotate-certificate"
	JobIDPrefix = "iotcert-rotate-"
	// Operation names the job document's operation.
	Operation = "iotcert-rotate-certificate"
)

// Topic levels of the rotation exchange; the thing name is the second level.
const (
	topicPrefix = "iotcert/"
	csrSuffix   = "/rotation/csr"
	certSuffix  = "/rotation/certificate"
	confSuffix  = "/rotation/confirm"
)

// CSRTopic is where thing publishes its CSR.
func CSRTopic(thing string) string { return topicPrefix + thing + csrSuffix }

// CertificateTopic is where the cloud answers thing.
func CertificateTopic(thing string) string { return topicPrefix + thing + certSuffix }

// ConfirmTopic is where thing confirms over its new certificate.
func ConfirmTopic(thing string) string { return topicPrefix + thing + confSuffix }

// Rule topic filters (IoT SQL FROM clauses).
const (
	CSRTopicFilter     = "iotcert/+/rotation/csr"
	ConfirmTopicFilter = "iotcert/+/rotation/confirm"
	// JobEventsTopicFilter matches AWS IoT's job execution events
	// (https://docs.aws.amazon.com/iot/latest/developerguide/events-jobs.html).
	JobEventsTopicFilter = "$aws/events/jobExecution/+/+"
)

// Rule SQL. principal() is the certificate id of a certificate-authenticated connection
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html#iot-function-principal); the
// payload's own fields are selected by name, so a payload cannot supply "principal" or "thingName".
const (
	CSRRuleSQL     = "SELECT principal() AS principal, topic(2) AS thingName, jobId, csr FROM '" + CSRTopicFilter + "'"
	ConfirmRuleSQL = "SELECT principal() AS principal, topic(2) AS thingName, jobId FROM '" + ConfirmTopicFilter + "'"
	// The job-events rule names the event's fields too: a message on that topic that is not AWS's (no page says a
	// client cannot publish there) cannot pose as a confirmation (principal) or a sweep.
	JobEventsRuleSQL = "SELECT eventType, operation, jobId, thingArn, status FROM '" + JobEventsTopicFilter + "' WHERE startswith(jobId, '" + JobIDPrefix + "')"
)

// Document is the rotation job's document. The topics are those of the executing thing: "${thingName}" stands for
// it, and the device fills in its own name, never one from elsewhere.
type Document struct {
	Operation        string `json:"operation"`
	Version          string `json:"version"`
	CSRTopic         string `json:"csrTopic"`
	CertificateTopic string `json:"certificateTopic"`
	ConfirmTopic     string `json:"confirmTopic"`
}

// ThingVar is the placeholder of the thing name in the document's topics.
const ThingVar = "${thingName}"

// JobDocument is the document of the job template.
func JobDocument() Document {
	return Document{Operation: Operation, Version: "1", CSRTopic: CSRTopic(ThingVar),
		CertificateTopic: CertificateTopic(ThingVar), ConfirmTopic: ConfirmTopic(ThingVar)}
}

// JobDocumentJSON is JobDocument as the template carries it.
func JobDocumentJSON() string {
	b, _ := json.Marshal(JobDocument())
	return string(b)
}

// CheckDocument accepts a job document only when it is exactly this package's rotation document: a device runs no
// other operation and publishes to no other topic.
func CheckDocument(raw json.RawMessage) error {
	var d Document
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("job document is not a rotation document: %w", err)
	}
	if d != JobDocument() {
		return fmt.Errorf("job document is not the rotation document (operation %q, version %q)", d.Operation, d.Version)
	}
	return nil
}

// Messages.

// CSRMessage is what a device publishes on its CSR topic.
type CSRMessage struct {
	JobID string `json:"jobId"`
	CSR   string `json:"csr"`
}

// ConfirmMessage is what a device publishes on its confirm topic, over the new certificate.
type ConfirmMessage struct {
	JobID string `json:"jobId"`
}

// Statuses of a CertificateMessage.
const (
	StatusIssued    = "issued"
	StatusRefused   = "refused"
	StatusConfirmed = "confirmed"
)

// CertificateMessage is what the cloud publishes on a thing's certificate topic.
type CertificateMessage struct {
	JobID          string `json:"jobId"`
	Status         string `json:"status"`
	CertificatePEM string `json:"certificatePem,omitempty"`
	CertificateID  string `json:"certificateId,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

var (
	jobIDRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	certIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// CheckJobID accepts an AWS IoT job id ([a-zA-Z0-9_-]{1,64}) that starts with JobIDPrefix.
func CheckJobID(id string) error {
	if !jobIDRE.MatchString(id) || !strings.HasPrefix(id, JobIDPrefix) {
		return fmt.Errorf("job id %q is not a rotation job id (%s followed by letters, digits, _ or -, at most 64 characters)", clip(id), JobIDPrefix)
	}
	return nil
}

// CheckThing accepts a thing name that AWS IoT accepts and that fits a certificate's common name.
func CheckThing(name string) error {
	if err := naming.ThingName(name); err != nil {
		return err
	}
	if len(name) > 64 {
		return fmt.Errorf("thing name %q is longer than the 64 characters of a certificate common name", clip(name))
	}
	return nil
}

// CheckCertificateID accepts an AWS IoT certificate id: 64 lowercase hexadecimal characters.
func CheckCertificateID(id string) error {
	if !certIDRE.MatchString(id) {
		return fmt.Errorf("%q is not a certificate id", clip(id))
	}
	return nil
}

// NewJobID returns a rotation job id: JobIDPrefix, the target's kind and a random suffix.
func NewJobID(kind string, random []byte) string {
	return JobIDPrefix + kind + "-" + hex.EncodeToString(random)
}

// CSRDigest is the hex SHA-256 of a canonical PEM CSR.
func CSRDigest(canonical []byte) string {
	s := sha256.Sum256(canonical)
	return hex.EncodeToString(s[:])
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
