package inbox_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/testsupport/pgexplain"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// pendingIndexes hold pending rows only (partial on handed_off_at IS NULL):
// walking one of them reads the backlog, not the inbox's history.
var pendingIndexes = []string{"webhook_inbox_due_idx", "webhook_inbox_pending_id_idx", "webhook_inbox_pending_workflow_idx"}

// TestClaimAndBacklogUseIndexes: with retention the inbox holds tens of
// thousands of handed-off rows (30 days whole, 90 days as records) and
// some pending ones; the dispatcher's claim, every pass, and the backlog,
// every sweep and scrape, must read the pending rows through an index,
// never the whole table, with a few rows pending and with a backlog (a
// Temporal outage). The statements are the ones the store really sends,
// recorded with their arguments and EXPLAINed after ANALYZE.
func TestClaimAndBacklogUseIndexes(t *testing.T) {
	t.Parallel()
	for _, pending := range []int{8, 5000} {
		t.Run(fmt.Sprintf("%d pending", pending), func(t *testing.T) {
			t.Parallel()
			url := testenv.DatabaseURL(t)
			pool, rec := pgexplain.RecordingPool(t, url)
			ctx := t.Context()
			for _, q := range []string{
				`INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status, handed_off_at,
                           received_at)
SELECT 'stripe', 'evt_' || g, 'payment_intent.succeeded', 'order-confirmation/o-' || (g % 5000), '{}', '{}'::bytea,
       'delivered', now() - g * interval '1 minute', now() - g * interval '1 minute'
FROM generate_series(1, 20000) g`,
				fmt.Sprintf(`INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload)
SELECT 'stripe', 'evt_pending_' || g, 'payment_intent.succeeded', 'order-confirmation/p-' || (g %% 3), '{}', '{}'::bytea
FROM generate_series(1, %d) g`, pending),
				`ANALYZE webhook_inbox`,
			} {
				_, err := pool.Exec(ctx, q)
				require.NoError(t, err)
			}
			st := inbox.NewStore(pool)
			claimed, err := st.Claim(ctx, 64, time.Minute)
			require.NoError(t, err)
			require.Len(t, claimed, 3, "one row per target")
			backlog, err := st.Backlog(ctx)
			require.NoError(t, err)
			require.EqualValues(t, pending, backlog.Pending)

			for name, parts := range map[string][]string{
				"claim":   {"UPDATE webhook_inbox", "FOR UPDATE SKIP LOCKED"},
				"backlog": {"SELECT count(*)", "FROM webhook_inbox"},
			} {
				stmt, ok := rec.Last(parts...)
				require.True(t, ok, "%s: statement not recorded", name)
				plan, err := pgexplain.Explain(ctx, pool, stmt)
				require.NoError(t, err, name)
				t.Logf("%s:\n%s", name, plan)
				assert.Empty(t, plan.SeqScans("webhook_inbox"), "%s scans webhook_inbox whole:\n%s", name, plan)
				plan.Walk(func(n *pgexplain.Node) {
					// An index walked without a condition reads all its rows:
					// fine for a pending-only index, the whole history for
					// any other (the primary key in id order, say).
					if n.Index != "" && n.IndexCond == "" && !slices.Contains(pendingIndexes, n.Index) {
						t.Errorf("%s walks %s, every row of the inbox:\n%s", name, n.Index, plan)
					}
				})
			}
		})
	}
}
