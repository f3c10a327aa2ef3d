//go:build unix && !linux

package testenv

import "syscall"

// childProcAttr gives a child (stripe-mock, the Temporal server) its own process group, so stop can
// kill all of it. This platform has no parent-death signal: a test binary
// killed before Main stops stripe-mock leaves it running (the Temporal
// server still exits, when its stdin closes).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
