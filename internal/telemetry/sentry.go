package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/store"
)

// SentryReporter sends crmflow's failures to Sentry: parked steps, final
// activity failures, workflow failures and HTTP handler panics. Events carry
// ids, step, provider and error type as tags and the error text as the
// message, never a step's input, a request body or a secret.
//
// A nil *SentryReporter (no DSN configured) reports nothing, and every method
// is safe to call on it.
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

// ReportParked sends one event per dead letter. It shares its fingerprint
// with the activity failure that caused the park, so Sentry shows both as
// one issue.
func (r *SentryReporter) ReportParked(_ context.Context, d store.DeadLetter) {
	if r == nil {
		return
	}
	r.capture(sentry.LevelError, fmt.Sprintf("%s parked at step %s: %s", d.WorkflowType, d.Step, d.Error),
		map[string]string{
			"workflow_id":    d.WorkflowID,
			"run_id":         d.RunID,
			"workflow_type":  d.WorkflowType,
			"step":           d.Step,
			"error_type":     d.ErrorType,
			"dead_letter_id": strconv.FormatInt(d.ID, 10),
		}, []string{d.WorkflowType, d.Step, d.ErrorType})
}

// ActivityFailure is an activity attempt after which Temporal will not try
// again: its error was non-retryable or the retry policy is spent.
type ActivityFailure struct {
	WorkflowID   string
	RunID        string
	WorkflowType string
	ActivityType string
	// Step is the workflow's step (CrmflowStep) when it scheduled the activity.
	Step     string
	Provider string
	Attempt  int32
	// ErrorType is the application error's type, e.g. "KnockAuthFailed".
	ErrorType string
	Error     string
}

// ReportActivityFailure sends one event for an activity's final failure.
func (r *SentryReporter) ReportActivityFailure(f ActivityFailure) {
	if r == nil {
		return
	}
	r.capture(sentry.LevelError, fmt.Sprintf("activity %s failed (attempt %d): %s", f.ActivityType, f.Attempt, f.Error),
		map[string]string{
			"workflow_id":   f.WorkflowID,
			"run_id":        f.RunID,
			"workflow_type": f.WorkflowType,
			"activity_type": f.ActivityType,
			"step":          f.Step,
			"provider":      f.Provider,
			"attempt":       strconv.Itoa(int(f.Attempt)),
			"error_type":    f.ErrorType,
		}, []string{f.WorkflowType, f.Step, f.ErrorType})
}

// WorkflowFailure is a workflow run that ended with an error.
type WorkflowFailure struct {
	WorkflowID   string
	RunID        string
	WorkflowType string
	// Step is the run's last step (CrmflowStep).
	Step      string
	Provider  string
	Attempt   int32
	ErrorType string
	Error     string
}

// ReportWorkflowFailure sends one event for a failed workflow run.
func (r *SentryReporter) ReportWorkflowFailure(f WorkflowFailure) {
	if r == nil {
		return
	}
	r.capture(sentry.LevelError, fmt.Sprintf("workflow %s failed at step %s: %s", f.WorkflowType, f.Step, f.Error),
		map[string]string{
			"workflow_id":   f.WorkflowID,
			"run_id":        f.RunID,
			"workflow_type": f.WorkflowType,
			"step":          f.Step,
			"provider":      f.Provider,
			"attempt":       strconv.Itoa(int(f.Attempt)),
			"error_type":    f.ErrorType,
		}, []string{"workflow-failed", f.WorkflowType, f.ErrorType})
}

// ReportPanic sends a recovered HTTP handler panic with the route pattern
// and the stack; the request itself (headers, body) is never sent. It must
// be called from the deferred function that recovered, so the stack still
// holds the frames that panicked.
func (r *SentryReporter) ReportPanic(route string, value any) {
	if r == nil {
		return
	}
	ev := r.event(sentry.LevelFatal, fmt.Sprintf("panic serving %s: %v", route, value),
		map[string]string{"route": route}, []string{"http-panic", route})
	ev.Exception = []sentry.Exception{{
		Type:       "panic",
		Value:      fmt.Sprint(value),
		Stacktrace: sentry.NewStacktrace(),
	}}
	r.hub.CaptureEvent(ev)
}

// capture sends one event.
func (r *SentryReporter) capture(level sentry.Level, message string, tags map[string]string, fingerprint []string) {
	r.hub.CaptureEvent(r.event(level, message, tags, fingerprint))
}

// event builds an event with its tags on the event itself rather than on
// the hub's scope: activities report concurrently, and a shared scope would
// mix their tags. Empty tags are left out.
func (r *SentryReporter) event(level sentry.Level, message string, tags map[string]string, fingerprint []string) *sentry.Event {
	ev := sentry.NewEvent()
	ev.Level = level
	ev.Message = message
	for k, v := range tags {
		if v != "" {
			ev.Tags[k] = v
		}
	}
	ev.Fingerprint = fingerprint
	return ev
}

// Flush waits up to timeout for queued events to be sent.
func (r *SentryReporter) Flush(timeout time.Duration) {
	if r != nil {
		r.hub.Flush(timeout)
	}
}
