package selection

import (
	"fmt"
	"path/filepath"
	"strings"
)

// requested matches the stack names the CLI was asked for against the stacks of the selection, before any synth: a
// mistyped name, or a name of another selection, is an error that says which setting selected what. A typed platform
// key of a capability none of whose stacks is asked for is refused too (`cdk deploy CertRotation -c provisioning=jitp`).
func requested(in Input, sel Selection, ctx Lookup, defined []Stack, typed []string) ([]Stack, error) {
	var out []Stack
	seen := map[string]bool{}
	for _, pattern := range in.Requested {
		// A stage path (Stage/Stack) or a glob: match the last element, as the CLI does for our flat app.
		base := pattern[strings.LastIndex(pattern, "/")+1:]
		m := MatchStacks(base, defined)
		if len(m) == 0 {
			return nil, noStackError(pattern, in, sel, ctx, defined)
		}
		for _, s := range m {
			if !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, s)
			}
		}
	}
	// A stack's dependencies are deployed with it: they are asked for too (their cost with them).
	for i := 0; i < len(out); i++ {
		for _, n := range out[i].Needs {
			for _, s := range defined {
				if s.Name == n && !seen[n] {
					seen[n] = true
					out = append(out, s)
				}
			}
		}
	}
	if sel.Kind != Platform {
		return out, nil
	}
	for _, p := range PlatformStacks {
		asked := false
		for _, s := range p.Stacks(ctx) {
			asked = asked || seen[s.Name]
		}
		if asked {
			continue
		}
		for _, k := range typed {
			for _, pk := range p.Keys {
				if k == pk {
					return nil, fmt.Errorf("context %s applies to the %s stacks (%s), and none of them is asked for here (%s): remove it",
						k, strings.SplitN(p.Capability, " ", 2)[1], p.Pattern, strings.Join(in.Requested, " "))
				}
			}
		}
	}
	return out, nil
}

func noStackError(pattern string, in Input, sel Selection, ctx Lookup, defined []Stack) error {
	names := make([]string, len(defined))
	for i, s := range defined {
		names[i] = s.Name
	}
	msg := fmt.Sprintf("no stack matches %q: %s selects %s", pattern, selectionSource(in, sel, ctx), strings.Join(names, ", "))
	if sel.Kind != Platform {
		if _, ok := PlatformStackOf(pattern, RawLookup(in.Context)); ok {
			return fmt.Errorf("%s; %s is a platform stack: %s", msg, pattern, clearSelection(in, sel))
		}
	}
	best, bestD := "", -1
	for _, n := range names {
		if d := distance(strings.ToLower(pattern), strings.ToLower(n)); bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" && bestD <= len(pattern)/3+1 {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Errorf("%s", msg)
}

// selectionSource says which setting made the selection, and from where: typed, the environment or cdk.json.
func selectionSource(in Input, sel Selection, ctx Lookup) string {
	if sel.Kind == Platform {
		return "no selecting key (CSR_FILE, DESIRED_TOPIC, DESTROY, thing_name, thing_names, thing_names_file)"
	}
	for _, k := range []string{KeyDestroy, KeyCSRFile, KeyDesiredTopic, KeyThingName, KeyThingNames, KeyThingNamesFile} {
		if _, ok := ctx(k); ok {
			if src := in.Standing[k]; src != "" {
				return fmt.Sprintf("%s in %s", k, src)
			}
			return "-c " + k
		}
		if _, ok := in.Env(k); ok && (k == KeyDestroy || k == KeyCSRFile || k == KeyDesiredTopic) {
			return k + " in the environment"
		}
	}
	return sel.Kind.String()
}

// clearSelection says how to get back to the platform stacks.
func clearSelection(in Input, sel Selection) string {
	var steps []string
	for _, k := range []string{KeyDestroy, KeyCSRFile, KeyDesiredTopic, KeyThingName, KeyThingNames, KeyThingNamesFile} {
		if _, ok := in.Context[k]; ok {
			if src := in.Standing[k]; src != "" {
				steps = append(steps, fmt.Sprintf("remove %s from %s", k, filepath.ToSlash(src)))
			} else {
				steps = append(steps, "leave out -c "+k)
			}
		} else if _, ok := in.Env(k); ok && (k == KeyDestroy || k == KeyCSRFile || k == KeyDesiredTopic) {
			steps = append(steps, "unset "+k)
		}
	}
	return strings.Join(steps, " and ") + " to reach the platform stacks"
}

// cdkStackCommands take stack names as positional arguments.
var cdkStackCommands = map[string]bool{"synth": true, "synthesize": true, "deploy": true, "diff": true, "destroy": true, "watch": true}

// cdkValueFlags are the CDK CLI options (v2) that take a value in the next argument; cdkArrayFlags take several,
// which makes the positional arguments after them ambiguous.
var (
	cdkValueFlags = map[string]bool{"-a": true, "--app": true, "--build": true, "-c": true, "--context": true, "-p": true, "--plugin": true,
		"--profile": true, "--proxy": true, "--ca-bundle-path": true, "-r": true, "--role-arn": true, "-o": true, "--output": true,
		"--require-approval": true, "--change-set-name": true, "-m": true, "--method": true, "-O": true, "--outputs-file": true,
		"--toolkit-stack-name": true, "--progress": true, "--concurrency": true, "--context-lines": true, "--template": true,
		"--telemetry-file": true, "--lookup-role-arn": true}
	cdkArrayFlags = map[string]bool{"--notification-arns": true, "-t": true, "--tags": true, "--parameters": true, "-E": true,
		"--build-exclude": true, "--unstable": true}
)

// RequestedStacks reads the stack names from a CDK CLI command line (the argv of the cdk process that runs the app).
// ok is false when argv is not a cdk command line with stack arguments that can be read with certainty; names is
// empty when no stack was named (or --all was given).
func RequestedStacks(argv []string) (names []string, ok bool) {
	i := 0
	for ; i < len(argv); i++ {
		b := filepath.Base(argv[i])
		if b == "cdk" || b == "cdk.js" || strings.HasSuffix(filepath.ToSlash(argv[i]), "aws-cdk/bin/cdk") {
			break
		}
	}
	if i == len(argv) {
		return nil, false
	}
	cmd := ""
	all := false
	for i++; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			return nil, false
		case a == "--all":
			all = true
		case strings.HasPrefix(a, "-"):
			flag := a
			if eq := strings.IndexByte(a, '='); eq >= 0 {
				continue
			}
			if cdkArrayFlags[flag] {
				return nil, false
			}
			if cdkValueFlags[flag] {
				i++
			} else if i+1 < len(argv) && (argv[i+1] == "true" || argv[i+1] == "false") {
				i++ // a boolean option with its value
			}
		case cmd == "":
			cmd = a
			if !cdkStackCommands[cmd] {
				return nil, false
			}
		default:
			names = append(names, a)
		}
	}
	if cmd == "" {
		return nil, false
	}
	if all {
		return nil, true
	}
	return names, true
}
