// Package pgserver runs a PostgreSQL server from the machine's own PostgreSQL
// binaries, for `crmflow dev` and for test binaries that need a real database.
//
// The server is a direct child of the calling process rather than a daemon
// started through pg_ctl, so its lifetime is tied to ours: Stop shuts it down
// in order, and if our process dies hard the kernel tells postgres to go too.
//
// It is a library: it imports no crmflow package.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors a caller may want to tell apart from other start failures.
var (
	// ErrPortInUse means something already listens on the requested host and
	// port, so postgres could never bind it.
	ErrPortInUse = errors.New("port already in use")

	// ErrDataDirInUse means another postgres server is running on the data
	// directory; PostgreSQL allows one server per data directory.
	ErrDataDirInUse = errors.New("data directory in use by another postgres server")

	// ErrNoPostgresUser means we run as root, PostgreSQL refuses to run as
	// root, and there is no unprivileged `postgres` OS user to run it as.
	ErrNoPostgresUser = errors.New("running as root and no postgres OS user exists")
)

// errOldBackends means backends of an earlier, killed postmaster still hold
// the shared memory of this data directory; Start waits for them.
var errOldBackends = errors.New("backends of a previous postgres server are still running")

const (
	defaultHost     = "127.0.0.1"
	defaultDatabase = "crmflow"

	// superuser is the bootstrap role initdb creates (-U); every connection
	// uses it with trust authentication, which is acceptable only because
	// the server takes loopback clients alone (see Options.Host).
	superuser = "postgres"

	// defaultStartTimeout bounds Start when the caller's context has no
	// deadline, so a wedged server cannot hang `crmflow dev` or a test binary
	// forever.
	defaultStartTimeout = 60 * time.Second

	// maxSocketPath is the longest Unix-domain socket path Linux accepts
	// (sizeof(sun_path) minus the terminating NUL).
	maxSocketPath = 107
)

// Options configures Start.
type Options struct {
	// DataDir holds the cluster. It is created if missing, and initdb runs
	// when it holds no PG_VERSION. When we run as root, the directory is
	// handed to the postgres OS user and every parent directory is made
	// traversable (search bit only) for that user, because PostgreSQL needs
	// to reach its data directory by path.
	DataDir string

	// Host is the only address postgres listens on; default "127.0.0.1".
	// Authentication is trust, and the pg_hba.conf initdb writes admits
	// only loopback and Unix-socket clients, so keep this a loopback
	// address.
	Host string

	// Port is the TCP port; 0 picks a free port on Host.
	Port int

	// Database is created if missing; default "crmflow".
	Database string

	// Durable keeps fsync, synchronous_commit and full_page_writes on. Tests
	// leave it false: their data is thrown away, and skipping fsync makes
	// initdb and commits several times faster.
	Durable bool

	// Logger receives initdb and postgres output lines at debug level, and
	// the rare change made to the file system as root at info level; nil
	// discards them.
	Logger *slog.Logger
}

// Server is a running postgres process started by Start.
type Server struct {
	host     string
	port     int
	database string
	dataDir  string
	log      *slog.Logger

	cmd     *exec.Cmd
	out     *outputTail
	outDone <-chan struct{}
	exited  chan struct{}
	waitErr error // set before exited is closed

	stopMu sync.Mutex
}

// Start initialises the data directory if needed, starts postgres, waits
// until it accepts connections and creates the database. It fails fast with
// ErrPortInUse or ErrDataDirInUse when those are the reason, and with the last
// lines of postgres's output when postgres exits during startup. Readiness is
// awaited until ctx's deadline, or for one minute when ctx has none.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgserver: DataDir is required")
	}
	if opts.Host == "" {
		opts.Host = defaultHost
	}
	if opts.Database == "" {
		opts.Database = defaultDatabase
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}

	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: data dir: %w", err)
	}
	bins, err := findBinaries()
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	owner, err := lookupRunAs()
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}

	// Cheap checks before initdb so the common mistakes fail in milliseconds.
	if err := checkDataDirFree(dataDir, log); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(opts.Host); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
	} else if err := checkPortFree(opts.Host, port); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}

	if err := prepareDataDir(ctx, bins, dataDir, owner, opts.Durable, log); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}

	s := &Server{
		host:     opts.Host,
		port:     port,
		database: opts.Database,
		dataDir:  dataDir,
		log:      log,
	}
	for {
		if err := s.launch(bins, owner, opts.Durable); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		err := s.awaitReady(ctx)
		if err == nil {
			break
		}
		s.abort()
		if !errors.Is(err, errOldBackends) {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		// Backends of a postmaster that was killed outright exit as soon as
		// they notice; give them that moment instead of failing a restart.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pgserver: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := s.createDatabase(ctx); err != nil {
		s.abort()
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	log.Debug("postgres ready", "url", s.URL(), "pid", s.cmd.Process.Pid)
	return s, nil
}

// URL is the connection URL of the database, e.g.
// postgres://postgres@127.0.0.1:55432/crmflow?sslmode=disable: the superuser
// and no password, since the server trusts loopback clients.
func (s *Server) URL() string {
	return s.urlFor(s.database)
}

// Port is the TCP port the server listens on, useful when Options.Port was 0.
func (s *Server) Port() int { return s.port }

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

func (s *Server) urlFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort(s.host, strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
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

func (s *Server) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.urlFor("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	var exists bool
	const q = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`
	if err := conn.QueryRow(ctx, q, s.database).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %q: %w", s.database, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.database}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		// Someone created it between our check and our CREATE: that is the
		// outcome we wanted. 23505 is how a concurrent CREATE DATABASE can
		// surface (unique index on pg_database.datname).
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", s.database, err)
	}
	return nil
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

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", host, err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree binds the port for a moment. Postgres would find out too,
// but only after initdb and with an error buried in its log.
func checkPortFree(host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: %s (another process listens on port %d)", ErrPortInUse, addr, port)
	}
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return l.Close()
}
