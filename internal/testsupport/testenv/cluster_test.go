package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func clusterEcho(_ workflow.Context, in string) (string, error) { return "echo " + in, nil }

func dialAddr(t *testing.T, addr string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: "default", Logger: quietLogger{}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// TestTemporalClusterIsOneCluster starts two nodes on one PostgreSQL: a
// workflow started through node A runs on a worker polling node B, and node
// B reports it completed and lists it; the balancer reaches the same
// cluster.
func TestTemporalClusterIsOneCluster(t *testing.T) {
	c := StartTemporalCluster(t, 2)
	addrs := c.FrontendAddrs()
	require.Len(t, addrs, 2)
	a, b := dialAddr(t, addrs[0]), dialAddr(t, addrs[1])

	w := worker.New(b, "cluster-echo", worker.Options{})
	w.RegisterWorkflow(clusterEcho)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []string{"through-a-1", "through-a-2", "through-a-3", "through-a-4"}
	for _, id := range ids {
		_, err := a.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "cluster-echo"}, clusterEcho, id)
		require.NoError(t, err)
	}
	for _, id := range ids {
		var out string
		require.NoError(t, b.GetWorkflow(ctx, id, "").Get(ctx, &out), id)
		assert.Equal(t, "echo "+id, out)
		desc, err := b.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	}
	require.Eventually(t, func() bool {
		resp, err := b.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: "ExecutionStatus = 'Completed'"})
		return err == nil && resp.GetCount() == int64(len(ids))
	}, 30*time.Second, 200*time.Millisecond, "node B's visibility lists what node A started")

	var shards []int32
	for i := range 2 {
		s, err := c.Shards(i)
		require.NoError(t, err)
		shards = append(shards, s...)
	}
	assert.ElementsMatch(t, []int32{1, 2, 3, 4}, shards, "the two nodes own the four shards between them")

	lb := dialAddr(t, c.FrontendAddr())
	desc, err := lb.DescribeWorkflowExecution(ctx, ids[0], "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
}
