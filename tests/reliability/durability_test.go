package reliability

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/pgserver"
)

// TestDurablePostgresKilledKeepsEveryAcknowledgedEvent (reliability
// scenario 5, crash): "200 means stored" rests on PostgreSQL's durability,
// which the other tests switch off for speed. Here PostgreSQL runs as in
// production, fsync, synchronous_commit and full_page_writes on (read back
// with SHOW), and is SIGKILLed, postmaster and backends at once, while
// several senders have signed webhooks in flight. Restarted on the same
// data directory (crash recovery from the WAL), it must hold a row for
// every event that got a 200 before the kill. Events answered otherwise
// may or may not be stored; the provider's retry delivers them, and in the
// end every event is stored exactly once. (The hand-off after PostgreSQL
// comes back, and its single effect, are TestPostgresStoppedAnswers503's
// subject; no worker runs here, to keep the test short.)
func TestDurablePostgresKilledKeepsEveryAcknowledgedEvent(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, pgserver.Options{DataDir: filepath.Join(t.TempDir(), "pg"), Durable: true})
	s := newStack(t, stackOptions{databaseURL: pg.srv.URL()})
	for _, setting := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		require.NoError(t, s.store.Pool().QueryRow(context.Background(), "SHOW "+setting).Scan(&v))
		require.Equal(t, "on", v, setting)
	}
	srv := s.serve("serve", nil)

	// Senders post new events until the kill has failed one of their own
	// requests; the kill comes once killAfter events are acknowledged.
	const senders, killAfter, maxEvents = 8, 24, 400
	var (
		next, ackedBefore, straddled atomic.Int64
		killed                       atomic.Bool
		mu                           sync.Mutex
		acked                        []int // acknowledged before PostgreSQL came back
		refused                      []int // answered otherwise
		wg                           sync.WaitGroup
	)
	killNow := make(chan struct{})
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= maxEvents {
					return
				}
				before := !killed.Load()
				r := deliverStripe(srv.url(), durableEvent(i))
				after := killed.Load()
				if before && after {
					straddled.Add(1)
				}
				mu.Lock()
				if r.err == nil && r.status == http.StatusOK {
					acked = append(acked, i)
				} else {
					refused = append(refused, i)
				}
				mu.Unlock()
				if r.err == nil && r.status == http.StatusOK && before && ackedBefore.Add(1) == killAfter {
					close(killNow)
				}
				if after && (r.err != nil || r.status != http.StatusOK) {
					return // this sender has seen the outage
				}
			}
		}()
	}
	select {
	case <-killNow:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d events acknowledged before the kill", ackedBefore.Load())
	}
	// The postmaster leads its own process group (pgserver): one signal
	// kills it and every backend, with no chance to flush anything.
	killed.Store(true)
	require.NoError(t, syscall.Kill(-pg.srv.Pid(), syscall.SIGKILL))
	logf(t, "PostgreSQL killed with %d events acknowledged", ackedBefore.Load())
	select {
	case <-pg.srv.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("postmaster still running after SIGKILL")
	}
	pg.holdPort()
	wg.Wait()
	mu.Lock()
	ackedAtRestart, refusedAtRestart := append([]int(nil), acked...), append([]int(nil), refused...)
	mu.Unlock()
	logf(t, "%d requests straddled the kill; %d acknowledged, %d not", straddled.Load(), len(ackedAtRestart), len(refusedAtRestart))
	require.Positive(t, straddled.Load(), "requests were in flight when PostgreSQL died")
	require.NotEmpty(t, refusedAtRestart, "the kill failed requests in flight or after it")

	pg.start()
	s.databaseRestarted()
	logf(t, "PostgreSQL restarted on the same data directory")
	stored := func(i int) bool {
		var n int
		require.NoError(t, s.store.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM webhook_inbox WHERE provider = 'stripe' AND event_id = $1`, durableEventID(i)).Scan(&n))
		return n == 1
	}
	var lost []string
	for _, i := range ackedAtRestart {
		if !stored(i) {
			lost = append(lost, durableEventID(i))
		}
		s.ack("stripe", durableEventID(i), nil)
	}
	require.Empty(t, lost, "events acknowledged with 200 but missing after the crash")
	keptAnyway := 0
	for _, i := range refusedAtRestart {
		if stored(i) {
			keptAnyway++
		}
	}
	logf(t, "every acknowledged event survived; %d of %d unacknowledged events were committed anyway", keptAnyway, len(refusedAtRestart))

	// The provider retries what was not acknowledged.
	for _, i := range refusedAtRestart {
		s.deliverUntilAcked(durableEvent(i), durableEventID(i), nil, srv.url)
	}
	for _, i := range append(ackedAtRestart, refusedAtRestart...) {
		assert.True(t, stored(i), "%s stored once", durableEventID(i))
	}
	total, _ := s.inboxCounts()
	assert.Equal(t, len(ackedAtRestart)+len(refusedAtRestart), total, "every inbox row belongs to a delivered event")
}

func durableEventID(i int) string { return fmt.Sprintf("evt_dur_%d", i) }

func durableEvent(i int) []byte {
	return paymentEvent(durableEventID(i), "payment_intent.succeeded", durableOrderID(i), time.Now())
}

func durableOrderID(i int) string { return fmt.Sprintf("o-dur-%d", i) }
