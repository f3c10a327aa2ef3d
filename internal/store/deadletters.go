package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Dead-letter statuses.
const (
	DeadLetterParked   = "parked"
	DeadLetterRetrying = "retrying"
	DeadLetterSkipped  = "skipped"
	DeadLetterAborted  = "aborted"
	DeadLetterResolved = "resolved"
)

// DeadLetter is a workflow step that failed for good and waits for an
// operator's decision.
type DeadLetter struct {
	ID           int64           `json:"id"`
	WorkflowID   string          `json:"workflow_id"`
	RunID        string          `json:"run_id"`
	WorkflowType string          `json:"workflow_type"`
	Step         string          `json:"step"`
	Error        string          `json:"error"`
	ErrorType    string          `json:"error_type"`
	Attempts     int             `json:"attempts"`
	Input        json.RawMessage `json:"input,omitempty"`
	Status       string          `json:"status"`
	DecidedBy    string          `json:"decided_by,omitempty"`
	DecidedAt    *time.Time      `json:"decided_at,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
}

const deadLetterColumns = `id, workflow_id, run_id, workflow_type, step, error, error_type, attempts,
input, status, coalesce(decided_by, ''), decided_at, created_at`

func scanDeadLetter(row pgx.Row) (*DeadLetter, error) {
	var d DeadLetter
	err := row.Scan(&d.ID, &d.WorkflowID, &d.RunID, &d.WorkflowType, &d.Step, &d.Error, &d.ErrorType,
		&d.Attempts, &d.Input, &d.Status, &d.DecidedBy, &d.DecidedAt, &d.CreatedAt)
	return &d, err
}

// RecordDeadLetter parks a failed step. Recording the same open step again
// (a retried activity, or a retry that failed again) updates the existing
// row back to parked instead of adding another, and returns its id.
func (s *Store) RecordDeadLetter(ctx context.Context, d DeadLetter) (int64, error) {
	const q = `
INSERT INTO dead_letters (workflow_id, run_id, workflow_type, step, error, error_type, attempts, input)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (workflow_id, run_id, step) WHERE status IN ('parked', 'retrying')
DO UPDATE SET status = 'parked', error = EXCLUDED.error, error_type = EXCLUDED.error_type,
    attempts = dead_letters.attempts + EXCLUDED.attempts, decided_by = NULL, decided_at = NULL
RETURNING id`
	var id int64
	if err := s.pool.QueryRow(ctx, q, d.WorkflowID, d.RunID, d.WorkflowType, d.Step, d.Error, d.ErrorType,
		d.Attempts, d.Input).Scan(&id); err != nil {
		return 0, fmt.Errorf("record dead letter for %s step %s: %w", d.WorkflowID, d.Step, err)
	}
	return id, nil
}

// GetDeadLetter returns one dead letter.
func (s *Store) GetDeadLetter(ctx context.Context, id int64) (*DeadLetter, error) {
	d, err := scanDeadLetter(s.pool.QueryRow(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get dead letter %d: %w", id, err)
	}
	return d, nil
}

// ListDeadLetters lists dead letters, newest first; status "" lists all.
func (s *Store) ListDeadLetters(ctx context.Context, status string, limit int) ([]DeadLetter, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters
WHERE $1 = '' OR status = $1 ORDER BY id DESC LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("scan dead letter: %w", err)
		}
		out = append(out, *d)
	}
	return out, rows.Err()
}

// DecideDeadLetter records an operator's decision (retrying, skipped,
// aborted) or the retried step's success (resolved). Recording the same
// decision again is a no-op; a closed dead letter cannot be reopened.
func (s *Store) DecideDeadLetter(ctx context.Context, id int64, status, decidedBy string) error {
	const q = `
UPDATE dead_letters SET status = $2,
    decided_by = CASE WHEN status = $2 THEN decided_by ELSE coalesce(nullif($3, ''), decided_by) END,
    decided_at = CASE WHEN status = $2 OR $2 = 'resolved' THEN decided_at ELSE now() END
WHERE id = $1 AND (status IN ('parked', 'retrying') OR status = $2)`
	tag, err := s.pool.Exec(ctx, q, id, status, decidedBy)
	if err != nil {
		return fmt.Errorf("decide dead letter %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetDeadLetter(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("dead letter %d is closed: %w", id, ErrConflict)
	}
	return nil
}

// MoveDeadLetter hands a parked dead letter of workflowID over to the run
// runID: the run it was recorded by continued as new while parked, and its
// successor now waits on it, so the operator's decision must go there. It
// reports whether the dead letter was moved: false when it is no longer
// parked (it was decided meanwhile), which leaves it as it is. Moving it
// to the run it already names is a no-op that reports true.
func (s *Store) MoveDeadLetter(ctx context.Context, id int64, workflowID, runID string) (bool, error) {
	const q = `
UPDATE dead_letters SET run_id = $3
WHERE id = $1 AND workflow_id = $2 AND status = 'parked'`
	tag, err := s.pool.Exec(ctx, q, id, workflowID, runID)
	if err != nil {
		return false, fmt.Errorf("move dead letter %d to run %s: %w", id, runID, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetDeadLetter(ctx, id); err != nil {
			return false, err
		}
		return false, nil
	}
	return true, nil
}
