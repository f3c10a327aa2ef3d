package starter_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// statusProbe answers the status query the way every crmflow workflow does.
func statusProbe(ctx workflow.Context) error {
	st := contract.Status{Step: "waiting", State: "pending"}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) { return st, nil }); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	return nil
}

func TestStatus(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(statusProbe, workflow.RegisterOptions{Name: "StatusProbe"})
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "status-probe-" + queue, TaskQueue: queue}, "StatusProbe")
	require.NoError(t, err)

	s := starter.New(c, starter.Options{})
	st, err := s.Status(ctx, "status-probe-"+queue)
	require.NoError(t, err)
	assert.Equal(t, contract.Status{Step: "waiting", State: "pending"}, *st)

	_, err = s.Status(ctx, "no-such-workflow")
	assert.ErrorIs(t, err, starter.ErrNotFound)
}
