// Package testenv is the test harness every package's tests share: one real
// PostgreSQL (from the machine's binaries) and one Temporal server (the
// embedded one, in a child process) per test binary, started on first use
// and stopped when the binary ends.
// Each test gets its own freshly migrated database, so tests stay independent
// without paying for a server each.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// It is test support: it imports contract and internal/ libraries only.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/pgserver"
	"github.com/crmflow/crmflow/internal/store"
)

const templateDB = "crmflow_template"

// MasterKey is a master key (base64 of 32 bytes) for tests that configure
// crmflow as it runs outside `crmflow dev`, where the documented dev master
// key is refused. It protects nothing either: tests only.
const MasterKey = "dGVzdGVudi1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzISE="

var (
	pgOnce  sync.Once
	pg      *pgserver.Server
	pgDir   string
	pgErr   error
	dbCount atomic.Int64
)

// Main runs the tests, then stops whatever servers they started.
func Main(m *testing.M) int {
	code := m.Run()
	stopStripeMock()
	if temporal != nil {
		temporal.Stop()
	}
	if pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pg.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stop postgresql:", err)
		}
		os.RemoveAll(pgDir)
	}
	return code
}

// Postgres returns the binary's PostgreSQL server, starting it on first use
// with a migrated template database.
func Postgres(t testing.TB) *pgserver.Server {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		pgDir, pgErr = os.MkdirTemp("", "crmflow-test-pg-")
		if pgErr != nil {
			return
		}
		pg, pgErr = pgserver.Start(ctx, pgserver.Options{DataDir: pgDir + "/data", Database: templateDB})
		if pgErr != nil {
			return
		}
		pgErr = store.Migrate(ctx, pg.URL())
	})
	if pgErr != nil {
		t.Fatalf("testenv: start postgresql: %v", pgErr)
	}
	return pg
}

// createMu serialises CREATE DATABASE … TEMPLATE within the test binary.
var createMu sync.Mutex

// DatabaseURL creates a fresh database with every migration applied, for this
// test alone, and drops it when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	srv := Postgres(t)
	name := fmt.Sprintf("crmflow_t%d", dbCount.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, maintenanceURL(srv))
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer admin.Close(ctx)
	// Copying a migrated template is much faster than migrating each
	// database. PostgreSQL refuses to copy a template another session is
	// copying at the same moment, so parallel tests take turns here.
	createMu.Lock()
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB)
	createMu.Unlock()
	if err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, maintenanceURL(srv))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(srv.URL())
	if err != nil {
		t.Fatalf("testenv: parse url: %v", err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// maintenanceURL is the server's "postgres" database, where CREATE and DROP
// DATABASE run: a session connected to the template itself would make a
// parallel test's CREATE DATABASE … TEMPLATE fail ("source database is
// being accessed by other users").
func maintenanceURL(srv *pgserver.Server) string {
	cfg, err := pgx.ParseConfig(srv.URL())
	if err != nil {
		return srv.URL()
	}
	return fmt.Sprintf("postgres://%s@%s:%d/postgres?sslmode=disable", cfg.User, cfg.Host, cfg.Port)
}

// Store opens a store on a fresh database for this test.
func Store(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, DatabaseURL(t))
	if err != nil {
		t.Fatalf("testenv: open store: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// TemporalClient dials the binary's Temporal server; the client is closed
// when the test ends.
func TemporalClient(t testing.TB) client.Client {
	t.Helper()
	srv := Temporal(t)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(), Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("testenv: dial temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TaskQueue returns a task queue name unique to the test, so workers of
// concurrent tests never take each other's tasks.
func TaskQueue(t testing.TB) string {
	return fmt.Sprintf("%s-%s-%d", contract.TaskQueue, t.Name(), time.Now().UnixNano())
}

// quietLogger drops the SDK's info chatter; failures surface through the
// test's own assertions.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(msg string, kv ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"temporal sdk error:", msg}, kv...)...)
}
