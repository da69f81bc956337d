package selection

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No command in the README deploys a stack the reader did not ask for: none names --all, and every `cdk deploy`
// names its stacks or gives the context that selects a single-purpose app.
func TestREADMEDeploysOnlyWhatIsAsked(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "--all") {
			t.Errorf("README.md:%d names --all: %q", i+1, line)
		}
	}
	// A command runs to the end of its code span, or of its line in a code block.
	re := regexp.MustCompile("cdk deploy([^`\n]*)")
	found := 0
	for _, ix := range re.FindAllStringSubmatchIndex(text, -1) {
		args := text[ix[2]:ix[3]]
		if strings.TrimSpace(args) == "" && ix[1] < len(text) && text[ix[1]] == '`' {
			continue // the command's name in prose ("give it on every `cdk deploy`"), not a command to run
		}
		found++
		if !deploysWhatIsNamed(strings.Fields(args)) {
			t.Errorf("README command %q names no stack and no selecting context", "cdk deploy"+args)
		}
	}
	if found < 5 {
		t.Errorf("README has %d cdk deploy commands: the scan no longer finds them", found)
	}
}

// deploysWhatIsNamed reports whether cdk deploy's arguments name a stack (a positional argument) or a selecting key.
func deploysWhatIsNamed(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "#" || strings.HasPrefix(a, "#"):
			return false // a comment ends the command
		case a == "-c" || a == "--context" || a == "--profile" || a == "-o" || a == "--app":
			if (a == "-c" || a == "--context") && i+1 < len(args) && selectsOne(args[i+1]) {
				return true
			}
			i++
		case strings.HasPrefix(a, "--context="):
			if selectsOne(strings.TrimPrefix(a, "--context=")) {
				return true
			}
		case strings.HasPrefix(a, "-"), a == "\\", a == "…", a == "...":
		default:
			return true
		}
	}
	return false
}

func selectsOne(kv string) bool {
	k, _, _ := strings.Cut(kv, "=")
	switch k {
	case KeyCSRFile, KeyDesiredTopic, KeyDestroy, KeyThingName, KeyThingNames, KeyThingNamesFile:
		return true
	}
	return false
}
