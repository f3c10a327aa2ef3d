package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crmflow/crmflow/contract"
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
