package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/iotcert/iotcert/internal/selection"
)

// requestedStacks returns the stack names the cdk command that runs the app was asked for (`cdk deploy CertRotation`),
// read from the command lines of the app's parent processes (Linux /proc), or nil when they are not known there: the
// CLI tells the app nothing of them, and only checks the names after a full synth.
func requestedStacks() []string {
	pid := os.Getppid()
	for depth := 0; depth < 4 && pid > 1; depth++ {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return nil
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if names, ok := selection.RequestedStacks(argv); ok {
			return names
		}
		pid = parentOf(pid)
	}
	return nil
}

// parentOf reads a process's parent id from /proc/<pid>/stat (the field after the parenthesised command name).
func parentOf(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	var state string
	var ppid int
	if _, err := fmt.Sscanf(string(raw[i+1:]), " %s %d", &state, &ppid); err != nil {
		return 0
	}
	return ppid
}
