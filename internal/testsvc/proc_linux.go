package testsvc

import "syscall"

// sysProcAttr makes the kernel kill the server when the thread that started it exits. startProcess keeps that thread
// alive (locked to its goroutine) for as long as the server runs, so in effect the server dies with the test process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
