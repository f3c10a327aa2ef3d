//go:build unix && !linux

package testenv

import "syscall"

// stripeMockProcAttr gives stripe-mock its own process group, so stop can
// kill all of it. This platform has no parent-death signal: a test binary
// killed before Main stops stripe-mock leaves it running.
func stripeMockProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
