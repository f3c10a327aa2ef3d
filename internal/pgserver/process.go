package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pid is the postmaster's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Done is closed when the postgres process has exited, whether through Stop
// or on its own, so a supervisor such as `crmflow dev` can notice a crash.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Stop asks postgres for a fast shutdown (SIGINT: roll back open
// transactions, checkpoint, exit) and waits for it to exit. If ctx expires
// first, the postmaster is killed; its backends notice their parent's death
// and exit on their own. Stop is idempotent and safe for concurrent use; it
// returns nil when the server has already exited.
func (s *Server) Stop(ctx context.Context) error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()

	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgserver: signal postgres: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("pgserver: kill postgres: %w", err)
		}
		<-s.exited
		return fmt.Errorf("pgserver: postgres did not shut down in time and was killed: %w", ctx.Err())
	}
}

// launch starts the postmaster and the goroutines that follow its output and
// its exit.
func (s *Server) launch(bins binaries, owner *runAs, durable bool) error {
	args := []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=" + s.host,
		"-c", "unix_socket_directories=" + socketDirSetting(s.dataDir, s.port),
		"-c", "max_connections=200",
		// Output must reach our pipe whatever postgresql.conf says.
		"-c", "logging_collector=off",
		"-c", "log_destination=stderr",
	}
	if !durable {
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		)
	}
	cmd := exec.Command(bins.postgres, args...)
	cmd.Dir = s.dataDir
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr(owner)

	// Our own pipe rather than an io.Writer: exec would otherwise make Wait
	// block until every backend holding the pipe has exited.
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return fmt.Errorf("start %s: %w", bins.postgres, err)
	}
	_ = w.Close() // the child holds its copy; ours would keep the pipe open forever

	s.cmd = cmd
	s.out = newOutputTail(40)
	s.outDone = s.out.follow(r, s.log, "postgres")
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// awaitReady polls with real connections until the server answers a query:
// a listening socket alone is not enough while recovery is still running.
func (s *Server) awaitReady(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(s.urlFor("postgres"))
	if err != nil {
		return fmt.Errorf("parse url: %w", err)
	}
	cfg.ConnectTimeout = time.Second

	var lastErr error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		lastErr = err

		select {
		case <-s.exited:
			return s.exitError()
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready on %s:%d: %w (last error: %v)%s",
				s.host, s.port, ctx.Err(), lastErr, s.out.tailSuffix(10))
		case <-tick.C:
		}
	}
}

// exitError explains why postgres exited during startup, turning the two
// failures users hit most into sentinel errors.
func (s *Server) exitError() error {
	// The output reader may still be draining the pipe; the explanation is
	// usually in its last lines.
	select {
	case <-s.outDone:
	case <-time.After(2 * time.Second):
	}
	tail := s.out.tailSuffix(10)
	text := s.out.text()
	switch {
	case strings.Contains(text, `lock file "postmaster.pid" already exists`):
		return fmt.Errorf("%w: %s%s", ErrDataDirInUse, s.dataDir, tail)
	case strings.Contains(text, "could not bind") && strings.Contains(text, "Address already in use"):
		return fmt.Errorf("%w: %s:%d%s", ErrPortInUse, s.host, s.port, tail)
	case strings.Contains(text, "pre-existing shared memory block"):
		return fmt.Errorf("%w: %s%s", errOldBackends, s.dataDir, tail)
	}
	return fmt.Errorf("postgres exited during startup (%v)%s", s.waitErr, tail)
}

// abort ends a server that failed to become usable: immediate shutdown first
// so the postmaster takes its backends down, then SIGKILL if it lingers.
func (s *Server) abort() {
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// socketDirSetting puts the Unix socket in the data directory, so nothing
// needs /var/run/postgresql, unless the socket path would be too long or the
// path would need quoting we cannot do; then the server is TCP-only, which is
// all crmflow uses.
func socketDirSetting(dataDir string, port int) string {
	sock := filepath.Join(dataDir, ".s.PGSQL."+strconv.Itoa(port))
	if len(sock) > maxSocketPath || strings.ContainsAny(dataDir, `",`) {
		return ""
	}
	// Double quotes keep a path with spaces one list element.
	return `"` + dataDir + `"`
}

// childEnv drops PG* variables (PGDATA, PGPORT and friends would fight our
// flags) and forces the C locale so the messages we match are in English.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") || name == "LANG" || name == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}
