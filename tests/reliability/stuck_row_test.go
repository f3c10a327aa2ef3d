package reliability

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
)

// stuckLookups is the store, except that looking up one order blocks until
// the test lets it go (or the hand-off's own deadline ends it): a hand-off
// stuck on a slow call. The claim's look-up of many orders at once never
// finds that order, so its hand-off looks it up alone.
type stuckLookups struct {
	*store.Store
	order   string
	entered chan struct{} // closed when the stuck lookup starts waiting
	release chan struct{} // closed by the test to let it finish
	waiting atomic.Bool   // the stuck lookup is waiting now
	expired atomic.Bool   // its deadline ended it before the release
}

func (l *stuckLookups) ExistingOrders(ctx context.Context, ids []string) (map[string]bool, error) {
	found, err := l.Store.ExistingOrders(ctx, ids)
	delete(found, l.order)
	return found, err
}

func (l *stuckLookups) GetOrder(ctx context.Context, id string) (*store.Order, error) {
	if id == l.order && !l.expired.Load() {
		l.waiting.Store(true)
		select {
		case <-l.entered:
		default:
			close(l.entered)
		}
		select {
		case <-l.release:
		case <-ctx.Done():
			l.expired.Store(true)
		}
		l.waiting.Store(false)
	}
	return l.Store.GetOrder(ctx, id)
}

// TestStuckHandOffHoldsUpOnlyItsRow: one row's hand-off is stuck in a slow
// call; a row for another order committed meanwhile is claimed, handed to
// Temporal and marked delivered while the first is still stuck, so one
// slow call holds up neither the events behind it nor their marks. Once the
// stuck call returns, its row is delivered too. No worker runs: the runs
// only collect their signals.
func TestStuckHandOffHoldsUpOnlyItsRow(t *testing.T) {
	t.Parallel()
	st, _ := newDatabase(t)
	ib := inbox.NewStore(st.Pool())
	status := func(orderID string) string { return inboxStatus(t, st, "evt_"+orderID) }

	lookups := &stuckLookups{Store: st, order: "o-stuck", entered: make(chan struct{}), release: make(chan struct{})}
	d := runDispatcher(t, ib, lookups, dialTemporal(t))

	commitPaymentForNewOrder(t, st, ib, "o-stuck")
	d.Poke()
	<-lookups.entered

	// Committed after the stuck row was claimed, as the webhook handler
	// commits and pokes.
	commitPaymentForNewOrder(t, st, ib, "o-behind")
	d.Poke()
	waitFor(t, time.Minute, "the later row delivered", func() bool { return status("o-behind") == inbox.StatusDelivered })
	require.False(t, lookups.expired.Load(), "the later row was delivered only after the stuck call reached its deadline: the stuck call held it up (or the machine was too slow to tell)")
	require.True(t, lookups.waiting.Load(), "the later row was marked only once the stuck call had returned")
	require.Equal(t, inbox.StatusPending, status("o-stuck"))

	close(lookups.release)
	waitFor(t, time.Minute, "the stuck row delivered", func() bool { return status("o-stuck") == inbox.StatusDelivered })
}

// dialTemporal starts a Temporal server of the test's own and returns a
// client of it.
func dialTemporal(t *testing.T) client.Client {
	t.Helper()
	temporal := testenv.StartTemporal(t, testenv.TemporalOptions{})
	c, err := client.Dial(client.Options{HostPort: temporal.FrontendAddr(), Namespace: temporal.Namespace(), Logger: quietLogger{}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// runDispatcher runs a dispatcher with the production options over ib,
// reading orders through lookups, until the test ends.
func runDispatcher(t *testing.T, ib *inbox.Store, lookups inbox.Lookups, c client.Client) *inbox.Dispatcher {
	t.Helper()
	return runDispatcherWith(t, ib, lookups, c, inbox.DispatcherOptions{})
}

// runDispatcherWith is runDispatcher with opts instead of the production
// options.
func runDispatcherWith(t *testing.T, ib *inbox.Store, lookups inbox.Lookups, c client.Client, opts inbox.DispatcherOptions) *inbox.Dispatcher {
	t.Helper()
	d := inbox.NewDispatcher(ib, lookups, starter.New(c, starter.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)),
		prometheus.NewRegistry(), opts)
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = d.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-ran })
	return d
}
