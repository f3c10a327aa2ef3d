package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/testsupport/stripeevents"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func recovered(raw []byte) activities.RecoveredEvent {
	var head struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &head)
	return activities.RecoveredEvent{Provider: "stripe", ListedEvent: activities.ListedEvent{ID: head.ID, Type: head.Type, Raw: raw}}
}

// TestRecoveredSinkStoresEventsAsTheWebhookDoes: a recovered event becomes
// the inbox row its webhook would have made (payload byte for byte, route,
// target), marked recovered; a second store or a late webhook delivery of
// it is a duplicate.
func TestRecoveredSinkStoresEventsAsTheWebhookDoes(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	ib := inbox.NewStore(st.Pool())
	sink := recoveredSink{inbox: ib}
	at := time.Now().Add(-time.Hour)
	events := map[string][]byte{
		"payment_intent.succeeded": stripeevents.PaymentIntentEvent("evt_ok", "payment_intent.succeeded", "o-1", "pi_1", 4200, "eur", at),
		"payment_intent.payment_failed": stripeevents.PaymentIntentEvent("evt_fail", "payment_intent.payment_failed", "o-2", "pi_2",
			4200, "eur", at),
		"charge.refunded": stripeevents.ChargeRefundedEvent("evt_refund", "ch_1", "pi_1", 4200, 1000, "eur", at),
	}
	require.Len(t, events, len(activities.StripeReconciledTypes), "one sample per reconciled type")
	for _, typ := range activities.StripeReconciledTypes {
		raw := events[typ]
		inserted, err := sink.StoreRecovered(ctx, recovered(raw))
		require.NoError(t, err, typ)
		assert.True(t, inserted, typ)

		var payload []byte
		var target, status string
		var isRecovered bool
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT payload, coalesce(workflow_id, ''), status, recovered
FROM webhook_inbox WHERE provider = 'stripe' AND event_id = $1`, recovered(raw).ID).Scan(&payload, &target, &status, &isRecovered))
		assert.Equal(t, string(raw), string(payload), "%s: the payload is the event as Stripe listed it", typ)
		assert.NotEmpty(t, target, "%s is routed, not ignored: the inbox handles every reconciled type", typ)
		assert.Equal(t, "pending", status, typ)
		assert.True(t, isRecovered, typ)
	}

	again, err := sink.StoreRecovered(ctx, recovered(events["payment_intent.succeeded"]))
	require.NoError(t, err)
	assert.False(t, again, "listed twice: stored once")

	// The webhook's redelivery, as webhooks/stripe.go makes the row.
	var ev stripego.Event
	require.NoError(t, json.Unmarshal(events["charge.refunded"], &ev))
	row, err := inbox.StripeEvent(ev, events["charge.refunded"])
	require.NoError(t, err)
	inserted, err := ib.Insert(ctx, row)
	require.NoError(t, err)
	assert.False(t, inserted, "a webhook delivery of a recovered event is a duplicate")
}

func TestRecoveredSinkRefusesWhatIsNoEvent(t *testing.T) {
	sink := recoveredSink{inbox: inbox.NewStore(testenv.Store(t).Pool())}
	for name, raw := range map[string]string{
		"no id":      `{"object":"event","type":"payment_intent.succeeded","data":{"object":{}}}`,
		"bad id":     `{"id":"evt 1/../x","object":"event","type":"charge.refunded","data":{"object":{}}}`,
		"not json":   `{"id":`,
		"no data":    `{"id":"evt_1","object":"event","type":"charge.refunded"}`,
		"other kind": `{"id":"evt_1","object":"event","type":"charge.refunded","data":{"object":{}}}`,
	} {
		ev := recovered([]byte(raw))
		if name == "other kind" {
			ev.Provider = "clerk"
		}
		_, err := sink.StoreRecovered(context.Background(), ev)
		assert.ErrorIs(t, err, activities.ErrUnusableEvent, name)
	}
}
