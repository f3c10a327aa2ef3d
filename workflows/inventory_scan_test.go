package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// fakeInventory plays the products table: SKUs whose level differs from the
// level last marked signalled are "changed".
type fakeInventory struct {
	levels    map[string]int
	signalled map[string]int
	order     []string
	sent      [][]string
	marked    [][]string
	reject    string
}

func newFakeInventory(levels []activities.SKULevel) *fakeInventory {
	f := &fakeInventory{levels: map[string]int{}, signalled: map[string]int{}}
	for _, l := range levels {
		f.levels[l.SKU] = l.Level
		f.order = append(f.order, l.SKU)
	}
	return f
}

func (f *fakeInventory) changed(_ context.Context, in activities.ChangedStockLevelsInput) (*activities.ChangedStockLevelsOutput, error) {
	out := &activities.ChangedStockLevelsOutput{}
	for _, sku := range f.order {
		if last, ok := f.signalled[sku]; (!ok || last != f.levels[sku]) && len(out.Levels) < in.Limit {
			out.Levels = append(out.Levels, activities.SKULevel{SKU: sku, Level: f.levels[sku], ChangedAt: stockT0})
		}
	}
	return out, nil
}

func (f *fakeInventory) signal(_ context.Context, in activities.SignalStockLevelsInput) (*activities.SignalStockLevelsOutput, error) {
	out := &activities.SignalStockLevelsOutput{}
	var batch []string
	for _, l := range in.Levels {
		batch = append(batch, l.SKU)
		if l.SKU == f.reject {
			out.Rejected = append(out.Rejected, l.SKU)
			continue
		}
		out.Signalled++
	}
	f.sent = append(f.sent, batch)
	return out, nil
}

func (f *fakeInventory) mark(_ context.Context, in activities.MarkStockSignalledInput) error {
	var batch []string
	for _, l := range in.Levels {
		f.signalled[l.SKU] = l.Level
		batch = append(batch, l.SKU)
	}
	f.marked = append(f.marked, batch)
	return nil
}

func runScan(t *testing.T, f *fakeInventory, in contract.InventoryScanInput, setup func(*testsuite.TestWorkflowEnvironment)) (*testsuite.TestWorkflowEnvironment, *contract.InventoryScanResult, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.InventoryScan)
	env.RegisterActivity(inventory)
	if setup != nil {
		setup(env)
	}
	env.OnActivity(inventory.ChangedStockLevels, mock.Anything, mock.Anything).Return(f.changed).Maybe()
	env.OnActivity(inventory.SignalStockLevels, mock.Anything, mock.Anything).Return(f.signal).Maybe()
	env.OnActivity(inventory.MarkStockSignalled, mock.Anything, mock.Anything).Return(f.mark).Maybe()
	env.ExecuteWorkflow(workflows.InventoryScan, in)
	require.True(t, env.IsWorkflowCompleted())
	if err := env.GetWorkflowError(); err != nil {
		return env, nil, err
	}
	var res contract.InventoryScanResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return env, &res, nil
}

func TestInventoryScanSignalsOnlyChangedSKUs(t *testing.T) {
	f := newFakeInventory([]activities.SKULevel{{SKU: "a", Level: 1}, {SKU: "b", Level: 2}, {SKU: "c", Level: 3}})
	f.signalled = map[string]int{"a": 1, "b": 9} // a unchanged, b changed, c never signalled

	env, res, err := runScan(t, f, contract.InventoryScanInput{}, nil)
	require.NoError(t, err)
	require.Equal(t, &contract.InventoryScanResult{Signalled: 2}, res)
	require.Equal(t, [][]string{{"b", "c"}}, f.sent)
	require.Equal(t, [][]string{{"b", "c"}}, f.marked)
	v, err := env.QueryWorkflow(contract.StatusQuery)
	require.NoError(t, err)
	var st contract.Status
	require.NoError(t, v.Get(&st))
	require.Equal(t, contract.Status{Step: "done", State: "done", Detail: "signalled 2 SKUs, rejected 0"}, st)

	// The next scan finds nothing: no signal, no mark.
	f.sent, f.marked = nil, nil
	_, res, err = runScan(t, f, contract.InventoryScanInput{}, nil)
	require.NoError(t, err)
	require.Equal(t, &contract.InventoryScanResult{}, res)
	require.Empty(t, f.sent)
	require.Empty(t, f.marked)
}

func TestInventoryScanBatchesAndMarksRejected(t *testing.T) {
	f := newFakeInventory([]activities.SKULevel{{SKU: "a", Level: 1}, {SKU: "b", Level: 2}, {SKU: "c", Level: 3}, {SKU: "d", Level: 4}, {SKU: "e", Level: 5}})
	f.reject = "c"
	_, res, err := runScan(t, f, contract.InventoryScanInput{BatchSize: 2}, nil)
	require.NoError(t, err)
	require.Equal(t, &contract.InventoryScanResult{Signalled: 4, Rejected: []string{"c"}}, res)
	require.Equal(t, [][]string{{"a", "b"}, {"c", "d"}, {"e"}}, f.sent)
	require.Equal(t, f.sent, f.marked, "every signalled batch is marked, rejected SKUs included")
}

func TestInventoryScanStopsAtItsBatchBound(t *testing.T) {
	var levels []activities.SKULevel
	for i := range 25 {
		levels = append(levels, activities.SKULevel{SKU: string(rune('A' + i)), Level: i})
	}
	f := newFakeInventory(levels)
	_, res, err := runScan(t, f, contract.InventoryScanInput{BatchSize: 1}, nil)
	require.NoError(t, err)
	require.True(t, res.More)
	require.Equal(t, 20, res.Signalled)
	require.Len(t, f.marked, 20)
}

func TestInventoryScanFailedSignalMarksNothing(t *testing.T) {
	f := newFakeInventory([]activities.SKULevel{{SKU: "a", Level: 1}})
	_, _, err := runScan(t, f, contract.InventoryScanInput{}, func(env *testsuite.TestWorkflowEnvironment) {
		env.SetTestTimeout(time.Minute)
		env.OnActivity(inventory.SignalStockLevels, mock.Anything, mock.Anything).Return(nil,
			temporal.NewNonRetryableApplicationError("no signaller", "TemporalInvalidRequest", errors.New("boom")))
	})
	require.Error(t, err)
	require.Empty(t, f.marked, "a batch is marked only once it was signalled")
}
