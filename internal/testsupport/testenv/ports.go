package testenv

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/freeport"
)

// FreePort returns a free TCP port on 127.0.0.1 for a server to be told
// before it listens, from below the kernel's ephemeral range, where no
// outgoing connection takes it in the meantime (internal/freeport).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Pick("127.0.0.1")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// PortHold keeps a stopped server's port while the server is down, so that
// no other process (another package's tests pick ports from the same
// range) takes it before the server starts again on it.
type PortHold struct {
	l    net.Listener
	done chan struct{}
}

// HoldPort listens on 127.0.0.1:port until Release, and resets every
// connection it accepts at once, so a client still finds the server down
// (a reset instead of a refusal: only a listener keeps the port from
// others while the stopped server's closed connections linger in
// TIME_WAIT). Call it once the server on port has stopped, and Release
// right before starting it again. The server's process may close its
// socket a moment after the process Stop and Kill wait for, so the hold
// waits up to holdWait for the port; a hold it cannot take is logged and
// skipped. The test's cleanup releases a hold still taken.
func HoldPort(t testing.TB, port int) *PortHold {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(holdWait)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			h := &PortHold{l: l, done: make(chan struct{})}
			go h.reset()
			t.Cleanup(h.Release)
			return h
		}
		if time.Now().After(deadline) {
			t.Logf("testenv: could not hold port %d of a stopped server: %v", port, err)
			return &PortHold{}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holdWait bounds how long HoldPort waits for a stopped server's port.
const holdWait = 5 * time.Second

// reset closes every connection the hold accepts with a TCP reset, until
// Release closes the listener.
func (h *PortHold) reset() {
	defer close(h.done)
	for {
		c, err := h.l.Accept()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Release frees the port once nothing of the hold is left; it is safe to
// call more than once.
func (h *PortHold) Release() {
	if h == nil || h.l == nil {
		return
	}
	_ = h.l.Close()
	<-h.done
	h.l = nil
}
