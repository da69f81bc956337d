package selection

import (
	"reflect"
	"strings"
	"testing"
)

func lookup(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ctx     map[string]string
		env     map[string]string
		want    Selection
		wantErr string
	}{
		{name: "nothing selects the platform", want: Selection{Kind: Platform}},
		{name: "csr file from context", ctx: map[string]string{"CSR_FILE": "cross-account.csr"},
			want: Selection{Kind: CrossAccount, CSRFile: "cross-account.csr"}},
		{name: "csr file from environment (older seed README)", env: map[string]string{"CSR_FILE": "cross-account.csr"},
			want: Selection{Kind: CrossAccount, CSRFile: "cross-account.csr"}},
		{name: "desired topic", ctx: map[string]string{"DESIRED_TOPIC": "producer1/data"},
			want: Selection{Kind: CrossAccount, DesiredTopic: "producer1/data"}},
		{name: "both is the seed's error", ctx: map[string]string{"CSR_FILE": "a.csr", "DESIRED_TOPIC": "t"}, wantErr: MsgNotBoth},
		{name: "context and environment mixed is still both", ctx: map[string]string{"CSR_FILE": "a.csr"}, env: map[string]string{"DESIRED_TOPIC": "t"}, wantErr: MsgNotBoth},
		{name: "empty csr is the seed's error", ctx: map[string]string{"CSR_FILE": " "}, wantErr: MsgCSROrTopic},
		{name: "DESTROY=1 in the environment (destroy.sh)", env: map[string]string{"DESTROY": "1"},
			want: Selection{Kind: CrossAccount, Destroy: true}},
		{name: "DESTROY in context", ctx: map[string]string{"DESTROY": "1"}, want: Selection{Kind: CrossAccount, Destroy: true}},
		{name: "DESTROY with a csr still destroys", ctx: map[string]string{"DESTROY": "true", "CSR_FILE": "a.csr"},
			want: Selection{Kind: CrossAccount, Destroy: true}},
		// As the seed: DESTROY selects the cross-account stack whenever it has a value, so `DESTROY=false cdk destroy`
		// can never target the platform stacks.
		{name: "DESTROY=0 still destroys the cross-account stack", env: map[string]string{"DESTROY": "0"}, want: Selection{Kind: CrossAccount, Destroy: true}},
		{name: "DESTROY=false still destroys the cross-account stack", env: map[string]string{"DESTROY": "false"}, want: Selection{Kind: CrossAccount, Destroy: true}},
		{name: "-c DESTROY=no still destroys the cross-account stack", ctx: map[string]string{"DESTROY": "no"}, want: Selection{Kind: CrossAccount, Destroy: true}},
		{name: "empty DESTROY selects nothing", env: map[string]string{"DESTROY": ""}, wantErr: "DESTROY is set but empty"},
		{name: "empty -c DESTROY selects nothing", ctx: map[string]string{"DESTROY": " "}, wantErr: "DESTROY is set but empty"},
		{name: "thing", ctx: map[string]string{"thing_name": "device1234"}, want: Selection{Kind: Thing, ThingName: "device1234"}},
		{name: "bad thing name", ctx: map[string]string{"thing_name": "bad name"}, wantErr: `context thing_name: thing name "bad name" is not valid`},
		{name: "empty thing name", ctx: map[string]string{"thing_name": ""}, wantErr: "context thing_name: thing name must not be empty"},
		{name: "thing and csr contradict", ctx: map[string]string{"thing_name": "d1", "CSR_FILE": "a.csr"},
			wantErr: "context CSR_FILE (the cross-account stack) and thing_name (per-thing stacks) select different apps"},
		{name: "thing and DESTROY env contradict", ctx: map[string]string{"thing_name": "d1"}, env: map[string]string{"DESTROY": "1"},
			wantErr: "context DESTROY (the cross-account stack) and thing_name"},
		{name: "fleet", ctx: map[string]string{"thing_names": "a, b,c"}, want: Selection{Kind: Fleet, ThingNames: []string{"a", "b", "c"}}},
		{name: "fleet duplicate", ctx: map[string]string{"thing_names": "a,b,a"}, wantErr: `thing name "a" is listed twice`},
		{name: "fleet and thing", ctx: map[string]string{"thing_names": "a", "thing_name": "b"}, wantErr: "context thing_name, thing_names each select per-thing stacks"},
		{name: "fleet file", ctx: map[string]string{"thing_names_file": "fleet.txt"}, want: Selection{Kind: Fleet, ThingNamesFile: "fleet.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(lookup(tc.ctx), lookup(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Select() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select() error = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Select() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSplitNamesSkipsCommentsAndBlanks(t *testing.T) {
	got, err := SplitNames("# fleet\nsensor-1\n\nsensor-2\r\n")
	if err != nil || !reflect.DeepEqual(got, []string{"sensor-1", "sensor-2"}) {
		t.Errorf("SplitNames() = %v, %v, want [sensor-1 sensor-2]", got, err)
	}
	if _, err := SplitNames(" , "); err == nil {
		t.Errorf("SplitNames(blank) = nil error, want one")
	}
}
