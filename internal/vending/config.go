// Package vending holds the configuration, token and request code shared by the certificate vending API
// (its token authorizer and registration functions), its command-line tools, and the stack that validates the
// configuration at synth time. It does no I/O.
package vending

import (
	"bytes"
	"embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/iotcert/iotcert/internal/naming"
)

// DefaultPrefix is the seed's configuration prefix: the parameter lives at /<prefix>/<env>/config-parameters/appConfig.
const DefaultPrefix = "multa-cvm"

// ConfigParameterName is the name of the configuration parameter below the APP_CONFIG_PATH path.
const ConfigParameterName = "appConfig"

// ConfigPath returns the seed's APP_CONFIG_PATH for a prefix and an environment: /<prefix>/<env>/config-parameters.
func ConfigPath(prefix, env string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return "/" + prefix + "/" + env + "/config-parameters"
}

// ConfigParameter returns the full name of the configuration parameter for a prefix and an environment.
func ConfigParameter(prefix, env string) string {
	return ConfigPath(prefix, env) + "/" + ConfigParameterName
}

// Attribute names the registration function knows how to fill. The seed fills exactly these two.
const (
	AttributeCreationDate = "creationDate"
	AttributeVersion      = "version"
)

// Config is the validated application configuration (the seed's appConfig JSON).
type Config struct {
	// RootCA holds the PEM the API returns as rootCa, and a backup PEM.
	RootCA RootCA
	// Policies maps a thing type name to the name of the IoT policy attached to its certificates.
	Policies map[string]string
	// Attributes maps a thing type name to the attribute names set on its things, in configuration order.
	Attributes map[string][]string
	// TokenPayloadLength is the number of space-separated parts of the Authorization header (2 in the seed).
	TokenPayloadLength int
	// TokenIdentifier is the first part of the Authorization header ("DeviceToken" in the seed).
	TokenIdentifier string
}

// RootCA holds the two root certificates of AWS_ROOT_CA, as PEM.
type RootCA struct {
	Preferred string
	Backup    string
}

//go:embed rootca/*.pem
var rootCAFiles embed.FS

// knownRootCAs maps the seed's root CA URLs to the certificates bundled in the binary, so that no request
// depends on an outbound fetch.
var knownRootCAs = map[string]string{
	"https://www.amazontrust.com/repository/AmazonRootCA1.pem": "rootca/AmazonRootCA1.pem",
	"https://www.amazontrust.com/repository/AmazonRootCA3.pem": "rootca/AmazonRootCA3.pem",
}

// AmazonRootCA returns the bundled PEM of Amazon Root CA n (1 or 3).
func AmazonRootCA(n int) (string, error) {
	b, err := rootCAFiles.ReadFile(fmt.Sprintf("rootca/AmazonRootCA%d.pem", n))
	if err != nil {
		return "", fmt.Errorf("no bundled Amazon Root CA %d", n)
	}
	return string(b), nil
}

var (
	thingTypeRe  = naming.ThingNameRE // AWS IoT's thing type names follow the thing name rule
	policyNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

// rawConfig mirrors the seed's JSON. Numbers and strings are both accepted where the seed used a string.
type rawConfig struct {
	AWSRootCA   *rawRootCA            `json:"AWS_ROOT_CA"`
	Policies    map[string]*rawName   `json:"POLICIES"`
	Attributes  map[string][]*rawName `json:"ATTRIBUTES"`
	TokenLength json.RawMessage       `json:"DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH"`
	TokenIdent  *string               `json:"DEVICE_AUTHORIZER_TOKEN_IDENTIFIER"`
	ValidTokens json.RawMessage       `json:"DEVICE_AUTHORIZER_VALID_TOKENS"`
}

type rawRootCA struct {
	Preferred *string `json:"PREFERRED"`
	Backup    *string `json:"BACKUP"`
}

type rawName struct {
	Name *string `json:"name"`
}

// ParseConfig parses and validates the seed's appConfig JSON. Errors are one line and name the key and the bad
// value (never the value of DEVICE_AUTHORIZER_VALID_TOKENS, which would be a plaintext token).
func ParseConfig(data []byte) (*Config, error) {
	var raw rawConfig
	if err := decodeStrict(data, &raw); err != nil {
		return nil, fmt.Errorf("vending config: %s", oneLine(err.Error()))
	}
	c := &Config{Policies: map[string]string{}, Attributes: map[string][]string{}}

	if raw.AWSRootCA == nil {
		return nil, errors.New("vending config: AWS_ROOT_CA is required")
	}
	if raw.AWSRootCA.Preferred == nil {
		return nil, errors.New("vending config: AWS_ROOT_CA.PREFERRED is required")
	}
	var err error
	if c.RootCA.Preferred, err = resolveRootCA("AWS_ROOT_CA.PREFERRED", *raw.AWSRootCA.Preferred); err != nil {
		return nil, err
	}
	if raw.AWSRootCA.Backup != nil && *raw.AWSRootCA.Backup != "" {
		if c.RootCA.Backup, err = resolveRootCA("AWS_ROOT_CA.BACKUP", *raw.AWSRootCA.Backup); err != nil {
			return nil, err
		}
	}

	if len(raw.Policies) == 0 {
		return nil, errors.New("vending config: POLICIES must name the IoT policy of at least one thing type")
	}
	for _, typ := range sortedKeys(raw.Policies) {
		if !thingTypeRe.MatchString(typ) {
			return nil, fmt.Errorf("vending config: POLICIES: thing type name must match %s, got %q", thingTypeRe, typ)
		}
		p := raw.Policies[typ]
		if p == nil || p.Name == nil {
			return nil, fmt.Errorf("vending config: POLICIES.%s.name is required", typ)
		}
		if !policyNameRe.MatchString(*p.Name) {
			return nil, fmt.Errorf("vending config: POLICIES.%s.name must match %s, got %q", typ, policyNameRe, *p.Name)
		}
		c.Policies[typ] = *p.Name
	}

	for _, typ := range sortedKeys(raw.Attributes) {
		if _, ok := c.Policies[typ]; !ok {
			return nil, fmt.Errorf("vending config: ATTRIBUTES: thing type %q has no POLICIES entry", typ)
		}
		seen := map[string]bool{}
		names := []string{}
		for i, a := range raw.Attributes[typ] {
			if a == nil || a.Name == nil {
				return nil, fmt.Errorf("vending config: ATTRIBUTES.%s[%d].name is required", typ, i)
			}
			switch *a.Name {
			case AttributeCreationDate, AttributeVersion:
			default:
				return nil, fmt.Errorf("vending config: ATTRIBUTES.%s[%d].name must be %q or %q, got %q",
					typ, i, AttributeCreationDate, AttributeVersion, *a.Name)
			}
			if seen[*a.Name] {
				return nil, fmt.Errorf("vending config: ATTRIBUTES.%s[%d].name is a duplicate, got %q", typ, i, *a.Name)
			}
			seen[*a.Name] = true
			names = append(names, *a.Name)
		}
		c.Attributes[typ] = names
	}

	c.TokenPayloadLength = 2
	if len(raw.TokenLength) > 0 && string(raw.TokenLength) != "null" {
		n, err := parseIntish(raw.TokenLength)
		if err != nil || n < 2 || n > 16 {
			return nil, fmt.Errorf("vending config: DEVICE_AUTHORIZER_TOKEN_PAYLOAD_LENGTH must be an integer from 2 to 16, got %s",
				oneLine(string(raw.TokenLength)))
		}
		c.TokenPayloadLength = n
	}

	c.TokenIdentifier = "DeviceToken"
	if raw.TokenIdent != nil {
		id := *raw.TokenIdent
		if id == "" || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
			return nil, fmt.Errorf("vending config: DEVICE_AUTHORIZER_TOKEN_IDENTIFIER must be a non-empty word without spaces, got %q", id)
		}
		c.TokenIdentifier = id
	}

	if err := checkNoPlaintextTokens(raw.ValidTokens); err != nil {
		return nil, err
	}
	return c, nil
}

// checkNoPlaintextTokens accepts an absent, null or empty DEVICE_AUTHORIZER_VALID_TOKENS and refuses anything else
// without echoing it.
func checkNoPlaintextTokens(v json.RawMessage) error {
	s := strings.TrimSpace(string(v))
	if s == "" || s == "null" {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err == nil && len(list) == 0 {
		return nil
	}
	return errors.New("vending config: DEVICE_AUTHORIZER_VALID_TOKENS must be empty: plaintext tokens are refused, " +
		"store hashed tokens in the tokens secret with `vend-token add`")
}

func resolveRootCA(key, v string) (string, error) {
	if file, ok := knownRootCAs[v]; ok {
		b, err := rootCAFiles.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("vending config: %s: bundled certificate missing for %q", key, v)
		}
		return string(b), nil
	}
	if strings.Contains(v, "-----BEGIN") {
		if err := checkCertificatePEM(v); err != nil {
			return "", fmt.Errorf("vending config: %s: %v", key, err)
		}
		return v, nil
	}
	known := make([]string, 0, len(knownRootCAs))
	for u := range knownRootCAs {
		known = append(known, u)
	}
	sort.Strings(known)
	return "", fmt.Errorf("vending config: %s must be one of %s or a PEM certificate, got %q",
		key, strings.Join(known, ", "), truncate(v, 120))
}

func checkCertificatePEM(v string) error {
	rest := []byte(v)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block must be CERTIFICATE, got %q", b.Type)
		}
		n++
	}
	if n == 0 {
		return errors.New("value is not a PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("trailing data after the PEM certificate")
	}
	return nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown object keys and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty JSON document")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func parseIntish(v json.RawMessage) (int, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return strconv.Atoi(strings.TrimSpace(s))
	}
	var n int
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, err
	}
	return n, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func oneLine(s string) string {
	return truncate(strings.Join(strings.Fields(s), " "), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ThingType picks the thing type a registration uses, as the seed does: the first of the account's thing types
// (in listing order) whose name contains "cvm" in any case, here only among types that have a POLICIES entry.
// ok is false when there is none.
func (c *Config) ThingType(accountTypes []string) (name string, ok bool) {
	for _, t := range accountTypes {
		if _, has := c.Policies[t]; has && strings.Contains(strings.ToLower(t), "cvm") {
			return t, true
		}
	}
	return "", false
}

// ThingAttributes returns the attributes to set on a new thing of type typ, per ATTRIBUTES.
func (c *Config) ThingAttributes(typ, creationDate, version string) map[string]string {
	out := map[string]string{}
	for _, a := range c.Attributes[typ] {
		switch a {
		case AttributeCreationDate:
			out[a] = creationDate
		case AttributeVersion:
			out[a] = version
		}
	}
	return out
}
