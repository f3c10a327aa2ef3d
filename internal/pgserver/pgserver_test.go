package pgserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/pgserver"
)

// helperEnv makes the test binary act as a process that starts a server and
// then waits to be killed (see TestNoOrphanWhenOwnerIsKilled).
const helperEnv = "PGSERVER_TEST_HELPER_DATADIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelper(dir)
		return
	}
	os.Exit(m.Run())
}

func runHelper(dataDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(srv.Pid())
	select {} // until killed
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := filepath.Join(t.TempDir(), "pg")

	srv := start(t, pgserver.Options{DataDir: dir, Database: "lifecycle"})
	require.NotZero(t, srv.Port())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/lifecycle?sslmode=disable", srv.Port()), srv.URL())

	conn, err := pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	var got string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&got))
	require.Equal(t, "lifecycle", got)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	t.Run("second start on the same data dir fails", func(t *testing.T) {
		for _, port := range []int{0, srv.Port()} {
			begin := time.Now()
			_, err := pgserver.Start(ctx, pgserver.Options{DataDir: dir, Port: port})
			require.ErrorIs(t, err, pgserver.ErrDataDirInUse)
			require.Contains(t, err.Error(), dir)
			require.Contains(t, err.Error(), strconv.Itoa(srv.Pid()))
			require.Less(t, time.Since(begin), 2*time.Second)
		}
	})

	pid := srv.Pid()
	children := childPids(t, pid)
	require.NotEmpty(t, children, "a running postmaster has background processes")

	require.NoError(t, srv.Stop(ctx))
	requireGone(t, pid)
	for _, c := range children {
		requireGone(t, c)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	require.NoError(t, srv.Stop(ctx), "Stop is idempotent")

	srv = start(t, pgserver.Options{DataDir: dir, Database: "lifecycle"})
	conn, err = pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&got))
	require.Equal(t, "before restart", got)
}

func TestRestartAfterHardKill(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := filepath.Join(t.TempDir(), "pg")

	srv := start(t, pgserver.Options{DataDir: dir})
	conn, err := pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)
	// With synchronous_commit=off the last commits may not have left
	// postgres yet; a checkpoint after the commit puts them on disk.
	_, err = conn.Exec(ctx, "CHECKPOINT")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	// Kill the postmaster outright: it leaves postmaster.pid behind and its
	// backends still running for a moment.
	require.NoError(t, syscall.Kill(srv.Pid(), syscall.SIGKILL))
	select {
	case <-srv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the postmaster died")
	}
	require.FileExists(t, filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, srv.Stop(ctx), "Stop after the process died is a no-op")

	srv = start(t, pgserver.Options{DataDir: dir})
	var v int
	conn, err = pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, 42, v)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, srv.Stop(ctx))

	t.Run("stale pid file naming a live unrelated process", func(t *testing.T) {
		sleeper := exec.Command("sleep", "60")
		require.NoError(t, sleeper.Start())
		defer func() {
			_ = sleeper.Process.Kill()
			_ = sleeper.Wait()
		}()
		lock := fmt.Sprintf("%d\n%s\n0\n%d\n", sleeper.Process.Pid, dir, srv.Port())
		require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(lock), 0o600))

		srv := start(t, pgserver.Options{DataDir: dir})
		require.NoError(t, srv.Stop(ctx))
	})
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	port := l.Addr().(*net.TCPAddr).Port

	begin := time.Now()
	_, err = pgserver.Start(testContext(t), pgserver.Options{
		DataDir: filepath.Join(t.TempDir(), "pg"),
		Port:    port,
	})
	require.ErrorIs(t, err, pgserver.ErrPortInUse)
	require.Contains(t, err.Error(), strconv.Itoa(port))
	require.Less(t, time.Since(begin), 2*time.Second, "must fail fast, not wait for readiness")
}

// TestNoOrphanWhenOwnerIsKilled kills the process that started postgres with
// SIGKILL, as the OOM killer would, and expects postgres to go with it.
func TestNoOrphanWhenOwnerIsKilled(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pg")

	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+dir)
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	stdout, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = helper.Process.Kill()
		_ = helper.Wait() // stderr is complete only after Wait
		t.Fatalf("helper printed no pid: %v\n%s", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	require.False(t, gone(pid))
	children := childPids(t, pid)

	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait() // "signal: killed" is the expected outcome

	require.Eventually(t, func() bool { return gone(pid) }, 10*time.Second, 20*time.Millisecond,
		"postmaster %d outlived the process that started it", pid)
	for _, c := range children {
		require.Eventually(t, func() bool { return gone(c) }, 10*time.Second, 20*time.Millisecond,
			"backend %d outlived its postmaster", c)
	}
}

// start starts a server with test defaults and stops it when the test ends.
func start(t *testing.T, opts pgserver.Options) *pgserver.Server {
	t.Helper()
	opts.Logger = testLogger(t)
	srv, err := pgserver.Start(testContext(t), opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testLogger keeps server output and prints it if the test fails or runs
// with -v; the output goroutine may outlive the test, so it must not write
// to t.
func testLogger(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("server output:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// childPids lists the processes whose parent is pid.
func childPids(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(p); ok && ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// procStat reads the parent pid and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// gone reports whether pid has exited. A zombie counts as gone: it runs
// nothing, and in a container nobody may reap it.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	_, state, ok := procStat(pid)
	return !ok || state == "Z"
}

func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.True(t, gone(pid), "process %d still exists", pid)
}
