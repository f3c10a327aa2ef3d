package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

func deadLetter(t *testing.T, step string) store.DeadLetter {
	return store.DeadLetter{
		WorkflowID:   uniqueID(t, "order-confirmation"),
		RunID:        uniqueID(t, "run"),
		WorkflowType: "OrderConfirmation",
		Step:         step,
		Error:        "stripe: invalid api key",
		ErrorType:    "AuthError",
		Attempts:     3,
		Input:        []byte(`{"order_id": "o1"}`),
	}
}

func getDeadLetter(t *testing.T, s *store.Store, id int64) *store.DeadLetter {
	t.Helper()
	d, err := s.GetDeadLetter(t.Context(), id)
	require.NoError(t, err)
	return d
}

func TestRecordDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := deadLetter(t, "GetPaymentIntent")

	before := time.Now()
	id, err := db.RecordDeadLetter(ctx, in)
	require.NoError(t, err)
	require.Positive(t, id)

	d := getDeadLetter(t, db, id)
	require.Equal(t, id, d.ID)
	require.Equal(t, in.WorkflowID, d.WorkflowID)
	require.Equal(t, in.RunID, d.RunID)
	require.Equal(t, "OrderConfirmation", d.WorkflowType)
	require.Equal(t, "GetPaymentIntent", d.Step)
	require.Equal(t, "stripe: invalid api key", d.Error)
	require.Equal(t, "AuthError", d.ErrorType)
	require.Equal(t, 3, d.Attempts)
	require.JSONEq(t, `{"order_id": "o1"}`, string(d.Input))
	require.Equal(t, store.DeadLetterParked, d.Status)
	require.Empty(t, d.DecidedBy)
	require.Nil(t, d.DecidedAt)
	require.WithinDuration(t, before, d.CreatedAt, time.Minute)

	// The same step recorded again while parked (a retried activity) is the
	// same dead letter, with the attempts added up.
	again := in
	again.Error = "stripe: invalid api key (again)"
	again.Attempts = 2
	sameID, err := db.RecordDeadLetter(ctx, again)
	require.NoError(t, err)
	require.Equal(t, id, sameID)
	d = getDeadLetter(t, db, id)
	require.Equal(t, 5, d.Attempts)
	require.Equal(t, "stripe: invalid api key (again)", d.Error)
	require.Equal(t, store.DeadLetterParked, d.Status)

	// Another step, or the same step of another run, is another dead letter.
	otherStep := in
	otherStep.Step = "SetOrderOutcome"
	otherID, err := db.RecordDeadLetter(ctx, otherStep)
	require.NoError(t, err)
	require.NotEqual(t, id, otherID)
	otherRun := in
	otherRun.RunID = uniqueID(t, "run")
	otherRunID, err := db.RecordDeadLetter(ctx, otherRun)
	require.NoError(t, err)
	require.NotContains(t, []int64{id, otherID}, otherRunID)

	// No input is fine.
	noInput := deadLetter(t, "SendEmail")
	noInput.Input = nil
	noInputID, err := db.RecordDeadLetter(ctx, noInput)
	require.NoError(t, err)
	require.Empty(t, getDeadLetter(t, db, noInputID).Input)
}

func TestDeadLetterRetryLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := deadLetter(t, "CreateBalanceTransaction")
	id, err := db.RecordDeadLetter(ctx, in)
	require.NoError(t, err)

	require.NoError(t, db.DecideDeadLetter(ctx, id, store.DeadLetterRetrying, "ops"))
	d := getDeadLetter(t, db, id)
	require.Equal(t, store.DeadLetterRetrying, d.Status)
	require.Equal(t, "ops", d.DecidedBy)
	require.NotNil(t, d.DecidedAt)

	// The retried step failed again: the same dead letter is parked again,
	// awaiting a new decision.
	again, err := db.RecordDeadLetter(ctx, in)
	require.NoError(t, err)
	require.Equal(t, id, again)
	d = getDeadLetter(t, db, id)
	require.Equal(t, store.DeadLetterParked, d.Status)
	require.Equal(t, 6, d.Attempts)
	require.Empty(t, d.DecidedBy)
	require.Nil(t, d.DecidedAt)

	// Retry once more, and this time the step succeeds.
	require.NoError(t, db.DecideDeadLetter(ctx, id, store.DeadLetterRetrying, "ops2"))
	decided := getDeadLetter(t, db, id)
	require.NoError(t, db.DecideDeadLetter(ctx, id, store.DeadLetterRetrying, "ops2"))
	require.Equal(t, decided, getDeadLetter(t, db, id), "repeating the retry decision changed the row")
	require.NoError(t, db.DecideDeadLetter(ctx, id, store.DeadLetterResolved, ""))
	d = getDeadLetter(t, db, id)
	require.Equal(t, store.DeadLetterResolved, d.Status)
	require.Equal(t, "ops2", d.DecidedBy, "resolving keeps the operator who decided the retry")
	require.NotNil(t, d.DecidedAt)
	require.True(t, decided.DecidedAt.Equal(*d.DecidedAt), "resolving keeps the decision time")

	// Resolved is closed: a later failure of the same step is a new dead letter.
	require.ErrorIs(t, db.DecideDeadLetter(ctx, id, store.DeadLetterRetrying, "ops"), store.ErrConflict)
	newID, err := db.RecordDeadLetter(ctx, in)
	require.NoError(t, err)
	require.NotEqual(t, id, newID)
	require.Equal(t, store.DeadLetterResolved, getDeadLetter(t, db, id).Status)
	require.Equal(t, store.DeadLetterParked, getDeadLetter(t, db, newID).Status)
}

func TestDecideClosedDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, closed := range []string{store.DeadLetterSkipped, store.DeadLetterAborted} {
		t.Run(closed, func(t *testing.T) {
			t.Parallel()
			id, err := db.RecordDeadLetter(ctx, deadLetter(t, "SendEmail"))
			require.NoError(t, err)

			require.NoError(t, db.DecideDeadLetter(ctx, id, closed, "ops"))
			decided := getDeadLetter(t, db, id)
			require.Equal(t, closed, decided.Status)
			require.Equal(t, "ops", decided.DecidedBy)
			require.NotNil(t, decided.DecidedAt)

			// A retried activity repeats the decision: success, nothing moves;
			// nor does a second operator repeating it rewrite who decided.
			require.NoError(t, db.DecideDeadLetter(ctx, id, closed, "ops"))
			require.Equal(t, decided, getDeadLetter(t, db, id))
			require.NoError(t, db.DecideDeadLetter(ctx, id, closed, "ops2"))
			require.Equal(t, decided, getDeadLetter(t, db, id))

			for _, other := range []string{
				store.DeadLetterRetrying, store.DeadLetterSkipped, store.DeadLetterAborted, store.DeadLetterResolved,
			} {
				if other == closed {
					continue
				}
				err := db.DecideDeadLetter(ctx, id, other, "ops2")
				require.ErrorIs(t, err, store.ErrConflict, "%s -> %s", closed, other)
			}
			require.Equal(t, decided, getDeadLetter(t, db, id), "a refused decision changed the row")
		})
	}
}

func TestDecideUnknownDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const missing = int64(1) << 60
	require.ErrorIs(t, db.DecideDeadLetter(ctx, missing, store.DeadLetterSkipped, "ops"), store.ErrNotFound)
	_, err := db.GetDeadLetter(ctx, missing)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestListDeadLetters(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()

	list := func(status string, limit int) []int64 {
		t.Helper()
		dls, err := s.ListDeadLetters(ctx, status, limit)
		require.NoError(t, err)
		require.NotNil(t, dls, "an empty list must be [] in JSON, not null")
		ids := []int64{}
		for _, d := range dls {
			if status != "" {
				require.Equal(t, status, d.Status)
			}
			ids = append(ids, d.ID)
		}
		return ids
	}

	require.Empty(t, list("", 10))

	var ids []int64
	for _, step := range []string{"a", "b", "c", "d", "e"} {
		id, err := s.RecordDeadLetter(ctx, deadLetter(t, step))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, s.DecideDeadLetter(ctx, ids[1], store.DeadLetterSkipped, "ops"))
	require.NoError(t, s.DecideDeadLetter(ctx, ids[3], store.DeadLetterRetrying, "ops"))

	require.Equal(t, []int64{ids[4], ids[2], ids[0]}, list(store.DeadLetterParked, 10))
	require.Equal(t, []int64{ids[1]}, list(store.DeadLetterSkipped, 10))
	require.Equal(t, []int64{ids[3]}, list(store.DeadLetterRetrying, 10))
	require.Empty(t, list(store.DeadLetterAborted, 10))
	require.Equal(t, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}, list("", 10))
	require.Equal(t, []int64{ids[4], ids[3]}, list("", 2))
	require.Equal(t, []int64{ids[4]}, list(store.DeadLetterParked, 1))
}

// TestMoveDeadLetter: a parked dead letter follows its workflow's next run;
// a decided one stays where it is, and so does one of another workflow.
func TestMoveDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := deadLetter(t, "notify-low-stock")
	id, err := db.RecordDeadLetter(ctx, in)
	require.NoError(t, err)
	next := uniqueID(t, "run")

	moved, err := db.MoveDeadLetter(ctx, id, "another/workflow", next)
	require.NoError(t, err)
	require.False(t, moved, "only the workflow's own runs take it over")
	require.Equal(t, in.RunID, getDeadLetter(t, db, id).RunID)

	moved, err = db.MoveDeadLetter(ctx, id, in.WorkflowID, next)
	require.NoError(t, err)
	require.True(t, moved)
	d := getDeadLetter(t, db, id)
	require.Equal(t, next, d.RunID)
	require.Equal(t, store.DeadLetterParked, d.Status)
	moved, err = db.MoveDeadLetter(ctx, id, in.WorkflowID, next)
	require.NoError(t, err)
	require.True(t, moved, "moving it again is a no-op")

	// The next run's failure of the same step is the same dead letter.
	again := in
	again.RunID = next
	againID, err := db.RecordDeadLetter(ctx, again)
	require.NoError(t, err)
	require.Equal(t, id, againID)

	require.NoError(t, db.DecideDeadLetter(ctx, id, store.DeadLetterSkipped, "ops"))
	moved, err = db.MoveDeadLetter(ctx, id, in.WorkflowID, uniqueID(t, "run"))
	require.NoError(t, err)
	require.False(t, moved, "a decided dead letter stays with the run that decided it")
	require.Equal(t, next, getDeadLetter(t, db, id).RunID)

	_, err = db.MoveDeadLetter(ctx, id+1_000_000, in.WorkflowID, next)
	require.ErrorIs(t, err, store.ErrNotFound)
}
