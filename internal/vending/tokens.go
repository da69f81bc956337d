package vending

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The tokens secret holds only SHA-256 hashes of device tokens:
//
//	{"tokens":[{"id":"a1b2c3d4","sha256":"<64 hex>","thingPrefix":"sensor-","expires":"2026-12-01T00:00:00Z","singleUse":true}]}
//
// "expires" may be empty (no expiry); "thingPrefix" may be empty (any thing name).

// TokenRecord is one entry of the tokens secret.
type TokenRecord struct {
	ID          string `json:"id"`
	SHA256      string `json:"sha256"`
	ThingPrefix string `json:"thingPrefix"`
	Expires     string `json:"expires,omitempty"`
	SingleUse   bool   `json:"singleUse"`

	hash    []byte
	expires time.Time
}

// ExpiresAt returns the parsed expiry; the zero time means the token never expires.
func (r *TokenRecord) ExpiresAt() time.Time { return r.expires }

// TokenSet is the parsed content of the tokens secret.
type TokenSet struct {
	Tokens []*TokenRecord `json:"tokens"`
}

var (
	tokenIDRe     = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)
	thingPrefixRe = regexp.MustCompile(`^[a-zA-Z0-9:_-]{0,127}$`)
)

// ErrEmptyTokenSecret reports a secret value that holds no token set yet (empty, "{}" or a JSON object without
// "tokens"); a tool may start a new set in its place.
var ErrEmptyTokenSecret = errors.New("tokens secret holds no token set")

// ParseTokens parses and validates the tokens secret. An empty or placeholder value yields ErrEmptyTokenSecret
// together with an empty, usable set.
func ParseTokens(data []byte) (*TokenSet, error) {
	if strings.TrimSpace(string(data)) == "" {
		return &TokenSet{}, ErrEmptyTokenSecret
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, errors.New("tokens secret: value is not a JSON object")
	}
	if _, ok := probe["tokens"]; !ok {
		return &TokenSet{}, ErrEmptyTokenSecret
	}
	var s TokenSet
	if err := decodeStrict(data, &s); err != nil {
		return nil, fmt.Errorf("tokens secret: %s", oneLine(err.Error()))
	}
	ids := map[string]bool{}
	for i, r := range s.Tokens {
		if r == nil {
			return nil, fmt.Errorf("tokens secret: tokens[%d] is null", i)
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("tokens secret: tokens[%d]: %w", i, err)
		}
		if ids[r.ID] {
			return nil, fmt.Errorf("tokens secret: tokens[%d]: duplicate id %q", i, r.ID)
		}
		ids[r.ID] = true
	}
	return &s, nil
}

func (r *TokenRecord) validate() error {
	if !tokenIDRe.MatchString(r.ID) {
		return fmt.Errorf("id must match %s, got %q", tokenIDRe, r.ID)
	}
	h, err := hex.DecodeString(r.SHA256)
	if err != nil || len(h) != sha256.Size {
		return fmt.Errorf("sha256 of token %q must be 64 hex digits", r.ID)
	}
	r.hash = h
	if !thingPrefixRe.MatchString(r.ThingPrefix) {
		return fmt.Errorf("thingPrefix of token %q must match %s, got %q", r.ID, thingPrefixRe, r.ThingPrefix)
	}
	r.expires = time.Time{}
	if r.Expires != "" {
		t, err := time.Parse(time.RFC3339, r.Expires)
		if err != nil {
			return fmt.Errorf("expires of token %q must be RFC 3339, got %q", r.ID, r.Expires)
		}
		r.expires = t
	}
	return nil
}

// Marshal returns the JSON stored in the tokens secret.
func (s *TokenSet) Marshal() ([]byte, error) {
	out := TokenSet{Tokens: s.Tokens}
	if out.Tokens == nil {
		out.Tokens = []*TokenRecord{}
	}
	return json.Marshal(out)
}

// Errors of TokenSet.Lookup. None of them carries the token.
var (
	ErrUnknownToken = errors.New("unknown token")
	ErrExpiredToken = errors.New("expired token")
)

// Lookup finds the record whose hash matches token. Every stored hash is compared, in constant time, so the
// time taken does not depend on which record (if any) matches.
func (s *TokenSet) Lookup(token string, now time.Time) (*TokenRecord, error) {
	sum := sha256.Sum256([]byte(token))
	var found *TokenRecord
	for _, r := range s.Tokens {
		if subtle.ConstantTimeCompare(sum[:], r.hash) == 1 && found == nil {
			found = r
		}
	}
	if found == nil {
		return nil, ErrUnknownToken
	}
	if !found.expires.IsZero() && !now.Before(found.expires) {
		return found, ErrExpiredToken
	}
	return found, nil
}

// Add appends a record for token and returns it.
func (s *TokenSet) Add(id, token, thingPrefix string, expires time.Time, singleUse bool) (*TokenRecord, error) {
	for _, r := range s.Tokens {
		if r.ID == id {
			return nil, fmt.Errorf("token id %q already exists", id)
		}
	}
	r := &TokenRecord{ID: id, SHA256: HashToken(token), ThingPrefix: thingPrefix, SingleUse: singleUse}
	if !expires.IsZero() {
		r.Expires = expires.UTC().Format(time.RFC3339)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	s.Tokens = append(s.Tokens, r)
	return r, nil
}

// Remove deletes the record with the given id and reports whether it existed.
func (s *TokenSet) Remove(id string) bool {
	for i, r := range s.Tokens {
		if r.ID == id {
			s.Tokens = append(s.Tokens[:i], s.Tokens[i+1:]...)
			return true
		}
	}
	return false
}

// HashToken returns the lower-case hex SHA-256 of a token, as stored in the tokens secret.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a random token (32 bytes, base64url without padding) and a random short id (8 hex digits).
func NewToken() (id, token string, err error) {
	b := make([]byte, 36)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b[32:]), base64.RawURLEncoding.EncodeToString(b[:32]), nil
}

// ErrMalformedHeader reports an Authorization header that does not have the configured shape.
var ErrMalformedHeader = errors.New("malformed authorization header")

// ParseAuthHeader splits an Authorization header "<identifier> <token>" as the seed does: on single spaces into
// exactly n parts, the first equal to identifier. The token is the rest (parts 2..n joined by a space).
func ParseAuthHeader(header, identifier string, n int) (string, error) {
	if n < 2 || len(header) > 4096 {
		return "", ErrMalformedHeader
	}
	parts := strings.Split(header, " ")
	if len(parts) != n || parts[0] != identifier {
		return "", ErrMalformedHeader
	}
	for _, p := range parts[1:] {
		if p == "" {
			return "", ErrMalformedHeader
		}
	}
	return strings.Join(parts[1:], " "), nil
}
