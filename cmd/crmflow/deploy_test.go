package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// TestVersionIsTheBuildID: `crmflow version` prints the stamped version,
// and a worker whose binary knows none refuses to run versioned, since
// every such build would claim one build id.
func TestVersionIsTheBuildID(t *testing.T) {
	saved := version
	t.Cleanup(func() { version = saved })
	version = "v-test-1"
	out, err := crmflowOperator(t, "", "version")
	require.NoError(t, err)
	assert.Equal(t, "v-test-1\n", out)

	// A test binary carries no VCS stamp, so an unstamped one knows nothing.
	version = ""
	require.Equal(t, unknownVersion, binaryVersion())
	_, err = crmflowOperator(t, "", "worker")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not know its version")
	_, err = crmflowOperator(t, "", "worker", "--promote", "always")
	require.ErrorContains(t, err, `--promote is "first" or "never"`)
}

// TestDeployStatusAndPromote drives `crmflow deploy` through a rollout of
// two builds of worker.New on a deployment of the test's own: nothing yet,
// the first build made current, the second ramped then promoted, the first
// left draining, and unversioned workers made current again, after which
// a new build's start promotes nothing.
func TestDeployStatusAndPromote(t *testing.T) {
	clearOperatorEnv(t)
	t.Setenv("CRMFLOW_DATABASE_URL", testenv.DatabaseURL(t))
	t.Setenv("CRMFLOW_MASTER_KEY", testenv.MasterKey)
	t.Setenv("CRMFLOW_API_TOKENS", "cli-deploy-token")
	t.Setenv("CRMFLOW_TEMPORAL_ADDRESS", testenv.Temporal(t).FrontendAddr())
	t.Setenv("CRMFLOW_TEMPORAL_NAMESPACE", testenv.Temporal(t).Namespace())
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	deployment := fmt.Sprintf("crmflow-cli-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deploy := func(args ...string) string {
		t.Helper()
		out, err := crmflowOperator(t, "", append(append([]string{"deploy"}, args...), "--deployment", deployment)...)
		require.NoError(t, err, out)
		return out
	}
	status := func() worker.Deployment {
		t.Helper()
		var d worker.Deployment
		require.NoError(t, json.Unmarshal([]byte(deploy("status", "--json")), &d))
		return d
	}
	startBuild := func(buildID string) {
		w := worker.New(c, worker.Options{TaskQueue: queue, BuildID: buildID, DeploymentName: deployment})
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
		// Temporal accepts a build once its workers poll every queue.
		require.Eventually(t, func() bool {
			d, err := worker.DescribeDeployment(ctx, c, deployment)
			if err != nil {
				return false
			}
			for _, v := range d.Versions {
				if v.BuildID == buildID {
					return len(v.TaskQueues) == 1+len(providers.Queued())
				}
			}
			return false
		}, time.Minute, 100*time.Millisecond)
	}

	assert.Contains(t, deploy("status"), "has no builds yet")

	startBuild("b1")
	assert.Contains(t, deploy("promote", "b1"), "Current in deployment "+deployment+": build b1 (was unversioned workers).")
	startBuild("b2")
	assert.Contains(t, deploy("promote", "b2", "--ramp", "25"), "Build b2 gets 25% of new runs")
	d := status()
	assert.Equal(t, "b1", d.Current)
	assert.Equal(t, "b2", d.Ramping)
	assert.EqualValues(t, 25, d.RampPercent)

	out := deploy("promote", "b2")
	assert.Contains(t, out, "build b2 (was build b1)")
	assert.Contains(t, out, "Runs pinned to b1 finish there")
	d = status()
	assert.Equal(t, "b2", d.Current)
	assert.Empty(t, d.Ramping, "promoting the ramping build ends the ramp")
	require.Len(t, d.Versions, 2)
	assert.Equal(t, "b1", d.Versions[0].BuildID, "oldest first")
	assert.Contains(t, []string{worker.StateDraining, worker.StateDrained}, d.Versions[0].State)
	assert.Equal(t, worker.StateCurrent, d.Versions[1].State)
	assert.Contains(t, d.Versions[1].TaskQueues, queue)
	table := deploy("status")
	assert.Contains(t, table, "current  build b2 since ")
	assert.Regexp(t, `b1\s+draining|b1\s+drained`, table)

	_, err := crmflowOperator(t, "", "deploy", "promote", "nope", "--deployment", deployment)
	require.Error(t, err, "an unknown build is refused")

	assert.Contains(t, deploy("promote", "--unversioned"), "unversioned workers (was build b2)")
	current, promoted, err := worker.PromoteIfFirst(ctx, c, deployment, "b3")
	require.NoError(t, err)
	assert.False(t, promoted, "an operator's choice of unversioned workers stands")
	assert.Empty(t, current)
}
