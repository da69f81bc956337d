// Package rotation holds the pieces of certificate rotation (capability E) shared by its Lambda functions, its
// operator tool and its stack: the host-id and path rules, the two SSM Command documents with their scripts, the
// renewal schedule, the idempotency token and the workflow steps themselves.
//
// The same patterns guard every value on its way to a host three times: the functions check them before
// SendCommand, SSM checks them again as the documents' allowedPattern, and the scripts receive them only as
// environment variables ($SSM_<name>), never as shell text.
package rotation

import (
	"fmt"
	"regexp"
	"strings"
)

// Every pattern below is a document allowedPattern as well as a check in Go, and ends in \z, never $. No AWS page names
// the regular-expression engine behind a document's allowedPattern, nor whether it must match the whole value or is
// searched for in it. Under java.util.regex, and in PCRE, $ also matches before a final line terminator
// (https://docs.oracle.com/en/java/javase/17/docs/api/java.base/java/util/regex/Pattern.html#lt: "If MULTILINE mode
// is not activated, ... $ ... at the end of input but also before a line terminator at the end of input"), so
// `^…$` searched for in "value\n" accepts it. \z is the end of input only, in Go's RE2
// (https://pkg.go.dev/regexp/syntax) and in java.util.regex alike, whether matched or searched; TestPatternsNoTrailingNewline
// checks every pattern under both engines. The scripts check again with bash's =~, whose $ is the end of the string.

// HostIDPattern is SSM's own rule for a managed node id: an EC2 instance (i-, 8 or 17 characters) or a hybrid
// managed instance (mi-, 17 characters).
const HostIDPattern = `^(i-(\w{8}|\w{17})|mi-\w{17})\z`

// PathPattern is an absolute directory path: segments of letters, digits, '.', '_' and '-', none starting with '.',
// so neither "." nor ".." can appear as a segment. No spaces, quotes, '$', backticks, ';' or newlines. CheckPath
// also bounds the length to MaxPathLength.
const PathPattern = `^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+\z`

// MaxPathLength bounds a directory path.
const MaxPathLength = 1024

// Patterns of the other document parameters.
const (
	// KeyAlgorithmPattern lists the host key types phase 1 can make.
	KeyAlgorithmPattern = `^(RSA_2048|EC_prime256v1)\z`
	// PEMBase64Pattern is a PEM document carried as one line of standard base64 (a certificate and its chain fit in
	// a few kilobytes; SSM allows 64 KB for a document and its parameters together).
	PEMBase64Pattern = `^[A-Za-z0-9+/]+={0,2}\z`
	// SerialPattern is a certificate serial number in upper-case hex, which names the generation directory.
	SerialPattern = `^[0-9A-F]{1,40}\z`
	// ProfileARNPattern, TrustAnchorARNPattern and RoleARNPattern are the IAM Roles Anywhere profile, trust anchor
	// and IAM role the host tests its new certificate against.
	ProfileARNPattern     = `^arn:aws[a-z-]{0,12}:rolesanywhere:[a-z0-9-]{1,32}:[0-9]{12}:profile/[0-9a-f-]{36}\z`
	TrustAnchorARNPattern = `^arn:aws[a-z-]{0,12}:rolesanywhere:[a-z0-9-]{1,32}:[0-9]{12}:trust-anchor/[0-9a-f-]{36}\z`
	RoleARNPattern        = `^arn:aws[a-z-]{0,12}:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}\z`
)

var (
	hostIDRE = regexp.MustCompile(HostIDPattern)
	pathRE   = regexp.MustCompile(PathPattern)
)

// ValidHostID reports whether id is an SSM managed node id.
func ValidHostID(id string) bool { return hostIDRE.MatchString(id) }

// CheckHostID returns an error naming id when it is not an SSM managed node id.
func CheckHostID(id string) error {
	if !ValidHostID(id) {
		return fmt.Errorf("host id %q is not an SSM managed node id (i-… or mi-…)", id)
	}
	return nil
}

// SharedDirs are the directories every local user may write on a Linux host (the sample's /tmp among them). A key,
// certificate, CA or helper directory in one of them, or below one, is refused here; the host scripts refuse any
// directory that has a group- or other-writable or sticky directory above it as well.
var SharedDirs = []string{"/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/var/crash"}

// CheckPath returns an error naming the attribute and the value when p is not an absolute path of safe segments, or
// lies in a directory every local user may write.
func CheckPath(attr, p string) error {
	if len(p) > MaxPathLength || !pathRE.MatchString(p) || hasDotDotSegment(p) {
		return fmt.Errorf("%s %q is not an absolute path of letters, digits, '.', '_' and '-' without '..'", attr, p)
	}
	for _, d := range SharedDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return fmt.Errorf("%s %q is in %s, which every local user may write: use a directory only root can write, such as %s (the default)",
				attr, p, d, DefaultDir)
		}
	}
	return nil
}

// hasDotDotSegment is a second look at what PathPattern already excludes, for a reader who changes the pattern.
func hasDotDotSegment(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == ".." || s == "." {
			return true
		}
	}
	return false
}
