package selection

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/iotcert/iotcert/internal/pki"
)

// Environment variables through which the CDK CLI hands the app its context: CDK_CONTEXT_JSON, and a file for what
// does not fit in the environment (the CLI's writeContextToEnv).
const (
	EnvContextJSON     = "CDK_CONTEXT_JSON"
	EnvContextOverflow = "CONTEXT_OVERFLOW_LOCATION_ENV"
)

// ReadCDKContext returns the context of this run as the CLI passes it (command line, cdk.json, ~/.cdk.json and
// cdk.context.json merged), in pure Go, so that it can be judged before jsii starts.
func ReadCDKContext(env Lookup, readFile func(string) ([]byte, error)) (map[string]interface{}, error) {
	all := map[string]interface{}{}
	if v, ok := env(EnvContextJSON); ok && strings.TrimSpace(v) != "" {
		if err := json.Unmarshal([]byte(v), &all); err != nil {
			return nil, fmt.Errorf("%s is not a JSON object: %v", EnvContextJSON, err)
		}
	}
	if f, ok := env(EnvContextOverflow); ok && f != "" {
		data, err := readFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", EnvContextOverflow, err)
		}
		more := map[string]interface{}{}
		if err := json.Unmarshal(data, &more); err != nil {
			return nil, fmt.Errorf("%s %s: %v", EnvContextOverflow, f, err)
		}
		for k, v := range more {
			all[k] = v
		}
	}
	return all, nil
}

// RawLookup reads a context map as the stacks do: a string as it is, a list joined by commas, an object as JSON, any
// other value printed; an absent key or JSON null is "not given".
func RawLookup(all map[string]interface{}) Lookup {
	return func(key string) (string, bool) {
		switch t := all[key].(type) {
		case nil:
			return "", false
		case string:
			return t, true
		case []interface{}:
			parts := make([]string, len(t))
			for i, e := range t {
				parts[i] = fmt.Sprint(e)
			}
			return strings.Join(parts, ","), true
		case map[string]interface{}:
			b, _ := json.Marshal(t)
			return string(b), true
		default:
			return fmt.Sprint(t), true
		}
	}
}

// Input is what Judge needs about one run of the app.
type Input struct {
	// Context is every context value of the run (ReadCDKContext).
	Context map[string]interface{}
	// Standing maps the keys kept as standing configuration to the file that holds them ("cdk.json", "~/.cdk.json").
	Standing map[string]string
	// Env reads the environment (CSR_FILE, DESIRED_TOPIC and DESTROY select from there too).
	Env Lookup
	// ReadFile reads CSR_FILE and thing_names_file.
	ReadFile func(string) ([]byte, error)
	// Requested are the stack names (or patterns) the CLI was asked for; nil when not known.
	Requested []string
}

// Judgement is the outcome of Judge.
type Judgement struct {
	Selection Selection
	// Context reads the context as the stacks must: a standing selecting key is hidden when a typed one selects
	// another app.
	Context Lookup
	// Stacks are the stacks this run defines; Requested those of them the CLI was asked for (all when not known).
	Stacks    []Stack
	Requested []Stack
}

// Judge checks the whole configuration of a run, typed or standing, before anything is defined, and decides what the
// run defines. Every error is one line that names the bad key or value, where it came from and what to do instead.
func Judge(in Input) (Judgement, error) {
	if in.Env == nil {
		in.Env = func(string) (string, bool) { return "", false }
	}
	if in.ReadFile == nil {
		in.ReadFile = os.ReadFile
	}
	standing := map[string]bool{}
	for k := range in.Standing {
		standing[k] = true
	}
	names := make([]string, 0, len(in.Context))
	for k := range in.Context {
		names = append(names, k)
	}
	typed := TypedKeys(names, standing)
	if err := CheckUnknown(typed); err != nil {
		return Judgement{}, err
	}
	if err := checkUnknownStanding(in.Standing); err != nil {
		return Judgement{}, err
	}
	ctx := PreferTyped(RawLookup(in.Context), in.Env, standing)
	sel, err := Select(ctx, in.Env)
	if err != nil {
		return Judgement{}, err
	}
	if err := CheckKeys(typed, sel.Kind); err != nil {
		return Judgement{}, err
	}
	if err := checkStanding(in.Standing, ctx, sel.Kind); err != nil {
		return Judgement{}, err
	}
	if err := checkValues(ctx, sel.Kind, in.Standing); err != nil {
		return Judgement{}, err
	}
	if sel.Kind == CrossAccount && !sel.Destroy {
		if err := checkCrossAccountInput(sel, ctx, in.ReadFile); err != nil {
			return Judgement{}, err
		}
	}
	j := Judgement{Selection: sel, Context: ctx, Stacks: Stacks(sel, ctx, in.ReadFile)}
	j.Requested = j.Stacks
	if len(in.Requested) > 0 {
		if j.Requested, err = requested(in, sel, ctx, j.Stacks, typed); err != nil {
			return Judgement{}, err
		}
	}
	return j, nil
}

// checkUnknownStanding refuses a key of the project's cdk.json that the app does not know: a typo there would
// otherwise synthesize without the setting, silently. ~/.cdk.json is the user's for every CDK app, so keys of other
// apps may sit there: only its known keys are judged.
func checkUnknownStanding(standing map[string]string) error {
	var unknown []string
	for k, src := range standing {
		if src != "cdk.json" || IsCDKKey(k) {
			continue
		}
		if _, ok := LookupKey(k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	msgs := make([]string, len(unknown))
	for i, k := range unknown {
		msgs[i] = fmt.Sprintf("%q is not a context key of this app", k)
		if s := Closest(k); s != "" {
			msgs[i] += fmt.Sprintf(" (did you mean %q?)", s)
		}
	}
	return fmt.Errorf("cdk.json context: %s; the README lists the keys", strings.Join(msgs, "; "))
}

// selectingKeys are the keys that select each single-purpose app.
var selectingKeys = map[Applies][]string{
	ForCrossAccount: {KeyCSRFile, KeyDesiredTopic, KeyDestroy},
	ForThings:       {KeyThingName, KeyThingNames, KeyThingNamesFile},
}

// checkStanding judges standing keys against the selection. A standing key that does not apply to what is selected
// is allowed when the standing configuration is itself a configuration of its capability: a platform key (the
// platform is what no selecting key selects), or a key of an app whose selecting key is standing too (seed 001's
// cdk.json: thing_name with policy_file and region). Any other is refused like a typed one: it configures nothing.
func checkStanding(standing map[string]string, ctx Lookup, k Kind) error {
	keys := make([]string, 0, len(standing))
	for name := range standing {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	for _, name := range keys {
		key, ok := LookupKey(name)
		if !ok || key.For&Applies(1<<k) != 0 || key.For&ForPlatform != 0 {
			continue
		}
		if _, given := ctx(name); !given {
			continue // a selecting key hidden by a typed one
		}
		configured := false
		for group, sel := range selectingKeys {
			if key.For&group == 0 {
				continue
			}
			for _, s := range sel {
				configured = configured || standing[s] != ""
			}
		}
		if !configured {
			return fmt.Errorf("%s context %s applies to %s, not to %s: remove it from %s, or give it with -c when you deploy %s",
				standing[name], name, key.For, selectedBy(k), standing[name], strings.SplitN(key.For.String(), " (", 2)[0])
		}
	}
	return nil
}

// CheckCSRFile reads CSR_FILE and refuses what would otherwise fail later, or pass with a surprise: a missing or
// empty file, and a file of several PEM blocks (only one request can be signed).
func CheckCSRFile(name string, readFile func(string) ([]byte, error)) error {
	data, err := readFile(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s %q: %v", KeyCSRFile, name, err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return fmt.Errorf("%s %q is empty: give a PEM certificate signing request (the partner makes one with create-csr)", KeyCSRFile, name)
	}
	blocks := strings.Count(string(data), "-----BEGIN ")
	switch {
	case blocks == 0:
		return fmt.Errorf("%s %q holds no PEM block: give a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)", KeyCSRFile, name)
	case blocks > 1:
		return fmt.Errorf("%s %q holds %d PEM blocks: give a file with exactly one certificate signing request (one partner, one topic)", KeyCSRFile, name, blocks)
	}
	return nil
}

// checkCrossAccountInput judges the CSR (or the desired topic) as the cross-account stack will, so that a bad one is
// refused before jsii starts: one request, a key that is not weak, a topic that may be granted.
func checkCrossAccountInput(sel Selection, ctx Lookup, readFile func(string) ([]byte, error)) error {
	wildcard := false
	if v, ok := ctx("allow_topic_wildcard"); ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("context allow_topic_wildcard must be true or false, got %q", v)
		}
		wildcard = b
	}
	hint := func(topic string) string {
		if wildcard || pki.CheckTopicGrant(topic, true) != nil {
			return ""
		}
		return " (to grant it on purpose, add -c allow_topic_wildcard=true)"
	}
	if sel.CSRFile == "" {
		if err := pki.CheckTopicGrant(sel.DesiredTopic, wildcard); err != nil {
			return fmt.Errorf("%s: %v%s", KeyDesiredTopic, err, hint(sel.DesiredTopic))
		}
		return nil
	}
	if err := CheckCSRFile(sel.CSRFile, readFile); err != nil {
		return err
	}
	data, _ := readFile(sel.CSRFile)
	csr, err := pki.ParseCSR(data)
	if err != nil {
		return fmt.Errorf("CSR %q: %w", sel.CSRFile, err)
	}
	topic, err := pki.TopicFromCSR(csr)
	if err != nil {
		return fmt.Errorf("CSR %q: %w", sel.CSRFile, err)
	}
	if err := pki.CheckTopicGrant(topic, wildcard); err != nil {
		return fmt.Errorf("CSR %q: csr common name: %v%s", sel.CSRFile, err, hint(topic))
	}
	return nil
}
