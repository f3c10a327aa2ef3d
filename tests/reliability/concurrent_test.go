package reliability

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// TestHundredConcurrentDeliveries (scenario 6): one event delivered 100
// times at once, spread over two server processes (as a provider's retries
// and a load balancer would). Every delivery is answered 200, exactly one of
// them as new; the inbox holds one row, Temporal one run, Knock one effect.
func TestHundredConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.worker("worker", nil)
	servers := []*proc{s.serve("serve-1", nil), s.serve("serve-2", nil)}
	s.seedOrders("o-flood")
	ev := paymentEvent("evt_flood", "payment_intent.succeeded", "o-flood", time.Now())

	const deliveries = 100
	replies := make([]webhookReply, deliveries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = deliverStripe(servers[i%2].url(), ev)
		}()
	}
	close(start)
	wg.Wait()

	fresh := 0
	for i, r := range replies {
		require.NoError(t, r.err, "delivery %d", i)
		require.Equal(t, http.StatusOK, r.status, "delivery %d: %v", i, r.body)
		if r.body["duplicate"] == false {
			fresh++
		}
	}
	assert.Equal(t, 1, fresh, "exactly one delivery stored the event; the others were duplicates")
	s.ack("stripe", "evt_flood", map[string]string{confirmationKey("o-flood"): workflows.KnockOrderConfirmed})

	assert.Equal(t, "confirmed", s.orderResult("o-flood", 2*time.Minute))
	assert.Equal(t, "confirmed", s.orderStatus("o-flood"))
	assert.Equal(t, 1, s.runCount(contract.OrderConfirmationID("o-flood")), "one workflow run")
	s.checkExactlyOnce()
}

// runCount counts the runs (open or closed) of a workflow ID, once
// visibility has caught up with at least one.
func (s *stack) runCount(workflowID string) int {
	s.t.Helper()
	var n int
	waitFor(s.t, 30*time.Second, "visibility lists "+workflowID, func() bool {
		resp, err := s.tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", workflowID),
		})
		if err != nil {
			return false
		}
		n = len(resp.GetExecutions())
		return n > 0 && resp.GetExecutions()[0].GetCloseTime() != nil
	})
	return n
}
