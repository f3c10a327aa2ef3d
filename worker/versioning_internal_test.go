package worker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// substitute registers a build's own function for some workflow types,
// keeping the name and versioning behaviour worker.RegisterWorkflows gives
// them: the same worker, with different code in a workflow, as a new
// release would be.
type substitute struct {
	sdkworker.WorkflowRegistry
	fns map[string]any
}

func (s substitute) RegisterWorkflowWithOptions(fn any, o workflow.RegisterOptions) {
	if f, ok := s.fns[o.Name]; ok {
		fn = f
	}
	s.WorkflowRegistry.RegisterWorkflowWithOptions(fn, o)
}

// A bounded workflow (registered Pinned, as OrderConfirmation). Build A
// waits for "finish" and says "a".
func boundedA(ctx workflow.Context) (string, error) {
	workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	return "a", nil
}

// Build B changed it without workflow.GetVersion (a timer first): a run
// started on A that moved to B would fail its replay, which Pinned allows.
func boundedB(ctx workflow.Context) (string, error) {
	if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
		return "", err
	}
	workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	return "b", nil
}

// A long-lived entity (registered AutoUpgrade, as LowStockAlert): each
// "step" update is handled and answered with every step so far; "stop"
// ends it.
func entity(handle func(ctx workflow.Context, step string) string) func(workflow.Context) ([]string, error) {
	return func(ctx workflow.Context) ([]string, error) {
		var steps []string
		stopped := false
		err := workflow.SetUpdateHandler(ctx, "step", func(ctx workflow.Context, step string) ([]string, error) {
			if step == "stop" {
				stopped = true
			} else {
				steps = append(steps, handle(ctx, step))
			}
			return steps, nil
		})
		if err != nil {
			return nil, err
		}
		err = workflow.Await(ctx, func() bool { return stopped })
		return steps, err
	}
}

// Build A handles a step as "a:<step>".
var entityA = entity(func(_ workflow.Context, step string) string { return "a:" + step })

// Build B changed how steps are handled, behind workflow.GetVersion. A
// change id is resolved once per run, where the run first reaches it: a
// run that had handled a step on A replays that step as DefaultVersion
// and keeps A's branch (deterministically) until it continues as new; a
// run that reaches the point first on B takes the new branch.
var entityB = entity(func(ctx workflow.Context, step string) string {
	if workflow.GetVersion(ctx, "handled-by-b", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return "a:" + step
	}
	return "b:" + step
})

// TestTwoBuildsOfTheWorker runs two builds of worker.New against one
// server as a rollout does: A alone, made current by PromoteIfFirst, then
// B beside it, made current by Promote (what `crmflow deploy promote`
// calls). The bounded run started on A finishes on A, a run started after
// the promotion runs on B, and the AutoUpgrade entities started on A carry
// on on B, which replays what A did: the one that reaches the changed code
// first on B takes B's GetVersion branch, the one that had passed it on A
// keeps A's.
func TestTwoBuildsOfTheWorker(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	deployment := fmt.Sprintf("crmflow-test-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startBuild := func(buildID string, bounded, long any) {
		w := New(c, Options{TaskQueue: queue, BuildID: buildID, DeploymentName: deployment,
			wrapWorkflows: func(r sdkworker.WorkflowRegistry) sdkworker.WorkflowRegistry {
				return substitute{r, map[string]any{contract.OrderConfirmationType: bounded, contract.LowStockAlertType: long}}
			}})
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
	}
	start := func(id, workflowType string) client.WorkflowRun {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: queue + "/" + id, TaskQueue: queue}, workflowType)
		require.NoError(t, err)
		return run
	}
	step := func(run client.WorkflowRun, s string) []string {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), RunID: run.GetRunID(),
			UpdateName: "step", Args: []any{s}, WaitForStage: client.WorkflowUpdateStageCompleted})
		require.NoError(t, err)
		var steps []string
		require.NoError(t, h.Get(ctx, &steps))
		return steps
	}

	startBuild("build-a", boundedA, entityA)
	current, promoted, err := PromoteIfFirst(ctx, c, deployment, "build-a")
	require.NoError(t, err)
	require.True(t, promoted, "the first build of a new deployment becomes current")
	require.Equal(t, "build-a", current)
	old := start("bounded-old", contract.OrderConfirmationType)
	idle := start("entity-idle", contract.LowStockAlertType)
	busy := start("entity-busy", contract.LowStockAlertType)
	require.Equal(t, []string{"a:1"}, step(busy, "1"))
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, old.GetID(), old.GetRunID())
		info := d.GetWorkflowExecutionInfo().GetVersioningInfo()
		return err == nil && info.GetBehavior() == enumspb.VERSIONING_BEHAVIOR_PINNED && info.GetDeploymentVersion().GetBuildId() == "build-a"
	}, time.Minute, 50*time.Millisecond, "the bounded run is pinned to build A once its first task completes")
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, idle.GetID(), idle.GetRunID())
		return err == nil && d.GetWorkflowExecutionInfo().GetVersioningInfo().GetDeploymentVersion().GetBuildId() == "build-a"
	}, time.Minute, 50*time.Millisecond, "the idle entity's first task ran on build A")

	startBuild("build-b", boundedB, entityB)
	a := waitForVersion(ctx, t, c, deployment, "build-a", nil)
	waitForVersion(ctx, t, c, deployment, "build-b", a.TaskQueues)
	previous, err := Promote(ctx, c, deployment, "build-b")
	require.NoError(t, err)
	require.Equal(t, "build-a", previous)
	current, promoted, err = PromoteIfFirst(ctx, c, deployment, "build-a")
	require.NoError(t, err)
	require.False(t, promoted, "a restarted worker of an old build does not take over")
	require.Equal(t, "build-b", current)

	fresh := start("bounded-new", contract.OrderConfirmationType)
	require.NoError(t, c.SignalWorkflow(ctx, fresh.GetID(), fresh.GetRunID(), "finish", nil))
	var got string
	require.NoError(t, fresh.Get(ctx, &got))
	assert.Equal(t, "b", got, "a run started after the promotion runs build B's code")

	require.NoError(t, c.SignalWorkflow(ctx, old.GetID(), old.GetRunID(), "finish", nil))
	require.NoError(t, old.Get(ctx, &got))
	assert.Equal(t, "a", got, "the run started on A finished on A, whose code B could not replay")

	require.Equal(t, []string{"b:1"}, step(idle, "1"), "the idle entity moved to B and took B's new branch")
	require.Equal(t, []string{"a:1", "a:2"}, step(busy, "2"), "the busy entity moved to B and kept A's branch")
	for _, e := range []client.WorkflowRun{idle, busy} {
		step(e, "stop")
		require.NoError(t, e.Get(ctx, nil))
	}

	oldBuilds, oldBehaviours, _ := taskBuilds(ctx, t, c, old)
	assert.Equal(t, []string{"build-a"}, oldBuilds, "every task of the old bounded run ran on A")
	assert.Equal(t, []enumspb.VersioningBehavior{enumspb.VERSIONING_BEHAVIOR_PINNED}, oldBehaviours)
	freshBuilds, _, _ := taskBuilds(ctx, t, c, fresh)
	assert.Equal(t, []string{"build-b"}, freshBuilds)
	for _, e := range []struct {
		run     client.WorkflowRun
		markers int
	}{{idle, 1}, {busy, 0}} {
		builds, behaviours, markers := taskBuilds(ctx, t, c, e.run)
		assert.Equal(t, []string{"build-a", "build-b"}, builds, "%s's tasks ran on A, then on B", e.run.GetID())
		assert.Equal(t, []enumspb.VersioningBehavior{enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE}, behaviours)
		assert.Equal(t, e.markers, markers, "%s's GetVersion markers", e.run.GetID())
	}
}

// waitForVersion waits until Temporal lists buildID in the deployment with
// its workers polling the workflow queue and every provider queue, and at
// least queues, which Promote requires of a new current build.
func waitForVersion(ctx context.Context, t *testing.T, c client.Client, deployment, buildID string, queues []string) Version {
	t.Helper()
	var found Version
	require.Eventually(t, func() bool {
		d, err := DescribeDeployment(ctx, c, deployment)
		if err != nil {
			return false
		}
		for _, v := range d.Versions {
			if v.BuildID == buildID && len(v.TaskQueues) == 1+len(providers.Queued()) && containsAll(v.TaskQueues, queues) {
				found = v
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "build %s polls its queues", buildID)
	return found
}

func containsAll(have, want []string) bool {
	for _, q := range want {
		if !slices.Contains(have, q) {
			return false
		}
	}
	return true
}

// taskBuilds reads a run's history: the distinct builds that completed its
// workflow tasks, in order, the distinct behaviours they reported, and how
// many GetVersion markers it recorded.
func taskBuilds(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun) (builds []string, behaviours []enumspb.VersioningBehavior, markers int) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			if b := a.GetDeploymentVersion().GetBuildId(); len(builds) == 0 || builds[len(builds)-1] != b {
				builds = append(builds, b)
			}
			if !slices.Contains(behaviours, a.GetVersioningBehavior()) {
				behaviours = append(behaviours, a.GetVersioningBehavior())
			}
		}
		if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
			markers++
		}
	}
	return builds, behaviours, markers
}
