package selection

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Configuration from cdk.json and the environment is judged like the command line, and the stacks asked for are
// matched before any synth. Each case is one of the ways a newcomer's configuration went wrong without a word.
func TestJudge(t *testing.T) {
	csr, err := os.ReadFile(filepath.Join("..", "..", "testdata", "crossaccount", "cross-account.csr"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"one.csr": csr, "two.csr": append(append([]byte{}, csr...), csr...), "empty.csr": []byte("\n"),
		"text.csr": []byte("not a request\n")}
	readFile := func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	type ctx = map[string]interface{}
	platformDefault := []string{"CertVending-dev", "IotMultiRegion-Primary", "IotMultiRegion-Replica-us-east-1", "CertRotation", "IotDeviceRotation",
		"IotCertOps", "IotCertOps-us-east-1", "IotCertOps-us-west-2"}
	for _, tc := range []struct {
		name      string
		context   ctx
		standing  map[string]string // key -> file
		env       map[string]string
		requested []string
		want      string // error substring; "" means no error
		stacks    []string
	}{
		{name: "a mistyped key in cdk.json", context: ctx{"thing-name": "d1"}, standing: map[string]string{"thing-name": "cdk.json"},
			want: `cdk.json context: "thing-name" is not a context key of this app (did you mean "thing_name"?)`},
		{name: "a foreign key in ~/.cdk.json belongs to another app", context: ctx{"other_app_key": "x"},
			standing: map[string]string{"other_app_key": "~/.cdk.json"}, stacks: platformDefault},
		{name: "a multi-region key with the rotation stack", context: ctx{"provisioning": "jitp"}, requested: []string{"CertRotation"},
			want: "context provisioning applies to the multi-region stacks (IotMultiRegion-*), and none of them is asked for here (CertRotation): remove it"},
		{name: "a multi-region key with a multi-region stack", context: ctx{"provisioning": "jitp"}, requested: []string{"IotMultiRegion-*"},
			stacks: platformDefault},
		{name: "validity_days in cdk.json with a thing", context: ctx{"thing_name": "d1", "validity_days": 30.0},
			standing: map[string]string{"validity_days": "cdk.json"},
			want:     "cdk.json context validity_days applies to the cross-account stack (CSR_FILE, DESIRED_TOPIC, DESTROY), not to the per-thing stack selected here by thing_name: remove it from cdk.json, or give it with -c when you deploy the cross-account stack"},
		{name: "seed 001's cdk.json with a typed CSR_FILE", context: ctx{"CSR_FILE": "one.csr", "thing_name": "pool1", "policy_file": "policy.json", "region": "us-east-2"},
			standing: map[string]string{"thing_name": "cdk.json", "policy_file": "cdk.json", "region": "cdk.json"}, stacks: []string{"certificate-based-stack"}},
		{name: "nag=flase", context: ctx{"nag": "flase"}, want: `context nag must be true or false, got "flase"`},
		{name: "an empty replica_regions", context: ctx{"replica_regions": ""},
			want: "context replica_regions is given but empty: give a value, or leave the key out for its default"},
		{name: "an empty key in cdk.json", context: ctx{"thing_name": "d1", "key_algorithm": " "}, standing: map[string]string{"key_algorithm": "cdk.json"},
			want: "cdk.json context key_algorithm is given but empty"},
		{name: "a region that does not exist (thing)", context: ctx{"thing_name": "d1", "region": "eu-west-9"},
			want: `context region: "eu-west-9" is not an AWS Region (did you mean "eu-west-1"?)`},
		{name: "a replica region that does not exist", context: ctx{"replica_regions": "us-east-1,eu-west-9"},
			want: `context replica_regions: "eu-west-9" is not an AWS Region`},
		{name: "a primary region that does not exist", context: ctx{"primary_region": "mars-1"},
			want: `context primary_region: "mars-1" is not an AWS Region (a Region name looks like us-east-1 or eu-west-1)`},
		{name: "primary_region on the default replica", context: ctx{"primary_region": "us-east-1"},
			want: "context primary_region is us-east-1, the default replica region (replica_regions defaults to us-east-1, since the default primary is us-west-2): give the replicas too, e.g. -c replica_regions=us-west-2"},
		{name: "a replica on the default primary", context: ctx{"replica_regions": "us-west-2"},
			want: `context replica_regions: "us-west-2" is the default primary_region; a replica needs a region of its own`},
		{name: "a CSR file with two requests", context: ctx{"CSR_FILE": "two.csr"},
			want: `CSR_FILE "two.csr" holds 2 PEM blocks: give a file with exactly one certificate signing request`},
		{name: "an empty CSR file", context: ctx{"CSR_FILE": "empty.csr"}, want: `CSR_FILE "empty.csr" is empty`},
		{name: "a CSR file without PEM", context: ctx{"CSR_FILE": "text.csr"}, want: `CSR_FILE "text.csr" holds no PEM block`},
		{name: "a missing CSR file", context: ctx{"CSR_FILE": "missing.csr"}, want: `CSR_FILE "missing.csr": file does not exist`},
		{name: "DESTROY in the environment hides the platform", env: map[string]string{"DESTROY": "1"}, requested: []string{"CertVending-dev"},
			want: `no stack matches "CertVending-dev": DESTROY in the environment selects certificate-based-stack; CertVending-dev is a platform stack: unset DESTROY to reach the platform stacks`},
		{name: "a standing thing_name hides the platform", context: ctx{"thing_name": "pool1"}, standing: map[string]string{"thing_name": "cdk.json"},
			requested: []string{"CertVending-dev"},
			want:      `no stack matches "CertVending-dev": thing_name in cdk.json selects pool1; CertVending-dev is a platform stack: remove thing_name from cdk.json to reach the platform stacks`},
		{name: "a mistyped stack name", requested: []string{"CertVendng-dev"},
			want: `no stack matches "CertVendng-dev": no selecting key (CSR_FILE, DESIRED_TOPIC, DESTROY, thing_name, thing_names, thing_names_file) selects CertVending-dev, IotMultiRegion-Primary, IotMultiRegion-Replica-us-east-1, CertRotation, IotDeviceRotation, IotCertOps, IotCertOps-us-east-1, IotCertOps-us-west-2 (did you mean "CertVending-dev"?)`},
		{name: "region with the platform says what to do instead", context: ctx{"region": "eu-west-1"},
			want: "not to the platform stacks selected here (no CSR_FILE, DESIRED_TOPIC, DESTROY or thing_name given): remove it; instead, the platform stacks take their region from the deploying environment (AWS_REGION, or the profile's region), and the multi-region stacks from primary_region and replica_regions: run with AWS_REGION=<region>, or give -c primary_region=<region>"},
		{name: "named vending environments and a named rotation stack", context: ctx{"environments": ctx{"prod": ctx{}, "old": nil}, "rotation_name": "blue",
			"replica_regions": []interface{}{"eu-west-1", "ap-south-1"}}, standing: map[string]string{"environments": "cdk.json"},
			stacks: []string{"CertVending-prod", "IotMultiRegion-Primary", "IotMultiRegion-Replica-eu-west-1", "IotMultiRegion-Replica-ap-south-1", "CertRotation-blue",
				"IotDeviceRotation", "IotCertOps", "IotCertOps-ap-south-1", "IotCertOps-eu-west-1", "IotCertOps-us-west-2"}},
		{name: "operations stacks for two capabilities", context: ctx{"ops_capabilities": "C,D"},
			stacks: []string{"CertVending-dev", "IotMultiRegion-Primary", "IotMultiRegion-Replica-us-east-1", "CertRotation", "IotDeviceRotation",
				"IotCertOps", "IotCertOps-us-east-1", "IotCertOps-us-west-2"}},
		{name: "operations stacks for the host rotation alone", context: ctx{"ops_capabilities": "E"},
			stacks: []string{"CertVending-dev", "IotMultiRegion-Primary", "IotMultiRegion-Replica-us-east-1", "CertRotation", "IotDeviceRotation", "IotCertOps"}},
		{name: "fleet stacks", context: ctx{"thing_names": "a,b,c", "fleet_stacks": "2", "fleet_name": "f"}, stacks: []string{"f-1", "f-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Judge(Input{Context: tc.context, Standing: tc.standing, Env: lookup(tc.env), ReadFile: readFile, Requested: tc.requested})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Judge() = %v, want one line containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Judge() = %v, want no error", err)
			}
			var got []string
			for _, s := range j.Stacks {
				got = append(got, s.Name)
			}
			if tc.stacks != nil && !reflect.DeepEqual(got, tc.stacks) {
				t.Errorf("stacks = %v, want %v", got, tc.stacks)
			}
		})
	}
}

// The stack names a cdk command line asks for; anything that cannot be read with certainty is "not known".
func TestRequestedStacks(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want []string
		ok   bool
	}{
		{[]string{"node", "/x/node_modules/.bin/cdk", "deploy", "CertRotation"}, []string{"CertRotation"}, true},
		{[]string{"node", "/x/aws-cdk/bin/cdk", "synth", "-c", "thing_name=d1", "--profile", "p", "d1", "--quiet"}, []string{"d1"}, true},
		{[]string{"node", "cdk", "deploy", "--all", "-c", "x=y"}, nil, true},
		{[]string{"node", "cdk", "synth", "--context=a=b", "--no-notices", "-o", "out"}, nil, true},
		{[]string{"node", "cdk", "deploy", "--rollback", "false", "A", "B"}, []string{"A", "B"}, true},
		{[]string{"node", "cdk", "deploy", "--parameters", "P=1", "A"}, nil, false},
		{[]string{"node", "cdk", "ls"}, nil, false},
		{[]string{"bash", "scripts/cdk-app.sh"}, nil, false},
		{[]string{"node", "cdk", "--profile", "p"}, nil, false},
	} {
		got, ok := RequestedStacks(tc.argv)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RequestedStacks(%q) = %q, %v; want %q, %v", tc.argv, got, ok, tc.want, tc.ok)
		}
	}
}

// Asking for a replica asks for the primary too (the CLI deploys a stack's dependencies), with its Private CA's cost.
func TestRequestedIncludesDependencies(t *testing.T) {
	j, err := Judge(Input{Requested: []string{"IotMultiRegion-Replica-us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range j.Requested {
		got = append(got, s.Name+"/"+s.PrivateCA)
	}
	if want := []string{"IotMultiRegion-Replica-us-east-1/", "IotMultiRegion-Primary/general-purpose"}; !reflect.DeepEqual(got, want) {
		t.Errorf("requested = %v, want %v", got, want)
	}
}

// Every stack with a Private CA says its cost; the figures are the pricing page's.
func TestStackCosts(t *testing.T) {
	j, err := Judge(Input{Context: map[string]interface{}{"rotation_ca_mode": "general_purpose"}})
	if err != nil {
		t.Fatal(err)
	}
	monthly := map[string]float64{}
	cas := map[string]string{}
	for _, s := range j.Stacks {
		monthly[s.Name], cas[s.Name] = s.Monthly, s.PrivateCA
		if s.Cost == "" {
			t.Errorf("%s: no cost given", s.Name)
		}
	}
	if monthly["IotMultiRegion-Primary"] != 400 || cas["IotMultiRegion-Primary"] != "general-purpose" {
		t.Errorf("IotMultiRegion-Primary = USD %v (%s CA), want 400 (general-purpose)", monthly["IotMultiRegion-Primary"], cas["IotMultiRegion-Primary"])
	}
	if monthly["CertRotation"] != 401 || cas["CertRotation"] != "general-purpose" {
		t.Errorf("CertRotation (general_purpose) = USD %v, want 401 (CA 400, KMS key 1)", monthly["CertRotation"])
	}
	j, _ = Judge(Input{Context: map[string]interface{}{"ca_certificate_file": "ca.pem"}})
	for _, s := range j.Stacks {
		if s.Name == "IotMultiRegion-Primary" && (s.Monthly != 0 || s.PrivateCA != "") {
			t.Errorf("with the operator's CA, IotMultiRegion-Primary = USD %v (%q CA), want 0 and none", s.Monthly, s.PrivateCA)
		}
		if s.Name == "CertRotation" && s.Monthly != 51 {
			t.Errorf("CertRotation (short-lived) = USD %v, want 51", s.Monthly)
		}
	}
}

// Every platform key belongs to the capability that reads it, so `cdk deploy <stack> -c <key>` can be judged.
func TestPlatformKeysHaveACapability(t *testing.T) {
	owner := map[string]string{}
	for _, p := range PlatformStacks {
		for _, k := range p.Keys {
			if key, ok := LookupKey(k); !ok || key.For&ForPlatform == 0 {
				t.Errorf("%s lists %q, which is not a platform key", p.Capability, k)
			}
			if owner[k] != "" {
				t.Errorf("%q is listed by %s and %s", k, owner[k], p.Capability)
			}
			owner[k] = p.Capability
		}
	}
}
