package activities_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/workflows"
)

var stockDefaults = activities.StockDefaults{
	Debounce: 5 * time.Minute, Cooldown: time.Hour, EscalateAfter: 24 * time.Hour,
	Audience: []string{"crmflow-operators"}, EscalationAudience: []string{"purchasing"},
}

func durationPtr(d time.Duration) *time.Duration { return &d }

func loadStockSettings(t *testing.T, a *activities.InventoryActivities, sku string) (*activities.StockSettings, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.LoadStockSettings, activities.LoadStockSettingsInput{SKU: sku})
	if err != nil {
		return nil, err
	}
	var out activities.StockSettings
	require.NoError(t, v.Get(&out))
	return &out, nil
}

func TestLoadStockSettingsMergesOverridesOverDefaults(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	require.NoError(t, st.UpsertProduct(ctx, store.Product{
		SKU: "plain", Name: "Plain", StockLevel: 9, Settings: store.StockSettings{Threshold: 3, Hysteresis: 2},
	}))
	require.NoError(t, st.UpsertProduct(ctx, store.Product{
		SKU: "custom", Name: "Custom", StockLevel: 9, Settings: store.StockSettings{
			Threshold: 10, Debounce: durationPtr(0), Cooldown: durationPtr(2 * time.Hour),
			AlertAudience: []string{"buyer"}, EscalationAudience: []string{},
		},
	}))
	require.NoError(t, st.UpsertProduct(ctx, store.Product{
		SKU: "empty-audience", Name: "Empty", Settings: store.StockSettings{AlertAudience: []string{}},
	}))
	a := &activities.InventoryActivities{Store: st, Defaults: stockDefaults}

	plain, err := loadStockSettings(t, a, "plain")
	require.NoError(t, err)
	require.Equal(t, activities.StockSettings{
		SKU: "plain", Name: "Plain", Threshold: 3, Hysteresis: 2,
		Debounce: 5 * time.Minute, Cooldown: time.Hour, EscalateAfter: 24 * time.Hour,
		Audience: []string{"crmflow-operators"}, EscalationAudience: []string{"purchasing"},
	}, *plain)

	custom, err := loadStockSettings(t, a, "custom")
	require.NoError(t, err)
	require.Equal(t, activities.StockSettings{
		SKU: "custom", Name: "Custom", Threshold: 10,
		Debounce: 0, Cooldown: 2 * time.Hour, EscalateAfter: 24 * time.Hour,
		Audience: []string{"buyer"}, EscalationAudience: []string{},
	}, *custom, "a zero debounce is an override; an empty escalation audience turns escalation off")

	empty, err := loadStockSettings(t, a, "empty-audience")
	require.NoError(t, err)
	require.Equal(t, []string{"crmflow-operators"}, empty.Audience, "an alert always has an audience")
}

func TestLoadStockSettingsUnknownSKUIsPermanent(t *testing.T) {
	a := &activities.InventoryActivities{Store: testenv.Store(t), Defaults: stockDefaults}
	_, err := loadStockSettings(t, a, "nope")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %v", err)
	require.Equal(t, "StoreNotFound", appErr.Type())
	require.True(t, appErr.NonRetryable())
}

// observation is one stock level a fakeSignaller received.
type observation struct {
	SKU   string
	Level contract.StockLevel
}

// fakeSignaller records observations; it rejects or fails the SKUs it is
// told to.
type fakeSignaller struct {
	mu     sync.Mutex
	got    []observation
	reject map[string]bool
	fail   map[string]bool
}

func (f *fakeSignaller) SignalStockLevel(_ context.Context, sku string, level contract.StockLevel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.reject[sku]:
		return fmt.Errorf("invalid SKU: %w", contract.ValidateKey("SKU", sku))
	case f.fail[sku]:
		return errors.New("temporal: unavailable")
	}
	f.got = append(f.got, observation{SKU: sku, Level: level})
	return nil
}

func (f *fakeSignaller) skus() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, o := range f.got {
		out = append(out, o.SKU)
	}
	return out
}

func TestSignalStockLevels(t *testing.T) {
	changed := time.Date(2026, 3, 2, 9, 30, 0, 123456000, time.UTC)
	levels := []activities.SKULevel{
		{SKU: "a", Level: 4, ChangedAt: changed},
		{SKU: "b/c", Level: 1, ChangedAt: changed},
		{SKU: "d", Level: -2, ChangedAt: changed},
	}
	run := func(f *fakeSignaller, heartbeat any) (*activities.SignalStockLevelsOutput, error) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		a := &activities.InventoryActivities{Signaller: f}
		env.RegisterActivity(a)
		if heartbeat != nil {
			env.SetHeartbeatDetails(heartbeat)
		}
		v, err := env.ExecuteActivity(a.SignalStockLevels, activities.SignalStockLevelsInput{Levels: levels})
		if err != nil {
			return nil, err
		}
		var out activities.SignalStockLevelsOutput
		require.NoError(t, v.Get(&out))
		return &out, nil
	}

	t.Run("signals each SKU, reports the rejected", func(t *testing.T) {
		f := &fakeSignaller{reject: map[string]bool{"b/c": true}}
		out, err := run(f, nil)
		require.NoError(t, err)
		require.Equal(t, &activities.SignalStockLevelsOutput{Signalled: 2, Rejected: []string{"b/c"}}, out)
		require.Len(t, f.got, 2)
		require.Equal(t, observation{SKU: "a", Level: contract.StockLevel{
			Level: 4, ObservedAt: changed, EventID: "scan/a/4/1772443800123456",
		}}, f.got[0])
		require.Equal(t, "scan/d/-2/1772443800123456", f.got[1].Level.EventID)
	})

	t.Run("a Temporal outage retries", func(t *testing.T) {
		f := &fakeSignaller{fail: map[string]bool{"d": true}}
		_, err := run(f, nil)
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr), "got %v", err)
		require.Equal(t, "TemporalUnavailable", appErr.Type())
		require.False(t, appErr.NonRetryable())
	})

	t.Run("a retried attempt resumes after its heartbeat", func(t *testing.T) {
		f := &fakeSignaller{}
		out, err := run(f, struct {
			Next, Signalled int
			Rejected        []string
		}{Next: 2, Signalled: 1, Rejected: []string{"b/c"}})
		require.NoError(t, err)
		require.Equal(t, []string{"d"}, f.skus())
		require.Equal(t, &activities.SignalStockLevelsOutput{Signalled: 2, Rejected: []string{"b/c"}}, out)
	})

	t.Run("no signaller is a configuration error", func(t *testing.T) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		a := &activities.InventoryActivities{}
		env.RegisterActivity(a)
		_, err := env.ExecuteActivity(a.SignalStockLevels, activities.SignalStockLevelsInput{Levels: levels})
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr), "got %v", err)
		require.True(t, appErr.NonRetryable())
	})
}

func TestChangedAndMarkStockSignalled(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	for _, sku := range []string{"x", "y"} {
		require.NoError(t, st.UpsertProduct(ctx, store.Product{SKU: sku, Name: sku, StockLevel: 5}))
	}
	a := &activities.InventoryActivities{Store: st}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	changed := func(limit int) []activities.SKULevel {
		t.Helper()
		v, err := env.ExecuteActivity(a.ChangedStockLevels, activities.ChangedStockLevelsInput{Limit: limit})
		require.NoError(t, err)
		var out activities.ChangedStockLevelsOutput
		require.NoError(t, v.Get(&out))
		return out.Levels
	}

	first := changed(0)
	require.Len(t, first, 2)
	require.Equal(t, "x", first[0].SKU)
	require.Equal(t, 5, first[0].Level)
	require.False(t, first[0].ChangedAt.IsZero())
	require.Len(t, changed(1), 1)

	_, err := env.ExecuteActivity(a.MarkStockSignalled, activities.MarkStockSignalledInput{Levels: first})
	require.NoError(t, err)
	require.Empty(t, changed(0))

	require.NoError(t, st.SetStockLevel(ctx, "y", 2))
	again := changed(0)
	require.Len(t, again, 1)
	require.Equal(t, "y", again[0].SKU)
	require.Equal(t, 2, again[0].Level)
	require.True(t, again[0].ChangedAt.After(first[1].ChangedAt))
}

// TestInventoryScanAgainstStore runs the scan workflow with the real
// activities on PostgreSQL: only SKUs whose level changed are signalled,
// each with its change time as the observation time.
func TestInventoryScanAgainstStore(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	for i, sku := range []string{"p1", "p2", "p3"} {
		require.NoError(t, st.UpsertProduct(ctx, store.Product{SKU: sku, Name: sku, StockLevel: 10 * (i + 1)}))
	}
	f := &fakeSignaller{}
	a := &activities.InventoryActivities{Store: st, Signaller: f}
	scan := func() *contract.InventoryScanResult {
		t.Helper()
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(workflows.InventoryScan)
		env.RegisterActivity(a)
		env.ExecuteWorkflow(workflows.InventoryScan, contract.InventoryScanInput{BatchSize: 2})
		require.True(t, env.IsWorkflowCompleted())
		require.NoError(t, env.GetWorkflowError())
		var res contract.InventoryScanResult
		require.NoError(t, env.GetWorkflowResult(&res))
		return &res
	}

	require.Equal(t, &contract.InventoryScanResult{Signalled: 3}, scan())
	require.Equal(t, []string{"p1", "p2", "p3"}, f.skus())

	f.got = nil
	require.Equal(t, &contract.InventoryScanResult{}, scan(), "nothing changed")
	require.Empty(t, f.skus())

	require.NoError(t, st.SetStockLevel(ctx, "p2", 1))
	require.NoError(t, st.SetStockLevel(ctx, "p3", 30)) // unchanged
	require.Equal(t, &contract.InventoryScanResult{Signalled: 1}, scan())
	require.Len(t, f.got, 1)
	p2, err := st.GetProduct(ctx, "p2")
	require.NoError(t, err)
	obs := f.got[0]
	require.Equal(t, "p2", obs.SKU)
	require.Equal(t, 1, obs.Level.Level)
	require.True(t, obs.Level.ObservedAt.Equal(p2.StockChangedAt), "observed at the change, not the scan")
	require.Equal(t, fmt.Sprintf("scan/p2/1/%d", p2.StockChangedAt.UnixMicro()), obs.Level.EventID)
}
