package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReconcileCheckpointNeverMovesBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	provider := uniqueID(t, "provider")

	_, ok, err := db.ReconcileCheckpoint(ctx, provider)
	require.NoError(t, err)
	require.False(t, ok, "no checkpoint before the first run")

	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, db.SaveReconcileCheckpoint(ctx, provider, t1))
	got, ok, err := db.ReconcileCheckpoint(ctx, provider)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, got.Equal(t1), "got %s", got)

	t2 := t1.Add(15 * time.Minute)
	require.NoError(t, db.SaveReconcileCheckpoint(ctx, provider, t2))
	require.NoError(t, db.SaveReconcileCheckpoint(ctx, provider, t1), "a slower, older run finishing late")
	got, _, err = db.ReconcileCheckpoint(ctx, provider)
	require.NoError(t, err)
	require.True(t, got.Equal(t2), "the checkpoint stays at the newer run's: got %s", got)
}
