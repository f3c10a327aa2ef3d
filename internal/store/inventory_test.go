package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

func dur(d time.Duration) *time.Duration { return &d }

func TestProductRoundTripWithAndWithoutOverrides(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	plain := uniqueID(t, "sku")
	require.NoError(t, db.UpsertProduct(ctx, store.Product{
		SKU: plain, Name: "Plain", PriceCents: 100, StockLevel: 7,
		Settings: store.StockSettings{Threshold: 5},
	}))
	got, err := db.GetProduct(ctx, plain)
	require.NoError(t, err)
	require.False(t, got.StockChangedAt.IsZero())
	got.StockChangedAt = time.Time{}
	require.Equal(t, store.Product{
		SKU: plain, Name: "Plain", PriceCents: 100, Currency: "usd", StockLevel: 7,
		Settings: store.StockSettings{Threshold: 5},
	}, *got, "NULL overrides come back nil")

	custom := uniqueID(t, "sku")
	settings := store.StockSettings{
		Threshold: 10, Hysteresis: 4,
		Debounce: dur(90 * time.Second), Cooldown: dur(6 * time.Hour), EscalateAfter: dur(36 * time.Hour),
		AlertAudience: []string{"ops", "buyer"}, EscalationAudience: []string{},
	}
	require.NoError(t, db.UpsertProduct(ctx, store.Product{
		SKU: custom, Name: "Custom", PriceCents: 2500, Currency: "eur", StockLevel: 3, Settings: settings,
	}))
	got, err = db.GetProduct(ctx, custom)
	require.NoError(t, err)
	require.Equal(t, settings, got.Settings)
	require.NotNil(t, got.Settings.EscalationAudience, "an empty override is not NULL")
	require.Equal(t, "eur", got.Currency)

	// Upserting again replaces the overrides, back to NULL included.
	require.NoError(t, db.UpsertProduct(ctx, store.Product{SKU: custom, Name: "Custom", PriceCents: 2500, StockLevel: 3}))
	got, err = db.GetProduct(ctx, custom)
	require.NoError(t, err)
	require.Equal(t, store.StockSettings{}, got.Settings)

	_, err = db.GetProduct(ctx, uniqueID(t, "missing"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestSetStockLevelStampsOnlyRealChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sku := uniqueID(t, "sku")
	require.NoError(t, db.UpsertProduct(ctx, store.Product{SKU: sku, Name: "Widget", StockLevel: 7}))
	before, err := db.GetProduct(ctx, sku)
	require.NoError(t, err)

	// now() is the transaction's start, so successive statements differ.
	require.NoError(t, db.SetStockLevel(ctx, sku, 7))
	same, err := db.GetProduct(ctx, sku)
	require.NoError(t, err)
	require.True(t, before.StockChangedAt.Equal(same.StockChangedAt), "an unchanged level moved stock_changed_at")

	require.NoError(t, db.SetStockLevel(ctx, sku, -2))
	changed, err := db.GetProduct(ctx, sku)
	require.NoError(t, err)
	require.Equal(t, -2, changed.StockLevel, "backorders go negative")
	require.True(t, changed.StockChangedAt.After(before.StockChangedAt))

	require.ErrorIs(t, db.SetStockLevel(ctx, uniqueID(t, "missing"), 1), store.ErrNotFound)
}

// TestChangedStockLevels uses a database of its own: the scan reads every
// product, and other tests add products in parallel.
func TestChangedStockLevels(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := newDatabase(t)
	require.NoError(t, store.Migrate(ctx, dbURL))
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()

	for _, p := range []store.Product{
		{SKU: "c", Name: "C", StockLevel: 3},
		{SKU: "a", Name: "A", StockLevel: 1},
		{SKU: "b", Name: "B", StockLevel: 2},
	} {
		require.NoError(t, st.UpsertProduct(ctx, p))
	}
	levels := func(limit int) []store.StockLevel {
		t.Helper()
		got, err := st.ChangedStockLevels(ctx, limit)
		require.NoError(t, err)
		for _, l := range got {
			require.False(t, l.ChangedAt.IsZero())
		}
		return got
	}
	skus := func(ls []store.StockLevel) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.SKU)
		}
		return out
	}

	// Before the first scan every SKU counts as changed, in SKU order.
	first := levels(2)
	require.Equal(t, []string{"a", "b"}, skus(first))
	require.Equal(t, 1, first[0].Level)
	require.NoError(t, st.MarkStockSignalled(ctx, first))
	require.Equal(t, []string{"c"}, skus(levels(10)))
	require.NoError(t, st.MarkStockSignalled(ctx, levels(10)))
	require.Empty(t, levels(10), "nothing changed since the scan")

	// A changed level is reported once; an unchanged write is not.
	require.NoError(t, st.SetStockLevel(ctx, "b", 20))
	require.NoError(t, st.SetStockLevel(ctx, "c", 3))
	changed := levels(10)
	require.Equal(t, []store.StockLevel{{SKU: "b", Level: 20, ChangedAt: changed[0].ChangedAt}}, changed)

	// The level changes again between the scan's read and its mark: the
	// mark records what was signalled, so the newer level is still reported.
	require.NoError(t, st.SetStockLevel(ctx, "b", 21))
	require.NoError(t, st.MarkStockSignalled(ctx, changed))
	again := levels(10)
	require.Len(t, again, 1)
	require.Equal(t, 21, again[0].Level)
	require.False(t, again[0].ChangedAt.Before(changed[0].ChangedAt))

	// A change back to the level last signalled is no change at all.
	require.NoError(t, st.MarkStockSignalled(ctx, again))
	require.NoError(t, st.SetStockLevel(ctx, "a", 5))
	require.NoError(t, st.SetStockLevel(ctx, "a", 1))
	require.Empty(t, levels(10))

	require.NoError(t, st.MarkStockSignalled(ctx, nil))
	require.NoError(t, st.MarkStockSignalled(ctx, []store.StockLevel{{SKU: "gone", Level: 1}}))
}
