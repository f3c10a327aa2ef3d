package inbox_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/inbox"
)

// TestDispatcherConcurrencyIsTheOneItRuns: unset, the dispatcher hands off
// DefaultHandOffConcurrency targets at once; set, the value given. Readers
// (the benchmark's busy shares) take it from here rather than repeating
// the default.
func TestDispatcherConcurrencyIsTheOneItRuns(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	unset := inbox.NewDispatcher(nil, nil, nil, logger, prometheus.NewRegistry(), inbox.DispatcherOptions{})
	assert.Equal(t, inbox.DefaultHandOffConcurrency, unset.Concurrency())
	one := inbox.NewDispatcher(nil, nil, nil, logger, prometheus.NewRegistry(), inbox.DispatcherOptions{Concurrency: 1})
	assert.Equal(t, 1, one.Concurrency())
}
