package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/webhooks"
)

// signBoth signs payload as Stripe does while it rolls a signing secret:
// one timestamp, a v1 signature with each secret.
func signBoth(payload []byte, oldSecret, newSecret string, at time.Time) string {
	first := sign(payload, oldSecret, at)
	second := sign(payload, newSecret, at)
	_, v1, _ := strings.Cut(second, ",")
	return first + "," + v1
}

// waitStatus waits until the workflow's status query says state.
func (f *fixture) waitStatus(workflowID, state string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		v, err := f.temporal.QueryWorkflow(context.Background(), workflowID, "", contract.StatusQuery)
		if err != nil {
			return false
		}
		var st contract.Status
		return v.Get(&st) == nil && st.State == state
	}, 30*time.Second, 100*time.Millisecond, "%s reaches %s", workflowID, state)
}

// requireAudited checks the audit log names actor doing action to subject,
// successfully.
func (f *fixture) requireAudited(actor, action, subject string) {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.store.Pool().QueryRow(context.Background(), `
		SELECT count(*) FROM audit_log WHERE actor = $1 AND action = $2 AND subject = $3 AND details->>'outcome' = 'ok'`,
		actor, action, subject).Scan(&n))
	require.Positive(f.t, n, "audit_log has %s by %s on %s", action, actor, subject)
}

// requireNoKeyMaterial reads every event of the workflow's latest run's
// history raw, as stored, and fails if any of the secrets appears in one.
// The fixture's client writes payloads as plain JSON (no codec), so a
// secret in any payload, memo, header or failure would show here.
func requireNoKeyMaterial(t *testing.T, c client.Client, workflowID string, secrets ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		raw, err := proto.Marshal(ev)
		require.NoError(t, err)
		for _, s := range secrets {
			require.NotContains(t, string(raw), s, "event %d (%s) of %s holds key material", ev.GetEventId(), ev.GetEventType(), workflowID)
		}
		events++
	}
	require.Positive(t, events, "read the history of %s", workflowID)
}

// proofs tells the fixture's rotations when a delivery proved a submitted
// webhook secret, as crmflow serve does.
func (f *fixture) proofs() *webhooks.Proofs {
	return &webhooks.Proofs{
		Pending: func(ctx context.Context, provider string) ([]webhooks.PendingSecret, error) {
			pending, err := f.creds.PendingSecrets(ctx, provider, "api_key")
			out := make([]webhooks.PendingSecret, len(pending))
			for i, c := range pending {
				out[i] = webhooks.PendingSecret{Version: c.Version, Secret: c.Secret.Reveal()}
			}
			return out, err
		},
		Proven: func(ctx context.Context, provider string, version int) error {
			return f.starter.SignalKeyRotation(ctx, provider, contract.KeyRotationSecretProvenSignal, version)
		},
	}
}
