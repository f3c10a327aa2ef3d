package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReconcileCheckpoint is the time up to which provider's events were
// listed and stored by the gap-fill reconciliation; ok is false before its
// first successful run.
func (s *Store) ReconcileCheckpoint(ctx context.Context, provider string) (checkpoint time.Time, ok bool, err error) {
	const q = `SELECT checkpoint FROM reconcile_checkpoints WHERE provider = $1`
	err = s.pool.QueryRow(ctx, q, provider).Scan(&checkpoint)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("read %s reconcile checkpoint: %w", provider, err)
	}
	return checkpoint, true, nil
}

// SaveReconcileCheckpoint records that provider's events created before
// checkpoint are stored. It never moves the checkpoint back: a slow run
// that finishes after a newer one cannot undo the newer one's progress.
func (s *Store) SaveReconcileCheckpoint(ctx context.Context, provider string, checkpoint time.Time) error {
	const q = `
INSERT INTO reconcile_checkpoints (provider, checkpoint) VALUES ($1, $2)
ON CONFLICT (provider) DO UPDATE
SET checkpoint = greatest(reconcile_checkpoints.checkpoint, excluded.checkpoint), updated_at = now()`
	if _, err := s.pool.Exec(ctx, q, provider, checkpoint); err != nil {
		return fmt.Errorf("save %s reconcile checkpoint: %w", provider, err)
	}
	return nil
}
