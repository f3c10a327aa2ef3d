package bench

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/pgserver"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// temporalDatabase is the PostgreSQL engine's database; its visibility
// store is temporalDatabase + "_visibility".
const temporalDatabase = "bench_temporal"

// startPostgresEngine starts the embedded Temporal on PostgreSQL
// persistence, with the standalone server's default shard count for it, in
// databases of its own on the PostgreSQL server at serverURL. It stops when
// tb ends.
func startPostgresEngine(tb testing.TB, serverURL, where string) Engine {
	tb.Helper()
	// Connecting through the maintenance database keeps the server off
	// the database serverURL names (testenv's is the template fresh
	// databases are copied from).
	admin, err := withDatabase(serverURL, "postgres")
	require.NoError(tb, err)
	own, err := withDatabase(serverURL, temporalDatabase)
	require.NoError(tb, err)
	srv := testenv.StartTemporal(tb, testenv.TemporalOptions{PostgresURL: admin, PostgresDatabase: temporalDatabase})
	return Engine{Name: "PostgreSQL", Addr: srv.FrontendAddr(), Namespace: srv.Namespace(), PostgresURL: own, Where: where}
}

// withDatabase returns serverURL with its database part replaced.
func withDatabase(serverURL, database string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parse postgresql url: %w", err)
	}
	u.Path = "/" + database
	return u.String(), nil
}

// durablePostgresEngine is the benchmark's Temporal on PostgreSQL: on a
// PostgreSQL of its own with fsync and synchronous commit on, as production
// runs Temporal's database, rather than on the inbox's, so the engine's
// commits do not queue with the inbox's in one WAL and its settings and
// connections are its own.
func durablePostgresEngine(tb testing.TB) Engine {
	return startPostgresEngine(tb, startDurablePostgres(tb, "temporal_admin").URL(), "a PostgreSQL of its own, apart from the inbox's")
}

// startDurablePostgres starts a PostgreSQL of the benchmark's own with
// fsync, synchronous commit and full-page writes on (testenv's trades them
// for speed), creating database; it stops when tb ends.
func startDurablePostgres(tb testing.TB, database string) *pgserver.Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(tb.TempDir(), "pg"), Database: database, Durable: true})
	if err != nil {
		tb.Fatalf("start durable postgresql: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			tb.Logf("stop postgresql: %v", err)
		}
	})
	return srv
}

// TestEngines runs "Both engines" in miniature and checks what it claims:
// the second engine keeps its state in PostgreSQL with several history
// shards, every figure has a value per round on both engines, every order
// was confirmed and notified once on each, and the report shows the
// section, the summary rows and the engines' settings. It asserts no timing.
func TestEngines(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, SmokeSizes(), testenv.DatabaseURL)
	e.PostgresEngine = func(tb testing.TB) Engine {
		return startPostgresEngine(tb, testenv.Postgres(tb).URL(), "the tests' PostgreSQL")
	}
	sz := e.Sizes

	en, err := e.Engines(ctx, t)
	require.NoError(t, err)
	assert.Equal(t, "sqlite", en.SQLite.PersistenceStore)
	assert.Contains(t, en.Postgres.PersistenceStore, "postgres")
	assert.Contains(t, en.Postgres.VisibilityStore, "postgres")
	assert.Greater(t, en.Postgres.HistoryShards, int32(1), "the PostgreSQL engine runs several history shards")
	assert.Nil(t, en.SQLite.Postgres)
	assert.NotEmpty(t, en.Postgres.Postgres["fsync"], "the engine's PostgreSQL settings are read back")

	require.Len(t, en.Figures, 10)
	for _, f := range en.Figures {
		assert.Len(t, f.SQLite.Values, sz.Rounds, f.Name)
		assert.Len(t, f.Postgres.Values, sz.Rounds, f.Name)
		assert.Positive(t, f.SQLite.Median, f.Name)
		assert.Positive(t, f.Postgres.Median, f.Name)
		assert.Len(t, f.PostgresOverSQLite.Values, sz.Rounds, f.Name)
	}
	assert.GreaterOrEqual(t, en.Activities+en.LocalActivities, 4, "a confirmation loads, verifies, marks and notifies at least")
	for i, name := range []string{"SQLite", "PostgreSQL"} {
		assert.Equal(t, sz.Rounds*sz.Orders+1, en.Confirmed[i], "every order (and the warm-up) was confirmed on %s", name)
		assert.Equal(t, en.Confirmed[i], en.Notified[i], "each confirmation on %s triggered Knock once", name)
		assert.Equal(t, sz.Rounds*sz.Orders+1, en.Webhooks[i], "every M9 order through the edge took effect on %s", name)
		assert.Equal(t, sz.Rounds*sz.Orders+1, en.Direct[i], "every M9 order started directly took effect on %s", name)
	}

	rep := &Report{Results: nil, Engines: en, Machine: readMachine(), Versions: moduleVersions(), Postgres: map[string]string{}, Sizes: sz}
	md := rep.Markdown()
	assert.Contains(t, md, "\n## Both engines\n")
	assert.Contains(t, md, "| figure | unit | SQLite (median, min–max) | PostgreSQL (median, min–max) |")
	assert.Contains(t, md, "| M4-PG | ")
	assert.Contains(t, md, "| M6-PG | ")
	assert.Contains(t, md, "| M9-PG | ")
	assert.Contains(t, md, "| Temporal on PostgreSQL (Both engines) | ")
	assert.Contains(t, md, "**What the production-shaped engine changes.**")
	for _, res := range rep.summaryResults() {
		assert.Regexp(t, `\| (PASS|MISS)$`, res.SummaryLine())
	}
	t.Log("\n" + md[strings.Index(md, "## Both engines"):])
}
