package reliability

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScaleOutLosesNothing (issue 11, part 4): two `crmflow worker` and two
// `crmflow serve` processes, started together, share one Temporal and one
// PostgreSQL. Signed webhooks are spread over both servers; a third of the
// way in, one worker and one server are SIGKILLed while deliveries and
// activities are in flight, and the load goes on against the survivors
// (a delivery the dead server did not answer is retried there, as Stripe
// retries). Nothing is lost: every acknowledged event has one inbox row and
// one notification, and every run completes.
func TestScaleOutLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	// Slow Knock answers keep activities in flight when the worker dies.
	s.knock.setDelay(200 * time.Millisecond)
	// Started at once, as a deployment rolls out replicas.
	workers := []*proc{
		spawnProc(t, "worker-1", "worker", s.config(nil)),
		spawnProc(t, "worker-2", "worker", s.config(nil)),
	}
	servers := []*proc{
		spawnProc(t, "serve-1", "serve", s.config(nil)),
		spawnProc(t, "serve-2", "serve", s.config(nil)),
	}
	for _, p := range append(append([]*proc(nil), workers...), servers...) {
		p.awaitHealthy(90 * time.Second)
	}

	const total, killAt = 60, 20
	var orders []string
	for i := range total {
		orders = append(orders, fmt.Sprintf("o-scale-%02d", i))
	}
	s.seedOrders(orders...)

	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		failures    []error
		afterKill   atomic.Int64 // acknowledged by serve-2 after the kill
		killed      atomic.Bool
		ackedAtKill int
	)
	sem := make(chan struct{}, 6) // deliveries in flight at once
	for i, id := range orders {
		if i == killAt {
			// The kill must take work away from worker-1, so it waits until
			// worker-1 has run activities; how soon that is depends on the
			// machine, not on how many events were sent. Deliveries already
			// in flight go on meanwhile.
			waitFor(t, time.Minute, "worker-1 runs activities before it dies", func() bool {
				return strings.Contains(workers[0].logTail(10000), "ActivityType=")
			})
			ackedAtKill = s.ackedCount()
			workers[0].kill()
			servers[0].kill()
			killed.Store(true)
			logf(t, "killed worker-1 and serve-1 with %d of %d events acknowledged", ackedAtKill, total)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.deliverPaymentToEither([2]*proc(servers), i, id); err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
				return
			}
			if killed.Load() {
				afterKill.Add(1)
			}
		}()
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	require.Empty(t, failures, "every event is acknowledged by a surviving server")
	assert.Less(t, ackedAtKill, total, "the kill landed mid-load")
	assert.Positive(t, afterKill.Load(), "the survivor took the rest of the load")

	for _, id := range orders {
		assert.Equal(t, "confirmed", s.orderResult(id, 3*time.Minute), id)
	}
	for _, id := range orders {
		assert.Equal(t, "confirmed", s.orderStatus(id), id)
	}
	assert.True(t, workers[1].alive() && servers[1].alive(), "the survivors kept running")
	s.checkExactlyOnce()
}

// ackedCount is how many events providers got a 2xx for so far.
func (s *stack) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}
