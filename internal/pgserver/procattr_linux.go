package pgserver

import "syscall"

// sysProcAttr puts the child in its own process group, so a terminal Ctrl-C
// reaches only our process, which then stops postgres in order. If our
// process dies without doing so (SIGKILL, OOM kill, crash), the kernel sends
// the postmaster SIGQUIT: PostgreSQL's immediate shutdown, in which the
// postmaster takes its backends down with it before exiting. SIGKILL would
// orphan those backends until they noticed; the WAL makes the skipped
// checkpoint harmless (crash recovery on the next start).
//
// Pdeathsig fires when the OS thread that forked the child exits. Go only
// ends threads whose goroutine exits while locked to them, and Start never
// runs on such a thread, so in practice this is process death.
func sysProcAttr(owner *runAs) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGQUIT,
	}
	if owner != nil {
		// The kernel clears a parent-death signal on a credential change;
		// Go sets it after setuid, so it survives.
		attr.Credential = owner.credential()
	}
	return attr
}
