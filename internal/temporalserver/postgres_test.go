package temporalserver_test

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	pgschema "go.temporal.io/server/schema/postgresql/v12"

	"github.com/crmflow/crmflow/internal/temporalserver"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func echoWorkflow(_ workflow.Context, in string) (string, error) { return "echo " + in, nil }

// runEcho runs echoWorkflow to completion on s with a worker of its own.
func runEcho(t *testing.T, c client.Client, id string) {
	t.Helper()
	w := worker.New(c, "pg-echo", worker.Options{})
	w.RegisterWorkflow(echoWorkflow)
	require.NoError(t, w.Start())
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "pg-echo"}, echoWorkflow, id)
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "echo "+id, out)
}

// TestPostgresStoreSurvivesRestart starts a server on PostgreSQL twice on the
// same databases: the second start finds the schema at the shipped version
// and changes nothing, and the first run's workflow, its history and the
// namespace's search attributes are all still there.
func TestPostgresStoreSurvivesRestart(t *testing.T) {
	pg := testenv.Postgres(t)
	opts := temporalserver.Options{
		Store:            temporalserver.StorePostgres,
		PostgresURL:      pg.URL(),
		PostgresDatabase: "temporal_restart_test",
		SearchAttributes: map[string]enumspb.IndexedValueType{"CrmflowTestKey": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	}
	s, err := temporalserver.Start(opts)
	require.NoError(t, err)
	c := dial(t, s)
	runEcho(t, c, "pg-first")
	c.Close()
	s.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	history := func(database string) (version string, steps int) {
		conn, err := pgx.Connect(ctx, databaseURL(t, pg.URL(), database))
		require.NoError(t, err)
		defer conn.Close(ctx)
		require.NoError(t, conn.QueryRow(ctx, `SELECT curr_version FROM schema_version`).Scan(&version))
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM schema_update_history`).Scan(&steps))
		return version, steps
	}
	mainVersion, mainSteps := history("temporal_restart_test")
	visVersion, visSteps := history("temporal_restart_test_visibility")
	assert.Equal(t, pgschema.Version, mainVersion, "schema at the version the server module ships")
	assert.Equal(t, pgschema.VisibilityVersion, visVersion)
	// SchemaVersion, which the compose test holds docker-compose.yml to,
	// names the version applied.
	for schema, applied := range map[string]string{temporalserver.PostgresSchema: mainVersion, temporalserver.PostgresVisibilitySchema: visVersion} {
		v, err := temporalserver.SchemaVersion(schema)
		require.NoError(t, err)
		assert.Equal(t, applied, v, schema)
	}

	// Shards are fixed with the database: another number is ignored.
	opts.HistoryShards = 8
	s2, err := temporalserver.Start(opts)
	require.NoError(t, err)
	defer s2.Stop()
	mv, ms := history("temporal_restart_test")
	vv, vs := history("temporal_restart_test_visibility")
	assert.Equal(t, []any{mainVersion, mainSteps, visVersion, visSteps}, []any{mv, ms, vv, vs}, "a second start applies nothing")

	c2 := dial(t, s2)
	desc, err := c2.DescribeWorkflowExecution(ctx, "pg-first", "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	var events int
	iter := c2.GetWorkflowHistory(ctx, "pg-first", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		_, err := iter.Next()
		require.NoError(t, err)
		events++
	}
	assert.GreaterOrEqual(t, events, 5, "the first run's history survives the restart")
	runEcho(t, c2, "pg-second")

	sa, err := c2.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	require.NoError(t, err)
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sa.GetCustomAttributes()["CrmflowTestKey"])

	conn, err := pgx.Connect(ctx, databaseURL(t, pg.URL(), "temporal_restart_test"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var shards int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM shards`).Scan(&shards))
	assert.Equal(t, 4, shards, "four history shards by default on PostgreSQL, kept when a restart asks for 8")
}

// TestStoreOptionsRefuseNonsense shows each bad option is refused before
// anything is created.
func TestStoreOptionsRefuseNonsense(t *testing.T) {
	for name, opts := range map[string]temporalserver.Options{
		"unknown store":         {Store: "cassandra"},
		"postgres without url":  {Store: temporalserver.StorePostgres},
		"not a url":             {Store: temporalserver.StorePostgres, PostgresURL: "host=localhost"},
		"cluster on sqlite":     {Cluster: true},
		"negative shard number": {HistoryShards: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := temporalserver.Start(opts)
			require.Error(t, err)
		})
	}
}

func databaseURL(t *testing.T, serverURL, database string) string {
	t.Helper()
	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	u.Path = "/" + database
	return u.String()
}
