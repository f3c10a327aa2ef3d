//go:build unix && !linux

package pgserver

import "syscall"

// sysProcAttr puts the child in its own process group, so a terminal Ctrl-C
// reaches only our process, which then stops postgres in order. This
// platform has no parent-death signal: a hard kill of our process leaves
// postgres running until it is stopped by hand.
func sysProcAttr(owner *runAs) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		attr.Credential = owner.credential()
	}
	return attr
}
