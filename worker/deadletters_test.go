package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/workflows"
)

// heldDeadLetters is the real dead-letter store, except that the recording
// activity holds its answer after the row is committed until released: the
// moment an operator can already see the dead letter and the run cannot
// yet know its id.
type heldDeadLetters struct {
	*store.Store
	recorded chan int64
	release  chan struct{}
}

func (h *heldDeadLetters) RecordDeadLetter(ctx context.Context, d store.DeadLetter) (int64, error) {
	id, err := h.Store.RecordDeadLetter(ctx, d)
	if err != nil {
		return 0, err
	}
	h.recorded <- id
	select {
	case <-h.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return id, nil
}

// TestDecisionSentTheMomentTheDeadLetterShowsIsAccepted: an order whose
// row is missing parks at load-order. As soon as its dead letter is in
// PostgreSQL (what `crmflow dlq list` and GET /v1/dead-letters show), the
// operator's skip is sent once, with no retrying: the run accepts it,
// though the activity that recorded the dead letter has not answered yet,
// and acts on it when it does.
func TestDecisionSentTheMomentTheDeadLetterShowsIsAccepted(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	st := testenv.Store(t)
	held := &heldDeadLetters{Store: st, recorded: make(chan int64, 1), release: make(chan struct{})}
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.OrderConfirmation, workflow.RegisterOptions{Name: contract.OrderConfirmationType})
	w.RegisterActivity(&activities.OrderActivities{Store: st})
	w.RegisterActivity(&activities.DeadLetterActivities{Store: held})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: contract.OrderConfirmationID("o-missing"), TaskQueue: queue},
		contract.OrderConfirmationType, contract.OrderConfirmationInput{OrderID: "o-missing"})
	require.NoError(t, err)

	var id int64
	select {
	case id = <-held.recorded:
	case <-ctx.Done():
		t.Fatal("the run never parked")
	}
	parked, err := st.ListDeadLetters(ctx, store.DeadLetterParked, 10)
	require.NoError(t, err)
	require.Len(t, parked, 1)
	require.Equal(t, id, parked[0].ID, "the operator sees the dead letter")

	// Sent once, straight to Temporal: the starter's patience with
	// not-parked answers is not what is tested here.
	handle, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: contract.DeadLetterDecisionUpdate,
		Args:         []any{contract.DeadLetterDecision{DeadLetterID: id, Action: contract.DecisionSkip, Operator: "ops"}},
		WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	require.NoError(t, err, "the decision is accepted while the dead letter is being recorded")
	close(held.release)

	var res contract.DeadLetterDecisionResult
	require.NoError(t, handle.Get(ctx, &res))
	assert.Equal(t, contract.DeadLetterDecisionResult{Step: "load-order", Action: contract.DecisionSkip}, res)
	var out contract.OrderConfirmationResult
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "skipped", out.State)
	d, err := st.GetDeadLetter(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterSkipped, d.Status)
	assert.Equal(t, "ops", d.DecidedBy)
}
