// Package selection decides, from CDK context and the environment, which stacks one run of the app defines, so that the
// seeds' bare commands (`cdk deploy -c CSR_FILE=…`, `cdk deploy --context thing_name=…`, `DESTROY=1 cdk destroy`) work
// without naming a stack. It is pure Go: main.go reads the values and this package judges them.
package selection

import (
	"errors"
	"fmt"
	"strings"

	"github.com/iotcert/iotcert/internal/naming"
)

// Context keys that select a single-purpose app.
const (
	KeyCSRFile        = "CSR_FILE"
	KeyDesiredTopic   = "DESIRED_TOPIC"
	KeyDestroy        = "DESTROY"
	KeyThingName      = "thing_name"
	KeyThingNames     = "thing_names"
	KeyThingNamesFile = "thing_names_file"
)

// The seed's messages for the cross-account stack, kept verbatim: scripts and runbooks grep for them.
const (
	MsgCSROrTopic = "In the context variables either a CSR filename [CSR_FILE] or a desired topic/topic hierarchy [DESIRED_TOPIC] must be specified"
	MsgNotBoth    = MsgCSROrTopic + ", but not both"
)

// Kind says which app a run defines.
type Kind int

const (
	// Platform defines the shared platform stacks (vending, multi-region, rotation).
	Platform Kind = iota
	// CrossAccount defines certificate-based-stack alone.
	CrossAccount
	// Thing defines one per-thing stack.
	Thing
	// Fleet defines things in as few stacks as CloudFormation's limits allow.
	Fleet
)

func (k Kind) String() string {
	return [...]string{"platform", "cross-account", "thing", "fleet"}[k]
}

// Selection is the outcome of Select.
type Selection struct {
	Kind Kind
	// CrossAccount: exactly one of CSRFile and DesiredTopic, unless Destroy.
	CSRFile      string
	DesiredTopic string
	// Destroy synthesizes the cross-account stack without a CSR so that `cdk destroy` works.
	Destroy bool
	// Thing: the thing (and stack) name.
	ThingName string
	// Fleet: the names from thing_names (comma-separated) or thing_names_file (read by the caller, one per line).
	ThingNames     []string
	ThingNamesFile string
}

// Lookup returns a value and whether the key was given at all.
type Lookup func(key string) (string, bool)

// Select judges the context (ctx) and the environment (env). CSR_FILE, DESIRED_TOPIC and DESTROY are read from both,
// context first: the seed documents `DESTROY=1 cdk destroy` (environment) and `cdk destroy -c DESTROY=1` (context).
func Select(ctx, env Lookup) (Selection, error) {
	csr, csrSet := either(ctx, env, KeyCSRFile)
	topic, topicSet := either(ctx, env, KeyDesiredTopic)
	destroyVal, destroySet := either(ctx, env, KeyDestroy)
	if destroySet && strings.TrimSpace(destroyVal) == "" {
		// A value of DESTROY never selects another stack: an empty one is a question, not "not set".
		return Selection{}, errors.New("DESTROY is set but empty: DESTROY=1 selects the cross-account stack (to destroy it); unset DESTROY for any other stack")
	}
	destroy := destroySet
	thing, thingSet := ctx(KeyThingName)
	names, namesSet := ctx(KeyThingNames)
	namesFile, namesFileSet := ctx(KeyThingNamesFile)

	crossKeys := given(map[string]bool{KeyCSRFile: csrSet, KeyDesiredTopic: topicSet, KeyDestroy: destroy})
	thingKeys := given(map[string]bool{KeyThingName: thingSet, KeyThingNames: namesSet, KeyThingNamesFile: namesFileSet})

	switch {
	case len(crossKeys) > 0 && len(thingKeys) > 0:
		return Selection{}, fmt.Errorf("context %s (the cross-account stack) and %s (per-thing stacks) select different apps: give one of them",
			strings.Join(crossKeys, ", "), strings.Join(thingKeys, ", "))
	case len(crossKeys) > 0:
		return selectCrossAccount(csr, topic, destroy)
	case len(thingKeys) > 1:
		return Selection{}, fmt.Errorf("context %s each select per-thing stacks: give only one of them", strings.Join(thingKeys, ", "))
	case thingSet:
		if err := naming.ThingName(thing); err != nil {
			return Selection{}, fmt.Errorf("context %s: %w", KeyThingName, err)
		}
		return Selection{Kind: Thing, ThingName: thing}, nil
	case namesSet:
		list, err := SplitNames(names)
		if err != nil {
			return Selection{}, fmt.Errorf("context %s: %w", KeyThingNames, err)
		}
		return Selection{Kind: Fleet, ThingNames: list}, nil
	case namesFileSet:
		if strings.TrimSpace(namesFile) == "" {
			return Selection{}, fmt.Errorf("context %s must name a file of thing names, one per line", KeyThingNamesFile)
		}
		return Selection{Kind: Fleet, ThingNamesFile: namesFile}, nil
	}
	return Selection{Kind: Platform}, nil
}

func selectCrossAccount(csr, topic string, destroy bool) (Selection, error) {
	if destroy {
		// Destroy needs no CSR: the stack is synthesized empty of inputs so that `cdk destroy` can find it.
		return Selection{Kind: CrossAccount, Destroy: true}, nil
	}
	csr, topic = strings.TrimSpace(csr), strings.TrimSpace(topic)
	switch {
	case csr != "" && topic != "":
		//lint:ignore ST1005 the seed's message, kept verbatim: scripts and runbooks grep for it
		return Selection{}, errors.New(MsgNotBoth)
	case csr == "" && topic == "":
		//lint:ignore ST1005 the seed's message, kept verbatim: scripts and runbooks grep for it
		return Selection{}, errors.New(MsgCSROrTopic)
	}
	return Selection{Kind: CrossAccount, CSRFile: csr, DesiredTopic: topic}, nil
}

// SplitNames splits a comma- or newline-separated list of thing names, drops blanks, checks each name and refuses
// duplicates: two devices with one name would share one thing.
func SplitNames(s string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		name := strings.TrimSpace(f)
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if err := naming.ThingName(name); err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("thing name %q is listed twice", name)
		}
		seen[name] = true
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("no thing names given")
	}
	return out, nil
}

func either(ctx, env Lookup, key string) (string, bool) {
	if v, ok := ctx(key); ok {
		return v, true
	}
	return env(key)
}

func given(keys map[string]bool) []string {
	var out []string
	for _, k := range []string{KeyCSRFile, KeyDesiredTopic, KeyDestroy, KeyThingName, KeyThingNames, KeyThingNamesFile} {
		if keys[k] {
			out = append(out, k)
		}
	}
	return out
}
