// Package pgserver runs a PostgreSQL server from the machine's own PostgreSQL
// binaries, for `crmflow dev` and for test binaries that need a real database.
//
// The server is a direct child of the calling process rather than a daemon
// started through pg_ctl, so its lifetime is tied to ours: Stop shuts it down
// in order, and if our process dies hard the kernel tells postgres to go too.
//
// It is a library: of crmflow it imports only internal/freeport.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crmflow/crmflow/internal/freeport"
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
		// From below the ephemeral range: initdb takes seconds, and an
		// outgoing connection could take a kernel-picked port meanwhile.
		if port, err = freeport.Pick(opts.Host); err != nil {
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
