package temporalserver_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/internal/temporalserver"
)

// starts records when each activity started.
type starts struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *starts) Started(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
	return nil
}

// fanOut runs n activities at once on queue.
func fanOut(ctx workflow.Context, queue string, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: queue, StartToCloseTimeout: 10 * time.Second})
	var s *starts
	fs := make([]workflow.Future, n)
	for i := range fs {
		fs[i] = workflow.ExecuteActivity(ctx, s.Started)
	}
	for _, f := range fs {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// TestNamedQueueGetsItsRate: a queue named in OnePartitionQueues (as
// `crmflow dev` names the provider queues) runs at the rate its worker
// sets, within 10 %, measured from the activities' start timestamps after
// the limiter's first-second burst.
func TestNamedQueueGetsItsRate(t *testing.T) {
	s, err := temporalserver.Start(temporalserver.Options{OnePartitionQueues: []string{"limited"}, LogLevel: "error"})
	require.NoError(t, err)
	defer s.Stop()
	c := dial(t, s)

	const perSecond, count = 5.0, 40
	rec := &starts{}
	wf := worker.New(c, "workflows", worker.Options{})
	wf.RegisterWorkflow(fanOut)
	acts := worker.New(c, "limited", worker.Options{TaskQueueActivitiesPerSecond: perSecond, DisableWorkflowWorker: true})
	acts.RegisterActivity(rec)
	require.NoError(t, wf.Start())
	defer wf.Stop()
	require.NoError(t, acts.Start())
	defer acts.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "workflows"}, fanOut, "limited", count)
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))

	rec.mu.Lock()
	times := rec.times
	rec.mu.Unlock()
	require.Len(t, times, count)
	var steady []time.Time
	for _, at := range times {
		if at.Sub(times[0]) >= time.Second {
			steady = append(steady, at)
		}
	}
	require.GreaterOrEqual(t, len(steady), count/2)
	rate := float64(len(steady)-1) / steady[len(steady)-1].Sub(steady[0]).Seconds()
	t.Logf("%d starts after the first second at %.2f/s (configured %.0f/s)", len(steady), rate, perSecond)
	assert.InDelta(t, perSecond, rate, perSecond/10)
}
