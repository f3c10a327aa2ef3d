package reliability

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// TestServeKilledBeforeHandOff (scenario 2): the event is committed to the
// inbox and acknowledged, but Temporal is down so the dispatcher cannot hand
// it off; the server is then SIGKILLed with the row still waiting. Temporal
// comes back, nothing else touches the row, and the sweeper of a new server
// process hands it off: the order is confirmed and notified once.
func TestServeKilledBeforeHandOff(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{persistentTemporal: true})
	s.worker("worker", nil)
	first := s.serve("serve-1", nil)
	s.seedOrders("o-handoff")
	s.stopTemporal()
	logf(t, "Temporal stopped")

	ev := paymentEvent("evt_handoff", "payment_intent.succeeded", "o-handoff", time.Now())
	r := deliverStripe(first.url(), ev)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "the inbox commit alone earns the 2xx: %v", r.body)
	s.ack("stripe", "evt_handoff", map[string]string{confirmationKey("o-handoff"): workflows.KnockOrderConfirmed})

	// Kill it once the dispatcher has tried and failed to hand the row off.
	waitFor(t, time.Minute, "a failed hand-off attempt recorded on the row", func() bool {
		var lastError *string
		err := s.store.Pool().QueryRow(context.Background(),
			`SELECT last_error FROM webhook_inbox WHERE event_id = 'evt_handoff' AND handed_off_at IS NULL`).Scan(&lastError)
		return err == nil && lastError != nil
	})
	first.kill()
	logf(t, "serve-1 killed with the row not handed off")

	s.startTemporal()
	// Polled, since a restarting server may first answer "unavailable".
	waitFor(t, 30*time.Second, "Temporal knows no run of the order before a dispatcher hands the row off", func() bool {
		_, err := s.tc.DescribeWorkflowExecution(context.Background(), contract.OrderConfirmationID("o-handoff"), "")
		var notFound *serviceerror.NotFound
		return errors.As(err, &notFound)
	})
	_, pending := s.inboxCounts()
	require.Equal(t, 1, pending)

	s.serve("serve-2", nil)
	assert.Equal(t, "confirmed", s.orderResult("o-handoff", 2*time.Minute))
	assert.Equal(t, "confirmed", s.orderStatus("o-handoff"))
	s.checkExactlyOnce()
}

// TestServeKilledAfterCommitBeforeAck (scenario 3): PostgreSQL commits the
// event's inbox row, but the server is SIGKILLed before it hears so and
// therefore before any 2xx: a proxy between the server and PostgreSQL holds
// back PostgreSQL's reply to the INSERT. The provider saw no answer and
// retries; a new server answers 200 duplicate, and the event has one row and
// one effect.
func TestServeKilledAfterCommitBeforeAck(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	proxy, proxiedURL := s.databaseProxy()

	s.worker("worker", nil)
	first := s.serve("serve-1", map[string]string{"CRMFLOW_DATABASE_URL": proxiedURL})
	s.seedOrders("o-noack")

	frozen := proxy.freezeAfterInsert()
	ev := paymentEvent("evt_noack", "payment_intent.succeeded", "o-noack", time.Now())
	replies := make(chan webhookReply, 1)
	go func() { replies <- deliverStripe(first.url(), ev) }()
	select {
	case <-frozen:
	case r := <-replies:
		t.Fatalf("the delivery was answered (%d %v %v) before its INSERT was held", r.status, r.body, r.err)
	case <-time.After(time.Minute):
		t.Fatal("the inbox INSERT never reached PostgreSQL")
	}
	waitFor(t, 30*time.Second, "the inbox row committed", func() bool { n, _ := s.inboxCounts(); return n == 1 })
	first.kill()
	logf(t, "serve-1 killed after the commit, before its answer")
	r := <-replies
	require.Error(t, r.err, "the provider must not have received an answer (got %d %v)", r.status, r.body)

	second := s.serve("serve-2", nil)
	r = deliverStripe(second.url(), ev)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	assert.Equal(t, true, r.body["duplicate"], "the retry finds the committed row")
	s.ack("stripe", "evt_noack", map[string]string{confirmationKey("o-noack"): workflows.KnockOrderConfirmed})

	assert.Equal(t, "confirmed", s.orderResult("o-noack", 2*time.Minute))
	s.checkExactlyOnce()
}
