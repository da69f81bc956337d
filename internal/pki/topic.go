package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Topic limits of the AWS IoT message broker (AWS IoT Core quotas, "Message broker and protocol limits"):
// a topic name is at most 256 bytes of UTF-8 and holds at most 7 forward slashes. For Basic Ingest topics the
// three slashes of the mandatory "$aws/rules/<rule-name>/" prefix do not count.
const (
	MaxTopicBytes  = 256
	MaxTopicLevels = 7 // slashes
	// MaxCommonNameLength is the X.509 upper bound on a common name (RFC 5280, ub-common-name), in characters.
	MaxCommonNameLength = 64
)

const basicIngestPrefix = "$aws/rules/"

// encodedSlash is how create-csr.sh writes "/" in the CSR common name: openssl's -subj uses "/" to separate
// attributes. Only the upper-case form is used, as the seed's publish.py and publish.js decode exactly "%2F".
const encodedSlash = "%2F"

// EncodeTopic writes a topic in its CSR common-name form: every "/" becomes "%2F".
func EncodeTopic(topic string) string { return strings.ReplaceAll(topic, "/", encodedSlash) }

// DecodeTopic turns a CSR common name back into a topic: every "%2F" becomes "/". Decoding a topic that has no
// "%2F" is a no-op, so decoding twice is harmless.
func DecodeTopic(cn string) string { return strings.ReplaceAll(cn, encodedSlash, "/") }

// ValidateTopic checks a destination topic as it is written into the producer's IoT policy resource
// (arn:aws:iot:<region>:<account>:topic/<topic>). The only wildcard there is IAM's "*": MQTT's "+" and "#" are
// refused, because in a policy they are literal characters and would silently match nothing the producer means.
func ValidateTopic(topic string) error {
	if topic == "" {
		return errors.New("topic must not be empty")
	}
	if !utf8.ValidString(topic) {
		return fmt.Errorf("topic %q is not valid UTF-8", topic)
	}
	if strings.ContainsRune(topic, 0) {
		return fmt.Errorf("topic %q contains a NUL character", topic)
	}
	for _, w := range []string{"+", "#"} {
		if strings.Contains(topic, w) {
			return fmt.Errorf("topic %q contains MQTT wildcard %q: the policy uses IAM wildcards, write \"*\" instead", topic, w)
		}
	}
	if strings.Contains(topic, encodedSlash) {
		return fmt.Errorf("topic %q contains %q, which the certificate common name uses to write \"/\"", topic, encodedSlash)
	}
	if len(topic) > MaxTopicBytes {
		return fmt.Errorf("topic is %d bytes long: AWS IoT allows at most %d", len(topic), MaxTopicBytes)
	}
	slashes := strings.Count(topic, "/")
	if strings.HasPrefix(topic, basicIngestPrefix) {
		slashes -= 3 // "$aws/rules/<rule>/"; a topic that ends before the third slash simply counts fewer
		if slashes < 0 {
			slashes = 0
		}
	}
	if slashes > MaxTopicLevels {
		return fmt.Errorf("topic %q has %d forward slashes: AWS IoT allows at most %d", topic, slashes, MaxTopicLevels)
	}
	return nil
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// TopicFromCSR returns the destination topic carried in the CSR's subject common name ("/" written as "%2F"),
// decoded and validated.
func TopicFromCSR(csr *x509.CertificateRequest) (string, error) {
	if csr == nil {
		return "", errors.New("topic from csr: no csr")
	}
	n := 0
	for _, atv := range csr.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			n++
		}
	}
	switch {
	case n == 0 || csr.Subject.CommonName == "":
		return "", errors.New(`csr subject has no common name (CN): it must hold the destination topic, with "/" written as "%2F"`)
	case n > 1:
		return "", fmt.Errorf("csr subject has %d common names (CN): exactly one, the destination topic, is expected", n)
	}
	if n := utf8.RuneCountInString(csr.Subject.CommonName); n > MaxCommonNameLength {
		return "", fmt.Errorf("csr common name is %d characters: X.509 allows at most %d, and the topic becomes the certificate's common name", n, MaxCommonNameLength)
	}
	topic := DecodeTopic(csr.Subject.CommonName)
	// A CN such as "a%2F%2B" was percent-encoded by someone who meant the MQTT wildcard "+": refuse it as one
	// rather than accept the literal text "%2B".
	if err := ValidateTopic(escapedWildcards.Replace(topic)); err != nil {
		return "", fmt.Errorf("csr common name: %w", err)
	}
	return topic, nil
}

var escapedWildcards = strings.NewReplacer("%2B", "+", "%2b", "+", "%23", "#")

// basicIngestRE is the one reserved topic a partner may be given: Basic Ingest, "$aws/rules/<rule-name>/<topic>",
// which delivers to one rule of the account without a broker round trip. Rule names are [a-zA-Z0-9_]+.
var basicIngestRE = regexp.MustCompile(`^\$aws/rules/[a-zA-Z0-9_]+/.`)

// ruleNameRE is an AWS IoT rule name (CreateTopicRule: ruleName, pattern ^[a-zA-Z0-9_]+$, 1 to 128 characters).
var ruleNameRE = regexp.MustCompile(`^[a-zA-Z0-9_]{1,128}$`)

// BasicIngestRule returns the rule a Basic Ingest topic ("$aws/rules/<rule>/<topic>") delivers to, and whether topic
// is one.
func BasicIngestRule(topic string) (string, bool) {
	if !basicIngestRE.MatchString(topic) {
		return "", false
	}
	rule, _, _ := strings.Cut(strings.TrimPrefix(topic, basicIngestPrefix), "/")
	return rule, true
}

// ParseRuleNames reads a comma-separated list of AWS IoT rule names ("ingest_a, ingest_b"); blanks around names are
// ignored, a name listed twice or not a rule name is an error that names it.
func ParseRuleNames(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" && strings.TrimSpace(list) == "" {
			continue
		}
		if !ruleNameRE.MatchString(n) {
			return nil, fmt.Errorf("%q is not an AWS IoT rule name (1 to 128 of a-z, A-Z, 0-9 and _)", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("rule %q is listed twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// CheckBasicIngestRule refuses a Basic Ingest topic whose rule is not in allowed. Such a topic delivers straight to
// that rule of the consumer's account, which acts with the rule's role on whatever the partner sends, so the partner
// must not choose the rule: the operator lists the rules partners may reach. Any other topic passes.
func CheckBasicIngestRule(topic string, allowed []string) error {
	rule, ok := BasicIngestRule(topic)
	if !ok {
		return nil
	}
	for _, a := range allowed {
		if a == rule {
			return nil
		}
	}
	if len(allowed) == 0 {
		return fmt.Errorf("topic %q delivers by Basic Ingest to the rule %q, and no rule is allowed to partners", topic, rule)
	}
	return fmt.Errorf("topic %q delivers by Basic Ingest to the rule %q, which is not one of the rules allowed to partners (%s)", topic, rule, strings.Join(allowed, ", "))
}

// CheckTopicGrant checks a topic that becomes the resource of a partner's iot:Publish grant
// (arn:...:topic/<topic>). On top of ValidateTopic it refuses what would let the partner choose its own permissions:
//   - IAM wildcards "*" and "?" ("*" alone is every topic of the account), unless allowWildcard;
//   - policy variables ("${"), which AWS IoT would expand at connection time;
//   - reserved topics (every topic starting with "$": device shadows, jobs, events), except Basic Ingest, whose rule
//     the caller checks against the operator's list with [CheckBasicIngestRule].
//
// Every error is one line that names the topic.
func CheckTopicGrant(topic string, allowWildcard bool) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if strings.Contains(topic, "${") {
		return fmt.Errorf("topic %q contains \"${\", which AWS IoT would expand as a policy variable", topic)
	}
	if strings.HasPrefix(topic, "$") {
		if !basicIngestRE.MatchString(topic) {
			return fmt.Errorf("topic %q is a reserved topic (it starts with \"$\"): only Basic Ingest, $aws/rules/<rule>/<topic>, may be granted", topic)
		}
	}
	if !allowWildcard {
		if i := strings.IndexAny(topic, "*?"); i >= 0 {
			return fmt.Errorf("topic %q contains the IAM wildcard %q, which would let the partner publish to every topic it matches", topic, topic[i:i+1])
		}
	}
	return nil
}
