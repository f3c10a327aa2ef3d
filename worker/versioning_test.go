package worker_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/worker"
)

// behaviours records what worker.RegisterWorkflows registers.
type behaviours map[string]workflow.VersioningBehavior

func (b behaviours) RegisterWorkflow(any) { b["(no name)"] = workflow.VersioningBehaviorUnspecified }
func (b behaviours) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	b[o.Name] = o.VersioningBehavior
}
func (b behaviours) RegisterDynamicWorkflow(any, workflow.DynamicRegisterOptions) {
	b["(dynamic)"] = workflow.VersioningBehaviorUnspecified
}

// TestEveryWorkflowDeclaresAVersioningBehavior: a versioned worker refuses
// to start with a workflow that has none (the SDK panics), and the choice
// decides how a rollout treats its runs, so each is made here on purpose:
// bounded workflows are Pinned (they finish on the build they started on,
// and may change freely), long-lived entities AutoUpgrade (they move to the
// new build, and change only behind workflow.GetVersion).
func TestEveryWorkflowDeclaresAVersioningBehavior(t *testing.T) {
	got := behaviours{}
	worker.RegisterWorkflows(got)
	for name, b := range got {
		assert.NotEqual(t, workflow.VersioningBehaviorUnspecified, b,
			"workflow %s declares no VersioningBehavior in worker.RegisterWorkflows: Pinned if its runs end "+
				"within a rollout's drain time, AutoUpgrade (changes behind workflow.GetVersion) if they live on", name)
	}
	want := behaviours{
		contract.OrderConfirmationType: workflow.VersioningBehaviorPinned,
		contract.OrderRefundType:       workflow.VersioningBehaviorPinned,
		contract.KeyRotationType:       workflow.VersioningBehaviorPinned,
		contract.InventoryScanType:     workflow.VersioningBehaviorPinned,
		contract.LowStockAlertType:     workflow.VersioningBehaviorAutoUpgrade,
		contract.AliasLifecycleType:    workflow.VersioningBehaviorAutoUpgrade,
		contract.ReferralRewardType:    workflow.VersioningBehaviorAutoUpgrade,
	}
	for name, b := range want {
		require.Contains(t, got, name)
		assert.Equal(t, b, got[name], "%s's versioning behaviour", name)
	}
}
