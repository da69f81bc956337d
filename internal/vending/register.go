package vending

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/iotcert/iotcert/internal/naming"
)

// The registrations table (partition key "thingName", string) holds two kinds of items.
//
// Registration guard, key = the thing name:
//
//	thingName       the thing name
//	status          "PENDING" while a request registers the thing, "ROLLBACK" while what a failed or crashed
//	                request made still has to be removed, "COMPLETE" once the thing is registered, "REISSUE" while
//	                a key-mode retry after a lost answer replaces the certificate (newCertificateId/Arn record the
//	                new one until it is in place)
//	requestId       random id of the request that holds the guard (conditions on it make updates race-free)
//	tokenId         id of the token that registered the thing
//	thingTypeName   thing type used
//	certificateId   the certificate, recorded as soon as it exists (and kept when COMPLETE)
//	certificateArn  its ARN
//	thingPlanned    true once the certificate exists: the thing, its principal and the policy attachment are made
//	                next, so a takeover removes whatever of them exists
//	publicKeySha256 CSR mode: SHA-256 of the device's public key, so a retry after a lost answer gets the same
//	                certificate
//	createdAt       RFC 3339 time the guard was taken; completedAt when COMPLETE
//	leaseUntil      epoch seconds after which a PENDING or ROLLBACK guard may be taken over (its artefacts are
//	                removed first)
//	expiresAt       epoch seconds: DynamoDB's TTL attribute, set only while the guard records nothing to clean up
//
// Token state, key = "token#<token id>" (a thing name can never contain '#'), written in the same conditional
// write that spends the token, so a revoked, used or expired token is refused at once:
//
//	status          "USED" (single-use token spent), "REVOKED" (vend-token revoke), absent for a multi-use token
//	tokenId, usedBy (thing name), requestId, createdAt; uses and lastUsedBy for multi-use tokens; revokedAt
//	expiresAt       TTL of a REVOKED record: the token's own expiry, after which the token is refused anyway
//
// A failed registration deletes the items it wrote, so the thing name and the token can be used again; when AWS
// IoT still holds a part of it, the guard stays ROLLBACK and the next request for the name finishes the cleanup.
const (
	TableKey       = "thingName"
	StatusPending  = "PENDING"
	StatusRollback = "ROLLBACK"
	StatusComplete = "COMPLETE"
	StatusReissue  = "REISSUE"
	StatusUsed     = "USED"
	StatusRevoked  = "REVOKED"
	// TTLAttribute is the registrations table's time-to-live attribute (epoch seconds).
	TTLAttribute = "expiresAt"
)

// TokenItemKey returns the table key that records the use of a single-use token.
func TokenItemKey(tokenID string) string { return "token#" + tokenID }

// MaxBodyBytes is the largest registration body accepted (a CSR of a 4096-bit RSA key is under 2 KiB).
const MaxBodyBytes = 16 << 10

// MaxVersionLength bounds the "version" field; it becomes a thing attribute value.
const MaxVersionLength = 64

var (
	// ThingNameRe is AWS IoT's thing name rule.
	ThingNameRe = naming.ThingNameRE
	// versionRe is the ASCII part of AWS IoT's attribute value rule, which has no spaces.
	versionRe = regexp.MustCompile(`^[a-zA-Z0-9_.,@/:#=\[\]-]{1,64}$`)
)

// RegisterRequest is the body of POST /register. CSR is optional: with it the private key stays on the device.
type RegisterRequest struct {
	ThingName string `json:"thingName"`
	Version   string `json:"version"`
	CSR       string `json:"csr,omitempty"`
}

// BodyError is a client error in a registration body; its message is safe to return and to log.
type BodyError struct{ Msg string }

func (e *BodyError) Error() string { return e.Msg }

// ErrBodyTooLarge reports a body over MaxBodyBytes.
var ErrBodyTooLarge = &BodyError{Msg: fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)}

// ParseRegisterBody parses a registration body strictly: one JSON object, only the known fields, each a string,
// thingName per AWS IoT rules, version a non-empty attribute value of at most 64 characters. Every error is a
// *BodyError; none echoes the CSR.
func ParseRegisterBody(body []byte) (*RegisterRequest, error) {
	if len(body) > MaxBodyBytes {
		return nil, ErrBodyTooLarge
	}
	var r RegisterRequest
	if err := decodeStrict(body, &r); err != nil {
		return nil, &BodyError{Msg: "invalid JSON body: " + describeJSONError(err)}
	}
	if r.ThingName == "" {
		return nil, &BodyError{Msg: "thingName is required"}
	}
	if !ThingNameRe.MatchString(r.ThingName) {
		return nil, &BodyError{Msg: fmt.Sprintf("thingName must match %s, got %q", ThingNameRe, truncate(r.ThingName, 140))}
	}
	if r.Version == "" {
		return nil, &BodyError{Msg: "version is required"}
	}
	if !versionRe.MatchString(r.Version) {
		return nil, &BodyError{Msg: fmt.Sprintf("version must be 1 to %d characters of [a-zA-Z0-9_.,@/:#=[]-], got %q",
			MaxVersionLength, truncate(r.Version, 80))}
	}
	if strings.TrimSpace(r.CSR) == "" && r.CSR != "" {
		return nil, &BodyError{Msg: "csr must be a PEM certificate signing request"}
	}
	return &r, nil
}

// describeJSONError turns a decoding error into a short message that does not quote the input.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s must be a %s", typ.Field, typ.Type)
		}
		return "body must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + truncate(strings.TrimPrefix(err.Error(), "json: unknown field "), 80)
	default:
		return truncate(err.Error(), 120)
	}
}

// RegisterResponse is the 200 body of POST /register, in the seed's shape. In CSR mode KeyPair has no PrivateKey.
type RegisterResponse struct {
	CertificateData CertificateData `json:"certificateData"`
	RootCA          string          `json:"rootCa"`
}

// CertificateData carries the certificate and its key pair. CertificateID and CertificateARN are additions to the
// seed's shape.
type CertificateData struct {
	PEM            string  `json:"pem"`
	KeyPair        KeyPair `json:"key_pair"`
	CertificateID  string  `json:"certificateId,omitempty"`
	CertificateARN string  `json:"certificateArn,omitempty"`
}

// KeyPair holds PEM keys; PrivateKey is omitted when the device generated its own key.
type KeyPair struct {
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key,omitempty"`
}

// ErrorResponse is the seed's error body.
type ErrorResponse struct {
	Status bool   `json:"status"`
	Error  string `json:"error"`
}

// Seed messages kept verbatim.
const (
	MsgThingExists = "Thing exists in the AWS IoT Account, exiting..."
	MsgInProgress  = "registration already in progress"
)

// Token refusals of POST /register (403).
const (
	MsgTokenUsed    = "token already used"
	MsgTokenRevoked = "token revoked"
	MsgTokenExpired = "token expired"
)
