package testenv

import "syscall"

// childProcAttr gives a child (stripe-mock, the Temporal server) its own process group, so stop can
// kill all of it, and a parent-death signal, so a test binary that is killed
// or crashes never leaves it running.
//
// Pdeathsig fires when the OS thread that forked the child exits. Go only
// ends threads whose goroutine exits while locked to them, and tests never
// start stripe-mock from such a thread, so in practice this is process death.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
