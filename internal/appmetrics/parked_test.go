package appmetrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestParkedWorkflowsCountedAtScrape parks and decides dead letters in a
// real PostgreSQL and scrapes /metrics after each change.
func TestParkedWorkflowsCountedAtScrape(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(appmetrics.NewParkedCollector(st.Pool()))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	park := func(wf, typ string) int64 {
		id, err := st.RecordDeadLetter(ctx, store.DeadLetter{WorkflowID: wf, RunID: "r1", WorkflowType: typ,
			Step: "notify-confirmation", Error: "knock: 401", ErrorType: "KnockAuthFailed", Attempts: 1})
		require.NoError(t, err)
		return id
	}
	body := scrape(t, srv.URL)
	assert.Contains(t, body, `crmflow_parked_workflows{workflow_type="OrderConfirmation"} 0`, "zero, not absent")
	assert.Contains(t, body, "crmflow_parked_workflows_up 1")

	first := park("order-confirmation/o1", "OrderConfirmation")
	park("order-confirmation/o2", "OrderConfirmation")
	park("alias/a1", "AliasLifecycle")
	body = scrape(t, srv.URL)
	assert.Contains(t, body, `crmflow_parked_workflows{workflow_type="OrderConfirmation"} 2`)
	assert.Contains(t, body, `crmflow_parked_workflows{workflow_type="AliasLifecycle"} 1`)
	assert.Contains(t, body, `crmflow_parked_workflows{workflow_type="KeyRotation"} 0`)

	require.NoError(t, st.DecideDeadLetter(ctx, first, store.DeadLetterSkipped, "ops"))
	got, ok := sample(t, reg, "crmflow_parked_workflows", map[string]string{"workflow_type": "OrderConfirmation"})
	require.True(t, ok)
	assert.Equal(t, 1.0, got, "a decided dead letter is no longer parked")
}

// TestParkedWorkflowsWithDatabaseDown keeps /metrics answering when
// PostgreSQL does not.
func TestParkedWorkflowsWithDatabaseDown(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), testenv.DatabaseURL(t))
	require.NoError(t, err)
	pool.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(appmetrics.NewParkedCollector(pool))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	body := scrape(t, srv.URL)
	assert.Contains(t, body, "crmflow_parked_workflows_up 0")
	assert.NotContains(t, body, "crmflow_parked_workflows{")
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}
