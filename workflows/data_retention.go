package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// retention holds the retention activities' method values for
// ExecuteActivity; the worker registers the real struct.
var retention *activities.RetentionActivities

// retentionOptions cover one removal, which loops over bounded batches
// with a heartbeat after each: a crashed or hung attempt is noticed within
// the heartbeat timeout and retried where it stopped (removing is
// idempotent). The overall bound leaves a first run on a large backlog
// hours to finish; what a failed run leaves, the next day's run removes.
var retentionOptions = activityPolicy{options: workflow.ActivityOptions{
	StartToCloseTimeout:    2 * time.Hour,
	HeartbeatTimeout:       time.Minute,
	ScheduleToCloseTimeout: 6 * time.Hour,
	RetryPolicy:            backoff(10),
}}

// DataRetention removes what the retention configuration no longer keeps:
// it purges the payload of handed-off inbox rows past in.Inbox (their
// compact records keep deduplicating redeliveries), deletes those records
// past in.Dedup, closed dead letters past in.DeadLetters and audit entries
// past in.Audit. A zero duration keeps that kind of row for ever, so the
// zero input removes nothing. Pending inbox rows and open dead letters are
// never touched.
//
// The purge runs before the record deletion, which only deletes purged
// rows: a row is never deleted while it still has its payload. A failed
// step fails the run instead of parking it, as the inventory scan does:
// nothing is lost and the next day's run retries, while a parked run would
// hold up every later run behind the Schedule's overlap policy.
func DataRetention(ctx workflow.Context, in contract.DataRetentionInput) (*contract.DataRetentionResult, error) {
	status := contract.Status{Step: "start", State: "removing"}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) { return status, nil }); err != nil {
		return nil, err
	}
	st := steps{status: &status}
	actCtx := retentionOptions.context(ctx)
	res := &contract.DataRetentionResult{}
	stages := []struct {
		name string
		age  time.Duration
		// activity is a retention activity's method value.
		activity any
		count    *int64
	}{
		{"purge-inbox-payloads", in.Inbox, retention.PurgeInboxPayloads, &res.InboxPurged},
		{"delete-inbox-records", recordAge(in.Inbox, in.Dedup), retention.DeleteInboxRecords, &res.InboxDeleted},
		{"delete-dead-letters", in.DeadLetters, retention.DeleteClosedDeadLetters, &res.DeadLettersDeleted},
		{"delete-audit-entries", in.Audit, retention.DeleteAuditEntries, &res.AuditDeleted},
	}
	for _, s := range stages {
		if s.age <= 0 {
			continue // kept for ever
		}
		st.enter(ctx, s.name)
		var out activities.RetentionOutput
		req := activities.RetentionInput{OlderThan: s.age, BatchSize: in.BatchSize}
		if err := workflow.ExecuteActivity(actCtx, s.activity, req).Get(ctx, &out); err != nil {
			status.State, status.Detail = "failed", fmt.Sprintf("%s: %v", s.name, err)
			return nil, err
		}
		*s.count = out.Removed
	}
	st.show(ctx, "done")
	status.State = "done"
	status.Detail = fmt.Sprintf("purged %d inbox payloads; deleted %d inbox records, %d dead letters, %d audit entries",
		res.InboxPurged, res.InboxDeleted, res.DeadLettersDeleted, res.AuditDeleted)
	return res, nil
}

// recordAge is the age past which inbox records are deleted. Only purged
// rows are deleted, so none are without a purge (inbox 0), and a record
// younger than inbox cannot be one: a shorter dedup (config refuses it)
// means inbox. 0 means never.
func recordAge(inbox, dedup time.Duration) time.Duration {
	if inbox <= 0 || dedup <= 0 {
		return 0
	}
	return max(dedup, inbox)
}
