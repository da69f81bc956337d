package main

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCopyFiltered(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"our error line keeps its newline", "error: bad\n", "error: bad\n"},
		{"a last line gets a newline", "error: bad", "error: bad\n"},
		{"jsii's exit race after a good synth", jsiiExitRace, ""},
		{"jsii's exit race after our error runs into nothing", "error: bad\n" + jsiiExitRace, "error: bad\n"},
		{"jsii's exit race glued before a line", jsiiExitRace + "warning: x\n", "warning: x\n"},
		{"jsii's runtime position", "../jsii-runtime.1234/lib/program.js:1:5565\nerror: bad\n", "error: bad\n"},
		{"Node's own warnings stay", "(node:1) Warning: something\n", "(node:1) Warning: something\n"},
		{"a message naming program.js stays", "error: see program.js:1 for details\n", "error: see program.js:1 for details\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			copyFiltered(&out, iotest.OneByteReader(strings.NewReader(tc.in)))
			if out.String() != tc.want {
				t.Errorf("copyFiltered(%q) = %q, want %q", tc.in, out.String(), tc.want)
			}
		})
	}
}
