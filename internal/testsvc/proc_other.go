//go:build !linux

package testsvc

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a server outlives a test process that did not call StopAll.
func sysProcAttr() *syscall.SysProcAttr { return nil }
