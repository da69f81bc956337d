// Package naming checks the names that AWS IoT and CloudFormation accept, so that bad input is refused at synth or at the
// API edge with a message that names the value, instead of failing later inside a deployment.
package naming

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// MaxThingNameLength is AWS IoT's bound on a thing name, in characters.
const MaxThingNameLength = 128

// ThingNamePattern is AWS IoT's rule for thing (and thing type) names, anchored, for JSON schemas and messages.
const ThingNamePattern = `^[a-zA-Z0-9:_-]{1,128}$`

var (
	// ThingNameRE matches valid AWS IoT thing names.
	ThingNameRE = regexp.MustCompile(ThingNamePattern)
	// CloudFormation stack names: a letter first, then letters, digits and hyphens, at most 128 characters.
	stackNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)
)

// ThingName reports whether name is a valid AWS IoT thing name (1 to 128 characters of a-z, A-Z, 0-9, ':', '_' and '-').
func ThingName(name string) error {
	if name == "" {
		return fmt.Errorf("thing name must not be empty")
	}
	if n := utf8.RuneCountInString(name); n > MaxThingNameLength {
		return fmt.Errorf("thing name is %d characters long: AWS IoT allows at most %d", n, MaxThingNameLength)
	}
	if !ThingNameRE.MatchString(name) {
		return fmt.Errorf("thing name %q is not valid: use 1 to 128 characters of a-z, A-Z, 0-9, ':', '_' and '-'", name)
	}
	return nil
}

// StackName reports whether name is a valid CloudFormation stack name.
func StackName(name string) error {
	if !stackNameRE.MatchString(name) {
		return fmt.Errorf("stack name %q is not valid: it must start with a letter and hold only letters, digits and '-', at most 128 characters", name)
	}
	return nil
}
