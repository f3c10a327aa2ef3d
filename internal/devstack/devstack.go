// Package devstack starts what `crmflow dev` needs besides crmflow itself: an
// embedded Temporal server with its UI (on SQLite, or on PostgreSQL next to
// crmflow's database) and, unless a database URL is given, a
// PostgreSQL server from the machine's binaries, all with data under one
// directory so a restart resumes where the last run stopped.
//
// It is a library: it imports internal/pgserver and internal/temporalserver
// only.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/internal/pgserver"
	"github.com/crmflow/crmflow/internal/temporalserver"
)

// Options configures Start.
type Options struct {
	// DataDir holds the lock file, Temporal's SQLite file and PostgreSQL's data.
	DataDir string
	// DatabaseURL, when set, is used instead of starting PostgreSQL.
	DatabaseURL string
	// PostgresPort is the embedded PostgreSQL's port on 127.0.0.1.
	PostgresPort int
	// TemporalAddr is the host:port the Temporal frontend listens on.
	TemporalAddr string
	// UIAddr is the host:port the Temporal UI listens on.
	UIAddr string
	// UICodecEndpoint is where the UI decodes encrypted payloads.
	UICodecEndpoint string
	// TemporalStore is "sqlite" (default) or "postgres"; on PostgreSQL
	// Temporal gets databases of its own next to DatabaseURL's.
	TemporalStore string
	// TemporalShards is Temporal's history shard count (0: the store's default).
	TemporalShards int
	// Namespace is registered with SearchAttributes on first start.
	Namespace        string
	SearchAttributes map[string]enumspb.IndexedValueType
	// OnePartitionQueues are the rate-limited task queues
	// (temporalserver.Options.OnePartitionQueues).
	OnePartitionQueues []string
	Logger             *slog.Logger
}

// Stack is a running dev stack.
type Stack struct {
	// DatabaseURL reaches the stack's PostgreSQL (or the one given).
	DatabaseURL string
	// TemporalAddr and UIAddr are where Temporal and its UI listen.
	TemporalAddr, UIAddr string

	lock     *os.File
	pg       *pgserver.Server
	temporal *temporalserver.Server
}

// ErrAlreadyRunning means another `crmflow dev` holds the data directory.
var ErrAlreadyRunning = errors.New("another crmflow dev is running")

// Start takes the data directory's lock, then starts PostgreSQL and Temporal.
// On failure it stops whatever it started, so no half-started stack remains.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Stack{}
	defer func() {
		if err != nil {
			_ = s.Stop(context.WithoutCancel(ctx))
		}
	}()
	if s.lock, err = lockDir(dataDir); err != nil {
		return nil, err
	}

	s.DatabaseURL = opts.DatabaseURL
	if s.DatabaseURL == "" {
		s.pg, err = pgserver.Start(ctx, pgserver.Options{
			DataDir:  filepath.Join(dataDir, "postgres"),
			Port:     opts.PostgresPort,
			Database: "crmflow",
			Durable:  true,
			Logger:   opts.Logger.With("component", "postgres"),
		})
		if err != nil {
			return nil, fmt.Errorf("start postgresql: %w", err)
		}
		s.DatabaseURL = s.pg.URL()
	}

	host, port, err := splitAddr(opts.TemporalAddr)
	if err != nil {
		return nil, fmt.Errorf("temporal address: %w", err)
	}
	uiHost, uiPort, err := splitAddr(opts.UIAddr)
	if err != nil {
		return nil, fmt.Errorf("temporal ui address: %w", err)
	}
	if uiHost != host {
		return nil, fmt.Errorf("the Temporal UI (%s) must listen on the frontend's host %s", opts.UIAddr, host)
	}
	var postgresURL string
	if opts.TemporalStore == temporalserver.StorePostgres {
		postgresURL = s.DatabaseURL
	}
	s.temporal, err = temporalserver.Start(temporalserver.Options{
		Host:               host,
		FrontendPort:       port,
		UIPort:             uiPort,
		UICodecEndpoint:    opts.UICodecEndpoint,
		DatabaseFile:       filepath.Join(dataDir, "temporal.db"),
		Store:              opts.TemporalStore,
		PostgresURL:        postgresURL,
		HistoryShards:      opts.TemporalShards,
		Namespace:          opts.Namespace,
		SearchAttributes:   opts.SearchAttributes,
		OnePartitionQueues: opts.OnePartitionQueues,
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal: %w", err)
	}
	s.TemporalAddr, s.UIAddr = s.temporal.FrontendAddr(), s.temporal.UIAddr()
	return s, nil
}

// PostgresExited is closed if the embedded PostgreSQL stops on its own; it is
// nil when the stack uses an external database.
func (s *Stack) PostgresExited() <-chan struct{} {
	if s.pg == nil {
		return nil
	}
	return s.pg.Done()
}

// Stop stops Temporal, then PostgreSQL, then releases the lock. It is safe to
// call on a partly started stack and more than once.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	if s.temporal != nil {
		s.temporal.Stop()
		s.temporal = nil
	}
	if s.pg != nil {
		if err := s.pg.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop postgresql: %w", err))
		}
		s.pg = nil
	}
	if s.lock != nil {
		// Closing the file releases the flock; the file stays for the next run.
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}

// lockDir takes an exclusive lock on dataDir/dev.lock. The kernel drops the
// lock when the process dies however it dies, so a crash never leaves a
// stale lock behind.
func lockDir(dataDir string) (*os.File, error) {
	path := filepath.Join(dataDir, "dev.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s) with data in %s: stop it first (Ctrl-C in its terminal)",
				ErrAlreadyRunning, strings.TrimSpace(string(holder)), dataDir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func splitAddr(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", portStr, err)
	}
	return host, port, nil
}
