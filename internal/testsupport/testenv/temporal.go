package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/freeport"
)

// temporalPackage is the command that runs the embedded Temporal server as
// a process of its own; test binaries start it with `go run`, whose cached
// executable makes every start after the first one cheap.
const temporalPackage = "github.com/crmflow/crmflow/internal/temporalserver/standalone"

// temporalStartTimeout covers building the server on a cold build cache,
// where `go run` compiles and links it before it starts.
const temporalStartTimeout = 15 * time.Minute

var (
	temporalOnce sync.Once
	temporal     *TemporalServer
	temporalErr  error
)

// TemporalOptions configures a Temporal server of a test's own.
type TemporalOptions struct {
	// Port is the frontend's port on 127.0.0.1; 0 picks a free one. A test
	// that restarts a server passes the first one's port again.
	Port int
	// DatabaseFile persists the server's state, so a restarted server
	// carries on where the stopped one was; empty keeps it in memory.
	DatabaseFile string
	// PostgresURL, when set, keeps the server's state in PostgreSQL instead,
	// in PostgresDatabase (and PostgresDatabase_visibility) on that server.
	PostgresURL      string
	PostgresDatabase string
	// Cluster makes the server join the others on the same PostgreSQL
	// database as one cluster.
	Cluster bool
}

// TemporalServer is a Temporal server running in a child process: namespace
// "default" with crmflow's search attributes registered.
type TemporalServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	// historyAddr is the history service's address, set before addr.
	historyAddr string
	output      *tailBuffer
	done        chan struct{} // closed when the process has exited
}

// FrontendAddr is the host:port clients dial.
func (s *TemporalServer) FrontendAddr() string { return s.addr }

// Namespace is the namespace the server registered at start.
func (s *TemporalServer) Namespace() string { return "default" }

// Temporal returns the test binary's shared Temporal server, starting it on
// first use; Main stops it.
func Temporal(t testing.TB) *TemporalServer {
	t.Helper()
	temporalOnce.Do(func() {
		temporal, temporalErr = startTemporal(TemporalOptions{})
	})
	if temporalErr != nil {
		t.Fatalf("testenv: start temporal: %v", temporalErr)
	}
	return temporal
}

// StartTemporal starts a Temporal server for this test alone, for tests
// that stop and restart it; it is stopped when the test ends.
func StartTemporal(t testing.TB, opts TemporalOptions) *TemporalServer {
	t.Helper()
	s, err := startTemporal(opts)
	if err != nil {
		t.Fatalf("testenv: start temporal: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// startTemporal runs the standalone server and waits until it reports the
// address clients can dial.
func startTemporal(opts TemporalOptions) (*TemporalServer, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command runs the Temporal server and is not on PATH: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	args := []string{"run", temporalPackage, "-port", strconv.Itoa(opts.Port), "-db", opts.DatabaseFile}
	if opts.PostgresURL != "" {
		args = append(args, "-store", "postgres", "-postgres-url", opts.PostgresURL, "-postgres-db", opts.PostgresDatabase)
	}
	if opts.Cluster {
		args = append(args, "-cluster")
	}
	for name, typ := range contract.SearchAttributes() {
		args = append(args, "-search-attribute", name+"="+typ.String())
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = root
	cmd.SysProcAttr = childProcAttr()
	s := &TemporalServer{cmd: cmd, output: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stderr = s.output
	// The server exits when its stdin closes: if this test binary dies
	// without stopping it, the kernel closes the pipe and it goes too.
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("go run %s: %w", temporalPackage, err)
	}
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "history "); ok {
				s.historyAddr = addr
			}
			if addr, ok := strings.CutPrefix(sc.Text(), "frontend "); ok {
				select {
				case addrs <- addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(s.done)
	}()
	timeout := time.NewTimer(temporalStartTimeout)
	defer timeout.Stop()
	select {
	case s.addr = <-addrs:
		return s, nil
	case <-s.done:
		err = fmt.Errorf("exited before it listened (%v)", cmd.ProcessState)
	case <-timeout.C:
		err = errors.New("not listening after " + temporalStartTimeout.String())
	}
	s.Stop()
	return nil, fmt.Errorf("%w\ntemporal server output:\n%s", err, s.output.String())
}

// Stop stops the server and waits for it to exit: SIGTERM first, so it
// closes its database cleanly, then SIGKILL if it takes too long. It is
// safe to call more than once.
func (s *TemporalServer) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	// Setpgid made the group id equal to the pid; the group holds `go run`
	// and the server it started.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "testenv: temporal server did not exit after SIGKILL")
	}
}

// Kill ends the server with SIGKILL, as a crashed machine would: no
// shutdown, no hand-over of its shards. It waits for the process to exit.
func (s *TemporalServer) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "testenv: temporal server did not exit after SIGKILL")
	}
}

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
