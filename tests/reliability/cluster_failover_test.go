package reliability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
)

// TestTemporalNodeDeathLosesNothing (issue 21, part 3) runs the production
// shape: a two-node Temporal cluster on PostgreSQL behind a balancer, two
// `crmflow worker` and two `crmflow serve` processes. Several senders
// deliver signed Stripe webhooks over both servers while, in turn, one
// Temporal node is SIGKILLed (its shards move to the survivor), restarted
// (it takes shards back), and then one worker and one server are SIGKILLed.
// Every acknowledged event is handed off exactly once, every order
// completes with one Knock call, no run is parked in a dead letter, and the
// time to recover from the node's death is reported.
func TestTemporalNodeDeathLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{temporalCluster: true})
	s.knock.setDelay(100 * time.Millisecond)
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

	const total, nodeKillAt, nodeRestartAt, procKillAt = 48, 8, 20, 32
	var orders []string
	for i := range total {
		orders = append(orders, fmt.Sprintf("o-cluster-%02d", i))
	}
	s.seedOrders(orders...)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []error
		killedAt time.Time
		victim   int
	)
	sem := make(chan struct{}, 6) // senders at once
	for i, id := range orders {
		switch i {
		case nodeKillAt:
			// The victim must own history shards (a hash ring may give
			// all four to one node), so its death moves them.
			shards, err := s.cluster.Shards(0)
			require.NoError(t, err)
			if len(shards) == 0 {
				victim = 1
				shards, err = s.cluster.Shards(1)
				require.NoError(t, err)
			}
			require.NotEmpty(t, shards, "one of the nodes owns shards")
			killedAt = time.Now()
			s.cluster.Kill(victim)
			logf(t, "SIGKILLed temporal node %d (history shards %v) with %d of %d events acknowledged", victim, shards, s.ackedCount(), total)
		case nodeRestartAt:
			survivor := 1 - victim
			waitFor(t, 2*time.Minute, "the survivor owns every shard", func() bool {
				shards, err := s.cluster.Shards(survivor)
				return err == nil && len(shards) == 4
			})
			logf(t, "RECOVERY: node %d owned all 4 shards %s after the kill", survivor, time.Since(killedAt).Round(10*time.Millisecond))
			// The order sent first after the kill has completed: the
			// cluster works without the dead node.
			recovered := s.orderDoneAt(orders[nodeKillAt], 3*time.Minute)
			logf(t, "RECOVERY: the first order sent after the kill completed %s after it", recovered.Sub(killedAt).Round(10*time.Millisecond))
			s.cluster.Restart(victim)
			s.cluster.WaitMembers(2)
			logf(t, "temporal node %d back in the cluster %s after the kill", victim, time.Since(killedAt).Round(10*time.Millisecond))
		case procKillAt:
			waitFor(t, time.Minute, "worker-1 runs activities before it dies", func() bool {
				return strings.Contains(workers[0].logTail(10000), "ActivityType=")
			})
			workers[0].kill()
			servers[0].kill()
			logf(t, "SIGKILLed worker-1 and serve-1 with %d of %d events acknowledged", s.ackedCount(), total)
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
			}
		}()
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	require.Empty(t, failures, "every event is acknowledged")

	for _, id := range orders {
		assert.Equal(t, "confirmed", s.orderResult(id, 3*time.Minute), id)
	}
	for _, id := range orders {
		assert.Equal(t, "confirmed", s.orderStatus(id), id)
	}
	s.checkExactlyOnce()
	var parked int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&parked))
	assert.Zero(t, parked, "no run parked by the failover")
	assert.True(t, workers[1].alive() && servers[1].alive(), "the survivors kept running")
}

// orderDoneAt waits for the order's confirmation run to finish and returns
// when Temporal closed it.
func (s *stack) orderDoneAt(orderID string, timeout time.Duration) time.Time {
	s.t.Helper()
	s.orderResult(orderID, timeout)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := s.tc.DescribeWorkflowExecution(ctx, contract.OrderConfirmationID(orderID), "")
	require.NoError(s.t, err)
	return desc.GetWorkflowExecutionInfo().GetCloseTime().AsTime()
}
