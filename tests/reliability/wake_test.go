package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
)

// TestRowBehindItsTargetsRowIsClaimedOnceThatOneIsDone: a target's rows go
// one at a time, so a row behind an earlier row of its target can only be
// claimed once that one is done, and the dispatcher must then claim again
// of its own accord. Its sweep runs once an hour here, so only that
// wake-up can deliver the later row. A row gets behind in two ways: it was
// committed with the earlier one, and the claim that took that one passed
// it over; or it was committed while the earlier one was in flight. A row
// of any target also waits while the dispatcher holds as many rows as it
// may, until one of them is done.
func TestRowBehindItsTargetsRowIsClaimedOnceThatOneIsDone(t *testing.T) {
	t.Parallel()
	c := dialTemporal(t)
	noSweep := inbox.DispatcherOptions{Sweep: time.Hour}

	// Both rows are committed before the dispatcher starts, and it is not
	// poked: its first claim, as it starts, takes the earlier row only.
	for _, tc := range []struct {
		name string
		opts inbox.DispatcherOptions
		// later commits the later row and returns its event id.
		later func(t *testing.T, st *store.Store, ib *inbox.Store) string
	}{
		{"committed together", noSweep, func(t *testing.T, _ *store.Store, ib *inbox.Store) string {
			commitPaymentEvent(t, ib, "evt_o-first-again", "o-first") // the same order: behind the earlier row
			return "evt_o-first-again"
		}},
		{"no room for it", inbox.DispatcherOptions{Sweep: time.Hour, Batch: 1}, func(t *testing.T, st *store.Store, ib *inbox.Store) string {
			commitPaymentForNewOrder(t, st, ib, "o-second") // another order: waits for room, not for its target
			return "evt_o-second"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, _ := newDatabase(t)
			ib := inbox.NewStore(st.Pool())
			commitPaymentForNewOrder(t, st, ib, "o-first")
			later := tc.later(t, st, ib)

			runDispatcherWith(t, ib, st, c, tc.opts)
			waitFor(t, time.Minute, "the later row delivered", func() bool { return inboxStatus(t, st, later) == inbox.StatusDelivered })
			require.Equal(t, inbox.StatusDelivered, inboxStatus(t, st, "evt_o-first"))
		})
	}

	t.Run("committed while the earlier one is in flight", func(t *testing.T) {
		t.Parallel()
		st, _ := newDatabase(t)
		ib := inbox.NewStore(st.Pool())
		lookups := &stuckLookups{Store: st, order: "o-slow", entered: make(chan struct{}), release: make(chan struct{})}
		d := runDispatcherWith(t, ib, lookups, c, noSweep)

		commitPaymentForNewOrder(t, st, ib, "o-slow")
		d.Poke()
		<-lookups.entered
		commitPaymentEvent(t, ib, "evt_o-slow-again", "o-slow")
		d.Poke()
		// Delivered while the first row is still stuck: the claim that
		// took it began after the later row was committed, and passed
		// that row over.
		commitPaymentForNewOrder(t, st, ib, "o-other")
		d.Poke()
		waitFor(t, time.Minute, "another order's row delivered", func() bool { return inboxStatus(t, st, "evt_o-other") == inbox.StatusDelivered })
		require.False(t, lookups.expired.Load(), "the stuck call reached its deadline first (the machine was too slow to tell)")
		require.Equal(t, inbox.StatusPending, inboxStatus(t, st, "evt_o-slow-again"), "the later row waits for the earlier one")

		close(lookups.release)
		waitFor(t, time.Minute, "the later row delivered", func() bool { return inboxStatus(t, st, "evt_o-slow-again") == inbox.StatusDelivered })
		require.Equal(t, inbox.StatusDelivered, inboxStatus(t, st, "evt_o-slow"))
	})
}

// inboxStatus is the status of the inbox row of a provider event id.
func inboxStatus(t *testing.T, st *store.Store, eventID string) string {
	t.Helper()
	var s string
	require.NoError(t, st.Pool().QueryRow(context.Background(), `SELECT status FROM webhook_inbox WHERE event_id = $1`, eventID).Scan(&s))
	return s
}
