// Command synthcheck is the synth check: it synthesizes every stack the app can define, with sample inputs from
// testdata/, the way a user runs `cdk synth`, with AWS's own checks failing the run:
//   - the CDK's built-in CloudFormation validator, as errors (-c @aws-cdk/core:validateAgainstDefaultRules=true);
//   - cdk-nag's AwsSolutions and Serverless packs, Aspects of the app (their errors fail `cdk synth`);
//   - cfn-guard with the AWS Control Tower rule set over every template in the cloud assembly;
//   - the app's own IoT policy rules (package policies) over every AWS::IoT::Policy: no action wildcards, no
//     Allow on every resource, no unscoped iot:Connect. cdk-nag and cfn-guard have no IoT rules.
//
// It builds the app and the Lambda binaries once, synthesizes -j cases at a time, and then checks each distinct
// template once (the platform stacks repeat byte for byte across cases). It also requires the cost line of every stack
// with a Private CA, and that every resource kept after cdk destroy under a fixed name is listed in the README's
// Uninstall section. An acknowledged cfn-guard rule must carry its reason next to the resource (Metadata.guard.Reasons).
// With -expect-fail it checks the checker: the run must fail, with every finding named by -expect.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iotcert/iotcert/internal/cli"
	"github.com/iotcert/iotcert/policies"
)

// A case is one way of running the app, with the context that selects its stacks.
type synthCase struct {
	Name    string
	Context []string
}

// defaultCases covers every stack the app defines.
var defaultCases = []synthCase{
	{"platform", nil},
	{"cross-account", []string{"CSR_FILE=testdata/crossaccount/cross-account.csr"}},
	{"cross-account-mqtt", []string{"CSR_FILE=testdata/crossaccount/cross-account.csr", "producer=acme", "mqtt_client_id=acme-publisher"}},
	{"cross-account-destroy", []string{"DESTROY=1"}},
	{"thing", []string{"thing_name=device1234"}},
	// With a region the ARNs carry it: acknowledgements must hold in any environment.
	{"thing-region", []string{"thing_name=device1234", "region=eu-west-1"}},
	{"fleet", []string{"thing_names_file=testdata/thing/fleet.txt"}},
	// Multi-region stacks (platform): the operator's CA instead of a Private CA, JITP instead of JITR, two replicas.
	{"multiregion-operator-ca", []string{"ca_certificate_file=testdata/multiregion/ca.pem"}},
	{"multiregion-jitp", []string{"provisioning=jitp"}},
	{"multiregion-two-replicas", []string{"replica_regions=us-east-1,eu-west-1", "jitr_thing_name_pattern=^sensor-[0-9]+$"}},
	// The platform case covers the default CertRotation; this one a named, general-purpose rotation stack.
	{"rotation-named", []string{"rotation_name=blue", "rotation_ca_mode=general_purpose", "rotation_validity_days=30",
		"rotation_host_key_algorithm=EC_prime256v1", "SNSSubscriberEmail=pat_candella@example.org"}},
}

var tool = cli.Tool{
	Name:     "synthcheck",
	Synopsis: "synthcheck [-case a,b] [-c key=value]... [-app CMD] [-out DIR] [-expect-fail -expect F1,F2]",
	About: `synthesizes every stack the app can define with the sample inputs in testdata/, as cdk synth does, and fails on
the CloudFormation validator's errors, cdk-nag's AwsSolutions and Serverless findings, cfn-guard's AWS Control Tower
rules and the app's own IoT policy rules; every distinct template is checked once. It also requires the cost line of
each stack with a Private CA, and the README's Uninstall section to list every resource kept under a fixed name after
cdk destroy. Cases run -j at a time. Run it from the repository root (make synth does).`,
	Examples: []string{"go run ./cmd/synthcheck", "go run ./cmd/synthcheck -case thing,fleet", "go run ./cmd/synthcheck -j 1"},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("synthcheck", flag.ContinueOnError)
	app := fs.String("app", "", "app command (default: the one in cdk.json)")
	out := fs.String("out", "cdk.out/check", "directory for the cloud assemblies, one per case")
	only := fs.String("case", "", "run only the cases whose names are listed (comma-separated)")
	expectFail := fs.Bool("expect-fail", false, "succeed only if the check fails with every finding named in -expect")
	expect := fs.String("expect", "", "comma-separated findings that must be reported (with -expect-fail)")
	jobs := fs.Int("j", runtime.NumCPU(), "cases synthesized at a time, and cfn-guard processes")
	ctxFlags := multiFlag{}
	fs.Var(&ctxFlags, "c", "extra context key=value for every case (repeatable)")
	if code, done := tool.Parse(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return tool.UsageError(stderr, "unexpected argument %q", fs.Arg(0))
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(stderr, "synthcheck:", err)
		return 2
	}
	bin := filepath.Join(root, "node_modules", ".bin")
	os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	guard, rules, err := guardPaths(root)
	if err != nil {
		fmt.Fprintln(stderr, "synthcheck:", err)
		return 2
	}
	cases := defaultCases
	if *app != "" {
		cases = []synthCase{{"app", nil}}
	}
	if *only != "" {
		cases = filterCases(cases, strings.Split(*only, ","))
	}

	// The app and the Lambda binaries are built once, here, not by every case's app command (cases run in parallel
	// and would race on build/).
	t0 := time.Now()
	if *app == "" {
		if out, err := prebuild(root); err != nil {
			fmt.Fprintf(stderr, "synthcheck: build: %v\n%s", err, out)
			return 2
		}
	}
	fmt.Fprintf(stdout, "build (app and Lambda binaries)  %5.1fs\n", time.Since(t0).Seconds())

	// Phase 1: every case's synth, *jobs at a time; the validator and cdk-nag run inside.
	t0 = time.Now()
	results := make([]caseResult, len(cases))
	sem := make(chan struct{}, max(*jobs, 1))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := caseResult{c: c, dir: filepath.Join(*out, c.Name), context: append(append([]string{}, ctxFlags...), c.Context...)}
			start := time.Now()
			if r.err = os.RemoveAll(r.dir); r.err == nil {
				r.out, r.err = synth(root, *app, r.dir, r.context)
			}
			r.took = time.Since(start)
			results[i] = r
		}()
	}
	wg.Wait()
	synthTook := time.Since(t0)

	// Phase 2: cfn-guard and the IoT policy rules over each distinct template once: the platform stacks repeat in
	// every platform case, byte for byte.
	t0 = time.Now()
	checks, distinct, total, err := checkTemplates(root, guard, rules, results, *jobs)
	if err != nil {
		fmt.Fprintln(stdout, "synthcheck: cfn-guard:", err)
		return 1
	}
	guardTook := time.Since(t0)

	var findings []string
	for _, r := range results {
		fmt.Fprintf(stdout, "synth %-26s %5.1fs  ", r.c.Name, r.took.Seconds())
		failed := r.err != nil
		if failed {
			fmt.Fprintln(stdout, "FAIL")
			stdout.Write(indent(r.out))
			findings = append(findings, synthFindings(r.c.Name, r.out)...)
		}
		if !failed && *app == "" {
			// The app's promise: a synth of a stack with a Private CA says what it costs.
			if missing := missingCostLines(r.dir, r.out); len(missing) > 0 {
				checks[r.c.Name] = append(checks[r.c.Name], missing...)
			}
		}
		if g := checks[r.c.Name]; len(g) > 0 {
			if !failed {
				fmt.Fprintln(stdout, "FAIL")
			}
			fmt.Fprintln(stdout, "  cfn-guard and IoT policy rules:")
			for _, f := range g {
				fmt.Fprintln(stdout, "  "+f)
				findings = append(findings, r.c.Name+": "+f)
			}
			continue
		}
		if !failed {
			fmt.Fprintln(stdout, "ok")
		}
	}
	fmt.Fprintf(stdout, "phases: synth %.1fs (%d cases, %d at a time), cfn-guard and IoT policy rules %.1fs (%d templates, %d distinct)\n",
		synthTook.Seconds(), len(cases), max(*jobs, 1), guardTook.Seconds(), total, distinct)

	if *expectFail {
		if len(findings) == 0 {
			fmt.Fprintln(stdout, "synthcheck: expected the check to fail, and it passed")
			return 1
		}
		all := strings.Join(findings, "\n")
		missing := 0
		for _, want := range splitList(*expect) {
			if !strings.Contains(all, want) {
				fmt.Fprintf(stdout, "synthcheck: expected finding %q was not reported\n", want)
				missing++
			}
		}
		if missing > 0 {
			return 1
		}
		fmt.Fprintf(stdout, "synthcheck: failed as expected, %d finding(s), every expected one among them\n", len(findings))
		return 0
	}
	if len(findings) > 0 {
		fmt.Fprintf(stdout, "synthcheck: %d finding(s)\n", len(findings))
		return 1
	}
	fmt.Fprintf(stdout, "synthcheck: %d case(s) passed the CloudFormation validator, cdk-nag (AwsSolutions, Serverless), cfn-guard (Control Tower) and the IoT policy rules\n", len(cases))
	return 0
}

// synth runs `cdk synth` as a user would, with the validator's findings as errors.
func synth(root, app, outdir string, context []string) ([]byte, error) {
	args := []string{"synth", "--quiet", "--no-notices", "--output", outdir,
		"-c", "@aws-cdk/core:validateAgainstDefaultRules=true"}
	if app != "" {
		args = append(args, "--app", app)
	}
	for _, c := range context {
		args = append(args, "-c", c)
	}
	cmd := exec.Command("cdk", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CDK_DISABLE_VERSION_CHECK=1", "IOTCERT_PREBUILT=1")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}

// synthFindings pulls the rule ids and error lines out of a failed synth's output.
func synthFindings(name string, out []byte) []string {
	var f []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "ERROR") || strings.HasPrefix(line, "error:") || strings.Contains(line, "[Error at") ||
			strings.Contains(line, "Acknowledge with 'CloudFormation-Validate::") {
			f = append(f, name+": "+line)
		}
	}
	if len(f) == 0 {
		f = append(f, name+": cdk synth failed")
	}
	return f
}

func guardPaths(root string) (string, string, error) {
	pkg := filepath.Join(root, "node_modules", "@cdklabs", "cdk-validator-cfnguard")
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	osName := map[string]string{"linux": "ubuntu", "darwin": "macos"}[runtime.GOOS]
	bin := filepath.Join(pkg, "bin", osName, arch, "cfn-guard")
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Errorf("cfn-guard not found at %s: run scripts/setup.sh", bin)
	}
	return bin, filepath.Join(pkg, "rules", "control-tower", "cfn-guard"), nil
}

// checkGuard runs cfn-guard over templates (absolute paths) and returns, per template, one line per failed rule and
// resource that no reasoned acknowledgement covers.
func checkGuard(guard, rules string, templates []string) (map[string][]string, error) {
	findings := map[string][]string{}
	suppressed := map[string]map[string]map[string]bool{} // template -> rule -> logical ids
	for _, t := range templates {
		sup, problems, err := guardSuppressions(t)
		if err != nil {
			return nil, err
		}
		suppressed[t] = sup
		findings[t] = append(findings[t], problems...)
	}
	args := []string{"validate", "--rules", rules, "-z", "-o", "json", "-S", "none"}
	for _, t := range templates {
		args = append(args, "--data", t)
	}
	cmd := exec.Command(guard, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 19) { // 19: validation failures
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var results []struct {
		Name         string `json:"name"`
		NotCompliant []struct {
			Rule json.RawMessage `json:"Rule"`
		} `json:"not_compliant"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		return nil, fmt.Errorf("read cfn-guard output: %v", err)
	}
	for _, r := range results {
		for _, nc := range r.NotCompliant {
			var rule struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(nc.Rule, &rule)
			name := strings.ToUpper(rule.Name)
			var open []string
			for _, id := range resourcesIn(nc.Rule) {
				if !suppressed[r.Name][name][id] {
					open = append(open, id)
				}
			}
			if len(open) > 0 {
				findings[r.Name] = append(findings[r.Name], fmt.Sprintf("%s: cfn-guard %s on %s", filepath.Base(r.Name), name, strings.Join(open, ", ")))
			}
		}
	}
	for t := range findings {
		sort.Strings(findings[t])
	}
	return findings, nil
}

// checkIoTPolicies applies the policies package's rules to every AWS::IoT::Policy of every template in dir.
func checkIoTPolicies(dir string, broad bool) ([]string, error) {
	templates, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil {
		return nil, err
	}
	var findings []string
	for _, t := range templates {
		f, err := checkIoTPolicyFile(t, broad)
		if err != nil {
			return nil, err
		}
		findings = append(findings, f...)
	}
	return findings, nil
}

// checkIoTPolicyFile applies the IoT policy rules to one template.
func checkIoTPolicyFile(t string, broad bool) ([]string, error) {
	data, err := os.ReadFile(t)
	if err != nil {
		return nil, err
	}
	var findings []string
	if _, err := policies.CheckTemplate(data, policies.CheckOptions{AllowBroad: broad}); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			findings = append(findings, fmt.Sprintf("%s: iot policy %s", filepath.Base(t), line))
		}
	}
	return findings, nil
}

// allowBroad mirrors the app: -c allow_broad_policy=true lets a broad IoT policy through, on purpose.
func allowBroad(context []string) bool {
	for _, c := range context {
		if c == "allow_broad_policy=true" {
			return true
		}
	}
	return false
}

// guardSuppressions reads the cfn-guard acknowledgements of a template: rule (upper case) -> logical ids. cfn-guard
// 3.1.1 and the Control Tower rules have no resource-level suppression of their own, so the check applies
// Metadata.guard.SuppressedRules itself, and refuses one without a reason in Metadata.guard.Reasons.
func guardSuppressions(path string) (map[string]map[string]bool, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var tpl struct {
		Resources map[string]struct {
			Metadata struct {
				Guard struct {
					SuppressedRules []string          `json:"SuppressedRules"`
					Reasons         map[string]string `json:"Reasons"`
				} `json:"guard"`
			} `json:"Metadata"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(data, &tpl); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	sup := map[string]map[string]bool{}
	var problems []string
	for id, r := range tpl.Resources {
		for _, rule := range r.Metadata.Guard.SuppressedRules {
			if len(strings.TrimSpace(r.Metadata.Guard.Reasons[rule])) < 10 {
				problems = append(problems, fmt.Sprintf("%s: cfn-guard %s is acknowledged on %s without a reason", filepath.Base(path), rule, id))
				continue
			}
			if sup[rule] == nil {
				sup[rule] = map[string]bool{}
			}
			sup[rule][id] = true
		}
	}
	sort.Strings(problems)
	return sup, problems, nil
}

// resourcesIn collects the logical ids that a cfn-guard result points at.
func resourcesIn(raw json.RawMessage) []string {
	seen := map[string]bool{}
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch t := v.(type) {
		case map[string]interface{}:
			for k, e := range t {
				if s, ok := e.(string); ok && k == "path" && strings.HasPrefix(s, "/Resources/") {
					seen[strings.SplitN(strings.TrimPrefix(s, "/Resources/"), "/", 2)[0]] = true
				}
				walk(e)
			}
		case []interface{}:
			for _, e := range t {
				walk(e)
			}
		}
	}
	var v interface{}
	_ = json.Unmarshal(raw, &v)
	walk(v)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func filterCases(all []synthCase, names []string) []synthCase {
	var out []synthCase
	for _, c := range all {
		for _, n := range names {
			if c.Name == strings.TrimSpace(n) {
				out = append(out, c)
			}
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func indent(b []byte) []byte {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("go.mod not found above the working directory")
		}
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// caseResult is one case's synth.
type caseResult struct {
	c       synthCase
	dir     string
	context []string
	out     []byte
	err     error
	took    time.Duration
}

// prebuild builds what the app command of cdk.json (scripts/cdk-app.sh) builds, once; the cases then run it with
// IOTCERT_PREBUILT=1.
func prebuild(root string) ([]byte, error) {
	cmd := exec.Command("bash", "-c", "GOFLAGS= go build -o build/app . && scripts/build-lambdas.sh")
	cmd.Dir = root
	return cmd.CombinedOutput()
}

// checkTemplates runs cfn-guard (in up to jobs processes) and the IoT policy rules over every distinct template of
// the cases' assemblies, and returns each case's findings, the number of distinct templates and of all templates.
func checkTemplates(root, guard, rules string, results []caseResult, jobs int) (map[string][]string, int, int, error) {
	type tpl struct {
		path  string
		broad bool
		cases []string
	}
	byKey := map[string]*tpl{}
	var order []string
	total := 0
	for _, r := range results {
		abs, err := filepath.Abs(r.dir)
		if err != nil {
			return nil, 0, 0, err
		}
		// Absolute paths: cfn-guard names each result by the absolute path of its data file.
		files, _ := filepath.Glob(filepath.Join(abs, "*.template.json"))
		if len(files) == 0 && r.err == nil {
			return nil, 0, 0, fmt.Errorf("no templates in %s", r.dir)
		}
		broad := allowBroad(r.context)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, 0, 0, err
			}
			total++
			sum := sha256.Sum256(data)
			key := fmt.Sprintf("%x-%v", sum, broad)
			if byKey[key] == nil {
				byKey[key] = &tpl{path: f, broad: broad}
				order = append(order, key)
			}
			byKey[key].cases = append(byKey[key].cases, r.c.Name)
		}
	}
	// Largest first, dealt round-robin: the batches take about the same time.
	sort.SliceStable(order, func(i, j int) bool { return fileSize(byKey[order[i]].path) > fileSize(byKey[order[j]].path) })
	jobs = max(min(jobs, len(order)), 1)
	batches := make([][]string, jobs)
	for i, k := range order {
		batches[i%jobs] = append(batches[i%jobs], byKey[k].path)
	}
	found := map[string][]string{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, b := range batches {
		if len(b) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := checkGuard(guard, rules, b)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			for k, v := range f {
				found[k] = v
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, 0, 0, firstErr
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return nil, 0, 0, err
	}
	listed := uninstallNames(readme)
	perCase := map[string][]string{}
	for _, k := range order {
		t := byKey[k]
		lines := found[t.path]
		p, err := checkIoTPolicyFile(t.path, t.broad)
		if err != nil {
			return nil, 0, 0, err
		}
		lines = append(lines, p...)
		r, err := retainedNames(t.path, listed)
		if err != nil {
			return nil, 0, 0, err
		}
		lines = append(lines, r...)
		for _, c := range t.cases {
			perCase[c] = append(perCase[c], lines...)
		}
	}
	return perCase, len(order), total, nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// retainedNames returns, for a template, one line per resource that `cdk destroy` keeps (DeletionPolicy Retain) under
// a fixed name (a literal *Name property): such a resource blocks deploying the stack again, so the README's Uninstall
// section must name it. listed reports whether the section lists a name.
func retainedNames(path string, listed func(string) bool) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tpl struct {
		Resources map[string]struct {
			Type           string                 `json:"Type"`
			DeletionPolicy string                 `json:"DeletionPolicy"`
			Properties     map[string]interface{} `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(data, &tpl); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var out []string
	for id, r := range tpl.Resources {
		if r.DeletionPolicy != "Retain" && r.DeletionPolicy != "RetainExceptOnCreate" {
			continue
		}
		for k, v := range r.Properties {
			if name, ok := v.(string); ok && strings.HasSuffix(k, "Name") && !listed(name) {
				out = append(out, fmt.Sprintf("%s: %s (%s) keeps its fixed %s %q after cdk destroy, and the README's Uninstall section does not list it",
					filepath.Base(path), id, r.Type, k, name))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// uninstallNames reads the names the README's "## Uninstall" section lists in backticks; a placeholder such as
// `certificates-<rotation_name>` matches any value in its place.
func uninstallNames(readme []byte) func(string) bool {
	text := string(readme)
	if i := strings.Index(text, "\n## Uninstall\n"); i >= 0 {
		text = text[i+1:]
		if j := strings.Index(text[3:], "\n## "); j >= 0 {
			text = text[:j+3]
		}
	} else {
		text = ""
	}
	var patterns []*regexp.Regexp
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(text, -1) {
		parts := regexp.MustCompile(`<[^>]+>`).Split(m[1], -1)
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		patterns = append(patterns, regexp.MustCompile("^"+strings.Join(parts, ".+")+"$"))
	}
	return func(name string) bool {
		for _, p := range patterns {
			if p.MatchString(name) {
				return true
			}
		}
		return false
	}
}

// missingCostLines names each stack of an assembly that holds an AWS Private CA whose cost line ("cost: <stack> holds
// a … AWS Private CA: USD … a month") the synth did not print.
func missingCostLines(dir string, out []byte) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.template.json"))
	var missing []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(data, []byte(`"AWS::ACMPCA::CertificateAuthority"`)) {
			continue
		}
		stack := strings.TrimSuffix(filepath.Base(f), ".template.json")
		if !regexp.MustCompile(`(?m)^cost: ` + regexp.QuoteMeta(stack) + ` holds a [a-z-]+ AWS Private CA: USD [0-9]+ a month`).Match(out) {
			missing = append(missing, fmt.Sprintf("%s: holds an AWS Private CA, and the synth did not print its cost line", stack))
		}
	}
	return missing
}
