package worker

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/appmetrics"
)

// retentionHour and retentionMinute are when, in UTC, the data-retention
// Schedule runs each day: a quiet hour for most shops, and off the full
// hour that other jobs tend to pick.
const (
	retentionHour   = 3
	retentionMinute = 17
)

// EnsureDataRetentionSchedule creates (or updates) the Schedule that runs
// DataRetention once a day with the configured windows as its input, so
// every worker start converges on the configuration and `temporal schedule
// describe` shows what the runs remove. It exists whatever the windows:
// with every one 0 its runs remove nothing.
func EnsureDataRetentionSchedule(ctx context.Context, c client.Client, taskQueue string, r config.RetentionConfig) error {
	if taskQueue == "" {
		taskQueue = contract.TaskQueue
	}
	spec := client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
		Hour:   []client.ScheduleRange{{Start: retentionHour}},
		Minute: []client.ScheduleRange{{Start: retentionMinute}},
	}}}
	action := &client.ScheduleWorkflowAction{
		ID:       contract.DataRetentionScheduleID,
		Workflow: contract.DataRetentionType,
		Args: []any{contract.DataRetentionInput{
			Inbox: r.Inbox, Dedup: r.Dedup, DeadLetters: r.DeadLetters, Audit: r.Audit,
		}},
		TaskQueue: taskQueue,
	}
	return ensureSchedule(ctx, c, contract.DataRetentionScheduleID, spec, action)
}

// WithRetentionMetrics counts what the data-retention runs this worker
// executes remove (crmflow_retention_deleted_total{table}); build m with
// appmetrics.NewRetentionMetrics(reg, activities.RetentionTables...).
func WithRetentionMetrics(m *appmetrics.RetentionMetrics) ActivityOption {
	return func(o *activityOptions) { o.retentionMetrics = m }
}
