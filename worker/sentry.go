package worker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/store"
)

// SentryReporter reports parked steps to Sentry: ids, step and error type as
// tags, the error text as the message, never the step's input.
type SentryReporter struct {
	hub *sentry.Hub
}

// NewSentryReporter returns nil (report nowhere) when no DSN is configured.
func NewSentryReporter(cfg config.SentryConfig) (*SentryReporter, error) {
	if cfg.DSN == "" {
		return nil, nil
	}
	c, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:         cfg.DSN.Reveal(),
		Environment: cfg.Environment,
		Release:     cfg.Release,
	})
	if err != nil {
		return nil, fmt.Errorf("sentry client: %w", err)
	}
	return &SentryReporter{hub: sentry.NewHub(c, sentry.NewScope())}, nil
}

// ReportParked sends one event per dead letter.
func (r *SentryReporter) ReportParked(_ context.Context, d store.DeadLetter) {
	r.hub.WithScope(func(scope *sentry.Scope) {
		scope.SetLevel(sentry.LevelError)
		scope.SetTags(map[string]string{
			"workflow_id":    d.WorkflowID,
			"run_id":         d.RunID,
			"workflow_type":  d.WorkflowType,
			"step":           d.Step,
			"error_type":     d.ErrorType,
			"dead_letter_id": strconv.FormatInt(d.ID, 10),
		})
		scope.SetFingerprint([]string{d.WorkflowType, d.Step, d.ErrorType})
		r.hub.CaptureMessage(fmt.Sprintf("%s parked at step %s: %s", d.WorkflowType, d.Step, d.Error))
	})
}

// Flush waits up to timeout for queued events to be sent.
func (r *SentryReporter) Flush(timeout time.Duration) {
	if r != nil {
		r.hub.Flush(timeout)
	}
}
