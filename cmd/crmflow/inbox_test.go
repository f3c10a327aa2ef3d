package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestInboxCommands: `crmflow inbox list|show|replay` against a database,
// as the API's inbox routes: the listing filters, one event shows with its
// payload, and a replay puts an unroutable payment back in the queue,
// recorded on the row and in the audit log; a still-ignored event and a
// pending one are refused.
func TestInboxCommands(t *testing.T) {
	clearOperatorEnv(t)
	dbURL := testenv.DatabaseURL(t)
	t.Setenv("CRMFLOW_DATABASE_URL", dbURL)
	t.Setenv("CRMFLOW_MASTER_KEY", testenv.MasterKey)
	// Outside dev, an operator command needs the deployment's start-API token.
	t.Setenv("CRMFLOW_API_TOKENS", "test-token")
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	ib := inbox.NewStore(st.Pool())
	insert := func(e inbox.Event) int64 {
		_, err := ib.Insert(ctx, e)
		require.NoError(t, err)
		var id int64
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT id FROM webhook_inbox WHERE event_id = $1`, e.EventID).Scan(&id))
		return id
	}
	payment := insert(inbox.Event{Source: inbox.SourceStripe, EventID: "evt_cli_pay", EventType: "payment_intent.succeeded",
		Target: "order-confirmation/o-cli", Payload: []byte(`{"id":"evt_cli_pay"}`)})
	require.NoError(t, ib.MarkDone(ctx, []int64{payment}, inbox.StatusUnroutable, "order o-cli does not exist"))
	ignored := insert(inbox.Event{Source: inbox.SourceStripe, EventID: "evt_cli_other", EventType: "customer.created",
		Payload: []byte(`{"id":"evt_cli_other","type":"customer.created","data":{"object":{}}}`), Ignored: "not handled"})

	out, err := crmflowOperator(t, "", "inbox", "list")
	require.NoError(t, err, out)
	assert.Regexp(t, fmt.Sprintf(`(?m)^%d +ignored +stripe +customer.created`, ignored), out)
	assert.Regexp(t, fmt.Sprintf(`(?m)^%d +unroutable +stripe +payment_intent.succeeded +order-confirmation/o-cli .*order o-cli does not exist$`, payment), out)
	out, err = crmflowOperator(t, "", "inbox", "list", "--status", "unroutable", "--limit", "1")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "customer.created")
	assert.Contains(t, out, fmt.Sprintf("(more: --before %d)", payment))
	_, err = crmflowOperator(t, "", "inbox", "list", "--status", "lost")
	assert.ErrorContains(t, err, "--status must be one of pending, delivered")

	out, err = crmflowOperator(t, "", "inbox", "show", fmt.Sprint(payment))
	require.NoError(t, err, out)
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &shown), out)
	assert.Equal(t, "unroutable", shown["status"])
	assert.Equal(t, map[string]any{"id": "evt_cli_pay"}, shown["payload"])
	_, err = crmflowOperator(t, "", "inbox", "show", "999999")
	assert.ErrorIs(t, err, inbox.ErrNotFound)

	_, err = crmflowOperator(t, "", "inbox", "replay", fmt.Sprint(payment), "--operator", " ")
	assert.ErrorContains(t, err, "operator is empty")
	out, err = crmflowOperator(t, "", "inbox", "replay", fmt.Sprint(payment), "--operator", "alice")
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("replayed inbox event %d (stripe evt_cli_pay, was unroutable): pending for order-confirmation/o-cli", payment))
	rec, err := ib.Get(ctx, payment)
	require.NoError(t, err)
	assert.Equal(t, inbox.StatusPending, rec.Status)
	assert.Equal(t, "alice", rec.ReplayedBy)
	var audited int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE actor = 'alice' AND action = 'inbox.replay'
		AND subject = $1 AND details->>'outcome' = 'ok'`, fmt.Sprintf("inbox/%d", payment)).Scan(&audited))
	assert.Equal(t, 1, audited)

	_, err = crmflowOperator(t, "", "inbox", "replay", fmt.Sprint(payment))
	assert.ErrorIs(t, err, inbox.ErrAlreadyPending)
	_, err = crmflowOperator(t, "", "inbox", "replay", fmt.Sprint(ignored))
	assert.ErrorIs(t, err, inbox.ErrNotRoutable)
	assert.ErrorContains(t, err, "customer.created is not handled")
}
