package reliability

import "syscall"

// childProcAttr makes the kernel SIGKILL a child when the test binary dies,
// so a crashed or timed-out test run leaves no crmflow process behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
