package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (regenerate with `CRMFLOW_UPDATE_HISTORIES=1 go test ./webhooks/`). A
// change to workflow code that would break runs already in flight fails here
// with a non-determinism error; guard such changes with workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.OrderConfirmation, workflow.RegisterOptions{Name: workflows.OrderConfirmationType})
			r.RegisterWorkflowWithOptions(workflows.ReferralReward, workflow.RegisterOptions{Name: workflows.ReferralRewardType})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, file))
		})
	}
}
