package worker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/worker"
)

// TestSentryReporterSendsTagsNotInput points the DSN at a local server that
// records Sentry envelopes.
func TestSentryReporterSendsTagsNotInput(t *testing.T) {
	var mu sync.Mutex
	var envelopes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		envelopes = append(envelopes, r.URL.Path+"\n"+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	dsn := strings.Replace(srv.URL, "http://", "http://publickey@", 1) + "/42"
	rep, err := worker.NewSentryReporter(config.SentryConfig{DSN: config.Secret(dsn), Environment: "test"})
	require.NoError(t, err)
	require.NotNil(t, rep)
	rep.ReportParked(context.Background(), store.DeadLetter{
		ID: 7, WorkflowID: "order-confirmation/o1", RunID: "run-1", WorkflowType: "OrderConfirmation",
		Step: "notify-confirmation", Error: "knock: 401", ErrorType: "KnockAuthFailed",
		Input: []byte(`{"secret_looking":"do-not-send"}`),
	})
	rep.Flush(5 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, envelopes, 1)
	env := envelopes[0]
	assert.True(t, strings.HasPrefix(env, "/api/42/envelope/"), env)
	for _, want := range []string{`"workflow_id":"order-confirmation/o1"`, `"step":"notify-confirmation"`,
		`"error_type":"KnockAuthFailed"`, `"dead_letter_id":"7"`, `"environment":"test"`} {
		assert.Contains(t, env, want)
	}
	assert.NotContains(t, env, "do-not-send", "the step's input never goes to Sentry")
}

func TestSentryReporterOffWithoutDSN(t *testing.T) {
	rep, err := worker.NewSentryReporter(config.SentryConfig{})
	require.NoError(t, err)
	assert.Nil(t, rep)
	rep.Flush(time.Millisecond) // a nil reporter is safe to flush
}
