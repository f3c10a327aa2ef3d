package reliability

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
)

// countingLookups is the store, counting how orders are looked up: claims'
// look-ups of many at once, and each single look-up by order. With failing
// set, every look-up of many fails.
type countingLookups struct {
	*store.Store
	failing bool

	mu      sync.Mutex
	batches int
	single  map[string]int
}

func (l *countingLookups) ExistingOrders(ctx context.Context, ids []string) (map[string]bool, error) {
	l.mu.Lock()
	l.batches++
	l.mu.Unlock()
	if l.failing {
		return nil, errors.New("look-up of many orders failed (test)")
	}
	return l.Store.ExistingOrders(ctx, ids)
}

func (l *countingLookups) GetOrder(ctx context.Context, id string) (*store.Order, error) {
	l.mu.Lock()
	l.single[id]++
	l.mu.Unlock()
	return l.Store.GetOrder(ctx, id)
}

// TestClaimLooksUpItsPaymentsOrdersAtOnce: the dispatcher looks up the
// orders of a claim's payments in one query, so a hand-off for an existing
// order makes no look-up of its own; a payment for an order that does not
// exist still looks it up alone and ends unroutable. When the look-up of
// many fails, every row looks up its own order and the outcome is the same:
// the shortcut never decides a row's fate. No worker runs: the runs only
// collect their signals.
func TestClaimLooksUpItsPaymentsOrdersAtOnce(t *testing.T) {
	t.Parallel()
	c := dialTemporal(t)

	for _, failing := range []bool{false, true} {
		t.Run(fmt.Sprintf("look-up of many fails=%v", failing), func(t *testing.T) {
			ctx := context.Background()
			st, _ := newDatabase(t)
			ib := inbox.NewStore(st.Pool())
			prefix := fmt.Sprintf("o-lookup-%v", failing)
			const orders = 20
			for i := range orders {
				commitPaymentForNewOrder(t, st, ib, fmt.Sprintf("%s-%02d", prefix, i))
			}
			missing := prefix + "-missing"
			commitPayment(t, ib, missing)

			lookups := &countingLookups{Store: st, failing: failing, single: map[string]int{}}
			runDispatcher(t, ib, lookups, c)

			statuses := func() map[string]int {
				rows, err := st.Pool().Query(ctx, `SELECT status FROM webhook_inbox`)
				require.NoError(t, err)
				defer rows.Close()
				out := map[string]int{}
				for rows.Next() {
					var s string
					require.NoError(t, rows.Scan(&s))
					out[s]++
				}
				require.NoError(t, rows.Err())
				return out
			}
			waitFor(t, time.Minute, "every row handed off", func() bool { return statuses()[inbox.StatusPending] == 0 })
			assert.Equal(t, map[string]int{inbox.StatusDelivered: orders, inbox.StatusUnroutable: 1}, statuses())

			lookups.mu.Lock()
			defer lookups.mu.Unlock()
			assert.GreaterOrEqual(t, lookups.batches, 1, "the claim looked up its orders at once")
			if !failing {
				assert.Equal(t, map[string]int{missing: 1}, lookups.single,
					"only the payment whose order the claim's look-up did not find looks up its own")
				return
			}
			assert.Len(t, lookups.single, orders+1, "with the look-up of many failing, every row looks up its own order")
			assert.Equal(t, 1, lookups.single[missing])
		})
	}
}
