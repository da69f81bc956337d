// Package cli gives the project's command-line tools one behaviour: -h (or -help, --help) prints what the tool does,
// every flag with its default and an example on stdout and exits 0; a usage error prints one line and the hint to run
// -h on stderr and exits 2.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ExitUsage is the exit code of a usage error.
const ExitUsage = 2

// Tool describes a command for its help text.
type Tool struct {
	// Name as typed, e.g. "create-csr" or "vend-token add".
	Name string
	// Synopsis lists the forms of the command line, one per line, e.g. "create-csr [-dir DIR] <topic>".
	Synopsis string
	// About says what the tool does, in a few lines.
	About string
	// Examples are command lines a user can copy.
	Examples []string
}

// Parse parses args into fs. When it returns done, the caller exits with code: 0 after printing the help (-h), 2
// after a usage error (one line and the hint). Otherwise the flags are set and the caller goes on.
func (t *Tool) Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		t.Help(stdout, fs)
		return 0, true
	case err != nil:
		return t.UsageError(stderr, "%v", err), true
	}
	return 0, false
}

// UsageError prints "<tool>: <message>" and the hint to run -h, and returns ExitUsage.
func (t *Tool) UsageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n", t.Name, fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "run '%s -h' for help\n", strings.Fields(t.Name)[0])
	return ExitUsage
}

// Help writes the help text: what the tool does, its usage, every flag of each flag set with its default, examples.
func (t *Tool) Help(w io.Writer, sets ...*flag.FlagSet) {
	fmt.Fprintf(w, "%s: %s\n\nusage:\n", t.Name, strings.TrimSpace(t.About))
	for _, line := range strings.Split(strings.TrimSpace(t.Synopsis), "\n") {
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(line))
	}
	for _, fs := range sets {
		if fs == nil {
			continue
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			continue
		}
		title := "flags"
		if len(sets) > 1 {
			title = "flags of " + fs.Name()
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		fs.VisitAll(func(f *flag.Flag) { fmt.Fprint(w, FlagLine(f)) })
	}
	if len(t.Examples) > 0 {
		fmt.Fprintf(w, "\nexample:\n")
		for _, e := range t.Examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// FlagLine describes one flag: its name and value type, then what it does and its default. The default is always
// shown: the flag's default value, "none" for an empty one, or the description's own "(default: …)" where it explains
// more than the value would.
func FlagLine(f *flag.Flag) string {
	typ, usage := flag.UnquoteUsage(f)
	name := "-" + f.Name
	if typ != "" {
		name += " " + typ
	}
	def := f.DefValue
	switch {
	case strings.Contains(usage, "(default") || strings.Contains(usage, "(required)"):
		def = "" // the description says it, better than the zero value would
	case def == "":
		def = " (default: none)"
	default:
		if typ == "string" {
			def = fmt.Sprintf(" (default: %q)", def)
		} else {
			def = fmt.Sprintf(" (default: %s)", def)
		}
	}
	return fmt.Sprintf("  %s\n        %s%s\n", name, usage, def)
}
