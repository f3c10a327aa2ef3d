package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
)

// The operators' inbox routes through the real handler: GET /v1/inbox,
// GET /v1/inbox/{id}, POST /v1/inbox/{id}/replay.

// inboxRow is the id, status and replaying operator of the inbox row of
// (provider, eventID).
func (f *fixture) inboxRow(provider, eventID string) (id int64, status, replayedBy string) {
	f.t.Helper()
	err := f.store.Pool().QueryRow(context.Background(),
		`SELECT id, status, coalesce(replayed_by, '') FROM webhook_inbox WHERE provider = $1 AND event_id = $2`,
		provider, eventID).Scan(&id, &status, &replayedBy)
	require.NoError(f.t, err)
	return id, status, replayedBy
}

// waitInboxStatus waits for the row of (provider, eventID) to reach status
// and returns its id.
func (f *fixture) waitInboxStatus(provider, eventID, status string) int64 {
	f.t.Helper()
	var id int64
	require.Eventually(f.t, func() bool {
		var got string
		id, got, _ = f.inboxRow(provider, eventID)
		return got == status
	}, 30*time.Second, 50*time.Millisecond, "inbox row %s/%s reaches %s", provider, eventID, status)
	return id
}

// postPayment posts a signed payment_intent.succeeded for orderID.
func (f *fixture) postPayment(eventID, orderID string) {
	f.t.Helper()
	ev := stripeEvent(eventID, "payment_intent.succeeded", orderID)
	status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(f.t, http.StatusOK, status, body)
}

// TestInboxRoutesAllowOperatorsOnly: every inbox route answers 401 without
// a token, 403 with a service token, and runs with an operator token.
func TestInboxRoutesAllowOperatorsOnly(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.postPayment("evt_inbox_scope", "o-inbox-scope")
	id := f.waitInboxStatus("stripe", "evt_inbox_scope", inbox.StatusUnroutable)
	routes := []struct {
		method, path string
		ok           int
	}{
		{http.MethodGet, "/v1/inbox", http.StatusOK},
		{http.MethodGet, "/v1/inbox?status=unroutable&provider=stripe&limit=10", http.StatusOK},
		{http.MethodGet, fmt.Sprintf("/v1/inbox/%d", id), http.StatusOK},
		{http.MethodPost, fmt.Sprintf("/v1/inbox/%d/replay", id), http.StatusAccepted},
	}
	for _, r := range routes {
		status, body, _ := f.authRequest(r.method, r.path, "-", "")
		assert.Equal(t, http.StatusUnauthorized, status, "%s %s without a token: %v", r.method, r.path, body)
		assert.Equal(t, "unauthorized", errorCode(body))
		status, body, _ = f.authRequest(r.method, r.path, "Bearer "+apiToken, "")
		assert.Equal(t, http.StatusForbidden, status, "%s %s with a service token: %v", r.method, r.path, body)
		assert.Equal(t, "forbidden", errorCode(body))
	}
	_, _, replayedBy := f.inboxRow("stripe", "evt_inbox_scope")
	assert.Empty(t, replayedBy, "a refused replay changes nothing")
	var replays int
	require.NoError(t, f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE action = 'inbox.replay'`).Scan(&replays))
	assert.Zero(t, replays, "a refused replay is not one")
	for _, r := range routes {
		status, body, _ := f.authRequest(r.method, r.path, "Bearer "+operatorToken, "")
		assert.Equal(t, r.ok, status, "%s %s with an operator token: %v", r.method, r.path, body)
	}
}

// TestInboxListAndShow: the listing filters by status and provider and
// pages newest first; one event shows its payload as JSON, or as base64
// when it is not JSON; bad filters and ids are 400, a missing id 404.
func TestInboxListAndShow(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.postPayment("evt_inbox_list", "o-inbox-list")
	unroutable := f.waitInboxStatus("stripe", "evt_inbox_list", inbox.StatusUnroutable)
	unknown := []byte(`{"id":"evt_inbox_unknown","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}`)
	status, _ := f.postStripe(unknown, sign(unknown, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	ignored, _, _ := f.inboxRow("stripe", "evt_inbox_unknown")
	// A body that is not JSON text (stored by an older edge, say) shows as
	// its bytes.
	_, err := inbox.NewStore(f.store.Pool()).Insert(context.Background(), inbox.Event{Source: inbox.SourceClerk,
		EventID: "msg_binary", EventType: "user.updated", Payload: []byte{0xff, 0x00, 'x'}, Ignored: "not handled"})
	require.NoError(t, err)
	binary, _, _ := f.inboxRow("clerk", "msg_binary")

	get := func(path string) (int, map[string]any) {
		return f.api(http.MethodGet, path, operatorToken, nil)
	}
	ids := func(body map[string]any) []int64 {
		var out []int64
		events, _ := body["events"].([]any)
		for _, e := range events {
			out = append(out, int64(e.(map[string]any)["id"].(float64)))
		}
		return out
	}
	status, body := get("/v1/inbox")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, []int64{binary, ignored, unroutable}, ids(body))
	assert.NotContains(t, body["events"].([]any)[0], "payload", "a listing leaves payloads out")
	_, body = get("/v1/inbox?status=unroutable")
	assert.Equal(t, []int64{unroutable}, ids(body))
	_, body = get("/v1/inbox?provider=stripe")
	assert.Equal(t, []int64{ignored, unroutable}, ids(body))
	_, body = get("/v1/inbox?provider=stripe&status=ignored")
	assert.Equal(t, []int64{ignored}, ids(body))
	_, body = get("/v1/inbox?limit=2")
	assert.Equal(t, []int64{binary, ignored}, ids(body))
	assert.EqualValues(t, ignored, body["next_before"])
	_, body = get(fmt.Sprintf("/v1/inbox?limit=2&before=%d", ignored))
	assert.Equal(t, []int64{unroutable}, ids(body))
	assert.NotContains(t, body, "next_before", "the last page")

	for path, code := range map[string]string{
		"/v1/inbox?status=lost":     "invalid_status",
		"/v1/inbox?provider=paypal": "invalid_provider",
		"/v1/inbox?limit=0":         "invalid_limit",
		"/v1/inbox?limit=x":         "invalid_limit",
		"/v1/inbox?limit=501":       "invalid_limit",
		"/v1/inbox?before=-1":       "invalid_before",
		"/v1/inbox/abc":             "invalid_id",
		"/v1/inbox/0":               "invalid_id",
	} {
		status, body := get(path)
		assert.Equal(t, http.StatusBadRequest, status, "%s: %v", path, body)
		assert.Equal(t, code, errorCode(body), path)
	}
	status, body = get("/v1/inbox/999999")
	assert.Equal(t, http.StatusNotFound, status, body)
	assert.Equal(t, "not_found", errorCode(body))

	status, body = get(fmt.Sprintf("/v1/inbox/%d", unroutable))
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "stripe", body["provider"])
	assert.Equal(t, "evt_inbox_list", body["event_id"])
	assert.Equal(t, "payment_intent.succeeded", body["event_type"])
	assert.Equal(t, inbox.StatusUnroutable, body["status"])
	assert.Contains(t, body["note"], "order o-inbox-list does not exist")
	assert.Equal(t, contract.OrderConfirmationID("o-inbox-list"), body["workflow_id"])
	assert.EqualValues(t, 1, body["attempts"])
	assert.NotEmpty(t, body["received_at"])
	assert.NotNil(t, body["done_at"])
	assert.Equal(t, false, body["recovered"])
	assert.Nil(t, body["replayed_at"])
	assert.Equal(t, "json", body["payload_encoding"])
	payload, ok := body["payload"].(map[string]any)
	require.True(t, ok, "a JSON payload is shown as JSON: %v", body["payload"])
	assert.Equal(t, "evt_inbox_list", payload["id"])
	route, _ := body["route"].(map[string]any)
	payment, _ := route["payment"].(map[string]any)
	assert.Equal(t, "o-inbox-list", payment["order_id"])

	_, body = get(fmt.Sprintf("/v1/inbox/%d", binary))
	assert.Equal(t, "base64", body["payload_encoding"])
	assert.Equal(t, "/wB4", body["payload"])
	assert.NotContains(t, body, "workflow_id", "an ignored event has no target")
}

// TestInboxReplayAnswers: a replay answers 202 with the row pending again,
// recorded as the token's operator on the row and in the audit log, and
// the dispatcher hands it off again; a pending row is 409
// already_pending, an event that is still ignored 409 not_routable, a
// missing one 404, another operator's name 422.
func TestInboxReplayAnswers(t *testing.T) {
	f := newFixture(t, fixtureOptions{coalesce: time.Hour})
	f.postPayment("evt_inbox_replay", "o-inbox-replay")
	id := f.waitInboxStatus("stripe", "evt_inbox_replay", inbox.StatusUnroutable)
	replay := func(id int64, body string) (int, map[string]any) {
		return f.api(http.MethodPost, fmt.Sprintf("/v1/inbox/%d/replay", id), operatorToken, strings.NewReader(body))
	}

	status, body := replay(id, `{"operator":"bob"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status, body)
	assert.Equal(t, "invalid_operator", errorCode(body))
	status, body = replay(id, `{"operator":`)
	assert.Equal(t, http.StatusBadRequest, status, body)

	status, body = replay(id, `{"operator":"`+operatorName+`"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, inbox.StatusPending, body["status"])
	assert.Equal(t, inbox.StatusUnroutable, body["replayed_from"])
	assert.Equal(t, false, body["rerouted"])
	assert.Equal(t, operatorName, body["replayed_by"])
	assert.NotNil(t, body["replayed_at"])
	assert.EqualValues(t, 0, body["attempts"])
	f.requireAudited(operatorName, "inbox.replay", fmt.Sprintf("inbox/%d", id))
	// The order still does not exist: handed off again, unroutable again,
	// with the replay on record.
	require.Eventually(t, func() bool {
		_, status, by := f.inboxRow("stripe", "evt_inbox_replay")
		return status == inbox.StatusUnroutable && by == operatorName
	}, 30*time.Second, 50*time.Millisecond)

	// A stock level held back for coalescing is pending for an hour.
	require.NoError(t, f.store.UpsertProduct(context.Background(), store.Product{SKU: "sku-inbox", Name: "Mug", PriceCents: 900,
		Settings: store.StockSettings{Threshold: 5}}))
	f.postStock("sku-inbox", 3)
	var stock int64
	require.NoError(t, f.store.Pool().QueryRow(context.Background(),
		`SELECT id FROM webhook_inbox WHERE provider = 'inventory'`).Scan(&stock))
	status, body = replay(stock, "")
	assert.Equal(t, http.StatusConflict, status, body)
	assert.Equal(t, "already_pending", errorCode(body))

	unknown := []byte(`{"id":"evt_inbox_unknown2","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}`)
	status, _ = f.postStripe(unknown, sign(unknown, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	ignored, _, _ := f.inboxRow("stripe", "evt_inbox_unknown2")
	status, body = replay(ignored, "")
	assert.Equal(t, http.StatusConflict, status, body)
	assert.Equal(t, "not_routable", errorCode(body))
	assert.Contains(t, body["error"].(map[string]any)["message"], "customer.created is not handled")
	_, st, by := f.inboxRow("stripe", "evt_inbox_unknown2")
	assert.Equal(t, inbox.StatusIgnored, st, "a refused replay changes nothing")
	assert.Empty(t, by)

	status, body = replay(999999, "")
	assert.Equal(t, http.StatusNotFound, status, body)
	assert.Equal(t, "not_found", errorCode(body))
}

// TestUnroutablePaymentReplayedAfterOrderInsert: a payment for an order the
// CRM has not written yet ends unroutable, and no run is started for it.
// Once the order exists, an operator's replay confirms it: the event goes
// to Temporal under its original event id.
func TestUnroutablePaymentReplayedAfterOrderInsert(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	// The test binary's Temporal outlives the test (-count): an order id of
	// its own keeps an earlier run's workflow out.
	orderID := fmt.Sprintf("o-unroutable-%d", time.Now().UnixNano())
	f.postPayment("evt_unroutable", orderID)
	id := f.waitInboxStatus("stripe", "evt_unroutable", inbox.StatusUnroutable)

	_, err := f.temporal.DescribeWorkflowExecution(ctx, contract.OrderConfirmationID(orderID), "")
	var notFound *serviceerror.NotFound
	require.True(t, errors.As(err, &notFound), "no run for an order that does not exist: %v", err)
	assert.Contains(t, f.metrics(), `crmflow_inbox_events_total{provider="stripe",status="unroutable"} 1`)

	// The operator finds it in the listing.
	status, body := f.api(http.MethodGet, "/v1/inbox?status=unroutable&provider=stripe", operatorToken, nil)
	require.Equal(t, http.StatusOK, status, body)
	events := body["events"].([]any)
	require.Len(t, events, 1)
	assert.EqualValues(t, id, events[0].(map[string]any)["id"])

	f.seedOrder(orderID, "cus_unroutable")
	status, body = f.api(http.MethodPost, fmt.Sprintf("/v1/inbox/%d/replay", id), operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)

	require.Eventually(t, func() bool { return f.orderStatus(orderID) == store.OrderConfirmed },
		30*time.Second, 100*time.Millisecond, "the replayed payment confirms the order")
	id2, st, by := f.inboxRow("stripe", "evt_unroutable")
	assert.Equal(t, id, id2)
	assert.Equal(t, inbox.StatusDelivered, st)
	assert.Equal(t, operatorName, by)
	f.requireAudited(operatorName, "inbox.replay", fmt.Sprintf("inbox/%d", id))
	key := contract.OrderConfirmationID(orderID) + "/notify-confirmation"
	require.Eventually(t, func() bool { return f.knock.succeeded(key) == 1 }, 30*time.Second, 100*time.Millisecond)
	assert.Contains(t, f.metrics(), `crmflow_inbox_events_total{provider="stripe",status="delivered"} 1`)
}

// metrics is the fixture's /metrics page.
func (f *fixture) metrics() string {
	f.t.Helper()
	resp, err := http.Get(f.url + "/metrics")
	require.NoError(f.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return string(raw)
}
