package reliability

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/workflows"
)

// TestWorkerKilledMidActivity (scenario 1): the worker running the order's
// Knock notification is SIGKILLed while Knock has already queued the run
// but before the answer reached the worker. Temporal times the activity out
// and a second worker process runs it again with the same Idempotency-Key,
// so Knock answers with its first run: one notification, not two.
func TestWorkerKilledMidActivity(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.knock.holdFirst(workflows.KnockOrderConfirmed)
	srv := s.serve("serve", nil)
	first := s.worker("worker-1", nil)
	s.seedOrders("o-kill-1")

	ev := paymentEvent("evt_kill_1", "payment_intent.succeeded", "o-kill-1", time.Now())
	r := deliverStripe(srv.url(), ev)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	s.ack("stripe", "evt_kill_1", map[string]string{confirmationKey("o-kill-1"): workflows.KnockOrderConfirmed})

	// Only worker-1 runs, so the held trigger is its activity.
	select {
	case <-s.knock.held:
	case <-time.After(90 * time.Second):
		t.Fatalf("the Knock trigger never arrived:\n%s", first.logTail(30))
	}
	logf(t, "Knock holds worker-1's trigger; starting worker-2 and killing worker-1")
	s.worker("worker-2", nil)
	first.kill()
	logf(t, "worker-1 killed")

	assert.Equal(t, "confirmed", s.orderResult("o-kill-1", 2*time.Minute))
	assert.Equal(t, "confirmed", s.orderStatus("o-kill-1"))
	assert.GreaterOrEqual(t, s.knock.requestsFor(confirmationKey("o-kill-1")), 2,
		"worker-2 sent the trigger again after worker-1 died (same idempotency key)")
	s.checkExactlyOnce()
}
