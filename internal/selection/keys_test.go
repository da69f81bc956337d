package selection

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typed   []string
		kind    Kind
		wantErr []string // each must be in the one-line error; none means no error
	}{
		{name: "no keys", kind: Platform},
		{name: "thing keys with a thing", typed: []string{"thing_name", "policy_file", "region", "key_algorithm"}, kind: Thing},
		{name: "cross-account keys", typed: []string{"CSR_FILE", "validity_days", "producer", "nag"}, kind: CrossAccount},
		{name: "fleet keys", typed: []string{"thing_names", "fleet_stacks", "policy_file"}, kind: Fleet},
		{name: "platform keys coming with the new stacks", typed: []string{"primary_region", "SNSSubscriberEmail"}, kind: Platform},
		{name: "hyphen typo", typed: []string{"thing-name"}, kind: Platform,
			wantErr: []string{`"thing-name" is not a context key of this app (did you mean "thing_name"?)`}},
		{name: "case typo", typed: []string{"CSR_file"}, kind: Platform,
			wantErr: []string{`"CSR_file" is not a context key of this app (did you mean "CSR_FILE"?)`}},
		{name: "every unknown key at once", typed: []string{"validty_days", "zzzzzzzzzzzz", "CSR_FILE"}, kind: CrossAccount,
			wantErr: []string{`"validty_days" is not a context key of this app (did you mean "validity_days"?)`, `"zzzzzzzzzzzz" is not a context key of this app;`}},
		{name: "validity_days with a thing", typed: []string{"thing_name", "validity_days"}, kind: Thing,
			wantErr: []string{"context validity_days applies to the cross-account stack (CSR_FILE, DESIRED_TOPIC, DESTROY), not to the per-thing stack selected here by thing_name: remove it"}},
		{name: "policy_file with a CSR", typed: []string{"CSR_FILE", "policy_file"}, kind: CrossAccount,
			wantErr: []string{"context policy_file applies to per-thing and fleet stacks (thing_name, thing_names, thing_names_file), not to the cross-account stack"}},
		{name: "fleet key with one thing", typed: []string{"thing_name", "fleet_stacks"}, kind: Thing,
			wantErr: []string{"fleet_stacks applies to fleet stacks"}},
		{name: "vending key with a thing", typed: []string{"thing_name", "environments"}, kind: Thing,
			wantErr: []string{"environments applies to the platform stacks"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeys(tc.typed, tc.kind)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("CheckKeys(%v, %v) = %v, want nil", tc.typed, tc.kind, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckKeys(%v, %v) = nil, want an error", tc.typed, tc.kind)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("CheckKeys error spans lines: %q", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckKeys(%v, %v) = %q, want it to contain %q", tc.typed, tc.kind, err, w)
				}
			}
		})
	}
}

func TestClosest(t *testing.T) {
	for in, want := range map[string]string{
		"thing-name": "thing_name", "CSR_file": "CSR_FILE", "csr_file": "CSR_FILE", "desired_topic": "DESIRED_TOPIC",
		"policyfile": "policy_file", "validity": "", "x": "", "environment": "environments", "fleet_stack": "fleet_stacks",
	} {
		if got := Closest(in); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeysRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys {
		if seen[k.Name] {
			t.Errorf("key %q is registered twice", k.Name)
		}
		seen[k.Name] = true
		if k.For == 0 || k.For&^ForAll != 0 || k.Doc == "" || IsCDKKey(k.Name) {
			t.Errorf("key %+v: want a selection, a description and a name that is not the CDK's", k)
		}
	}
}

func TestStandingAndTypedKeys(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "cdk.json"), `{"app": "x", "context": {"environments": {"dev": null}, "thing_name": "default-thing", "@aws-cdk/core:checkSecretUsage": true}}`)
	write(filepath.Join(home, ".cdk.json"), `{"context": {"policy_file": "mine.json"}}`)
	standing, err := StandingKeys(dir, home)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"environments", "thing_name", "policy_file", "@aws-cdk/core:checkSecretUsage", "aws:cdk:enable-path-metadata",
		"availability-zones:account=1:region=eu-west-1", "validity_days", "thing-name"}
	got := TypedKeys(all, standing)
	sort.Strings(got)
	if want := []string{"thing-name", "validity_days"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TypedKeys() = %v, want %v", got, want)
	}
	// Standing configuration of one capability is no error when another is selected.
	if err := CheckKeys(TypedKeys([]string{"environments", "thing_name", "policy_file", "CSR_FILE"}, standing), CrossAccount); err != nil {
		t.Errorf("CheckKeys with standing keys = %v, want nil", err)
	}
	if _, err := StandingKeys(t.TempDir(), ""); err != nil {
		t.Errorf("StandingKeys without files = %v, want nil", err)
	}
	write(filepath.Join(dir, "cdk.json"), `{"context": `)
	if _, err := StandingKeys(dir, ""); err == nil || !strings.Contains(err.Error(), "cdk.json") {
		t.Errorf("StandingKeys(bad cdk.json) = %v, want an error naming cdk.json", err)
	}
}

// Every context key the app's source reads is registered: a stack that reads a key the registry does not know would
// make main refuse that key as unknown. The scan resolves the constant passed to every context accessor (ctx(…),
// optString/optBool/optInt(ctx, …), TryGetContext(jsii.String(…))) and every ctx* constant in the stacks package.
func TestEveryContextKeyReadIsRegistered(t *testing.T) {
	root := filepath.Join("..", "..")
	consts := map[string]string{} // identifier (or pkg.identifier) → string value
	var files []*ast.File
	fset := token.NewFileSet()
	parse := func(dir, pkg string) {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								v, _ := strconv.Unquote(lit.Value)
								consts[pkg+n.Name] = v
							}
						}
					}
				}
			}
			if pkg != "selection." {
				files = append(files, f)
			}
		}
	}
	parse(".", "selection.")
	parse(filepath.Join(root, "stacks"), "")
	parse(root, "main.")
	var resolve func(e ast.Expr) (string, bool)
	resolve = func(e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.BasicLit:
			if x.Kind == token.STRING {
				v, err := strconv.Unquote(x.Value)
				return v, err == nil
			}
		case *ast.Ident:
			v, ok := consts[x.Name]
			return v, ok
		case *ast.SelectorExpr:
			if p, ok := x.X.(*ast.Ident); ok {
				v, ok := consts[p.Name+"."+x.Sel.Name]
				return v, ok
			}
		case *ast.CallExpr: // jsii.String("key")
			if len(x.Args) == 1 {
				return resolve(x.Args[0])
			}
		}
		return "", false
	}
	read := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name string
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			if name != "ctx" && name != "TryGetContext" && !strings.HasPrefix(name, "opt") {
				return true
			}
			for _, a := range call.Args {
				if v, ok := resolve(a); ok {
					read[v] = true
					break
				}
			}
			return true
		})
	}
	for id, v := range consts {
		if strings.HasPrefix(id, "ctx") {
			read[v] = true
		}
	}
	if len(read) < 15 {
		t.Fatalf("found only %d context keys read in stacks/ and main.go (%v): the scan is broken", len(read), read)
	}
	for k := range read {
		if _, ok := LookupKey(k); !ok && !IsCDKKey(k) {
			t.Errorf("context key %q is read by the app but not registered in Keys (internal/selection/keys.go)", k)
		}
	}
}

func TestPreferTyped(t *testing.T) {
	standing := map[string]bool{"thing_name": true, "policy_file": true}
	for _, tc := range []struct {
		name string
		ctx  map[string]string
		env  map[string]string
		want Kind
	}{
		{"standing thing_name alone selects the thing", map[string]string{"thing_name": "default"}, nil, Thing},
		{"typed CSR_FILE wins over a standing thing_name", map[string]string{"thing_name": "default", "CSR_FILE": "a.csr"}, nil, CrossAccount},
		{"DESTROY in the environment wins over a standing thing_name", map[string]string{"thing_name": "default"}, map[string]string{"DESTROY": "1"}, CrossAccount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := Select(PreferTyped(lookup(tc.ctx), lookup(tc.env), standing), lookup(tc.env))
			if err != nil || sel.Kind != tc.want {
				t.Errorf("Select(PreferTyped(...)) = %v, %v, want %v", sel.Kind, err, tc.want)
			}
		})
	}
	// Two typed selecting keys still contradict.
	if _, err := Select(PreferTyped(lookup(map[string]string{"thing_name": "d", "CSR_FILE": "a.csr"}), lookup(nil), nil), lookup(nil)); err == nil {
		t.Error("typed thing_name and CSR_FILE: want the contradiction error")
	}
}

// The README lists every key the app checks (the unknown-key message points there).
func TestREADMEListsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys {
		if !strings.Contains(string(data), "`"+k.Name+"`") {
			t.Errorf("README.md does not list the context key `%s`", k.Name)
		}
	}
}

func TestCheckUnknownBeforeSelection(t *testing.T) {
	if err := CheckUnknown([]string{"thing_name", "validity_days"}); err != nil {
		t.Errorf("CheckUnknown(known keys) = %v, want nil", err)
	}
	err := CheckUnknown([]string{"DESIRED_topic", "thing_name"})
	if err == nil || !strings.Contains(err.Error(), `"DESIRED_topic" is not a context key of this app (did you mean "DESIRED_TOPIC"?)`) {
		t.Errorf("CheckUnknown(DESIRED_topic) = %v, want the suggestion", err)
	}
}
