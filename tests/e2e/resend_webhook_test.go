package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// POST /webhooks/resend is verified exactly as Clerk's endpoint (Svix
// signs both): one complete header set, the tolerance, dedup through the
// inbox by the Svix message id, and the 413/400/503 answers.

// resendEventIDs lists the event ids of the stored Resend rows, oldest
// first.
func (f *fixture) resendEventIDs() []string {
	f.t.Helper()
	rows, err := f.store.Pool().Query(context.Background(), `SELECT event_id FROM webhook_inbox WHERE provider = 'resend' ORDER BY id`)
	require.NoError(f.t, err)
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		require.NoError(f.t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(f.t, rows.Err())
	return ids
}

// TestResendWebhookRefusesForgedReplayedAndStaleDeliveries: every delivery
// that is not a genuine, fresh, signed Resend event is answered 400 (413
// when too large) and stores nothing; the genuine delivery sent after them
// is the one row stored.
func TestResendWebhookRefusesForgedReplayedAndStaleDeliveries(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxBody: 64 << 10})
	now := time.Now()
	ev := resendEventBody(t, "email.bounced", "4ef9a417-02e9-4d39-ad75-000000000001", "ada@example.com", "Permanent")
	other := resendEventBody(t, "email.delivered", "4ef9a417-02e9-4d39-ad75-000000000002", "bob@example.com", "")
	sign := func(id string, body []byte, at time.Time) http.Header {
		return signClerk(t, id, body, at, resendSecret)
	}
	edit := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	good := sign("msg_good", ev, now)
	// A delivery captured with Standard Webhooks' header names, as an
	// attacker replaying it would hold it.
	captured := headerSetAs("webhook-", good)
	fresh := http.Header{"Svix-Id": {"msg_fresh"}, "Svix-Timestamp": {strconv.FormatInt(now.Unix(), 10)}}
	cases := []struct {
		name string
		body []byte
		h    http.Header
		code string
	}{
		{"no headers", ev, http.Header{}, "bad_signature"},
		{"another secret", ev, signClerk(t, "msg_1", ev, now, "whsec_b3RoZXItc2VjcmV0LWtleQ=="), "bad_signature"},
		{"signed with Clerk's secret", ev, signClerk(t, "msg_1", ev, now, clerkSecret), "bad_signature"},
		{"body changed after signing", bytes.Replace(ev, []byte("Permanent"), []byte("Transient"), 1), good, "bad_signature"},
		{"signature of another message", ev, edit(good, "svix-signature", sign("msg_good", other, now).Get("svix-signature")), "bad_signature"},
		{"message id changed after signing", ev, edit(good, "svix-id", "msg_other"), "bad_signature"},
		{"timestamp changed after signing", ev, edit(good, "svix-timestamp", strconv.FormatInt(now.Unix()+1, 10)), "bad_signature"},
		{"replayed a day later", ev, sign("msg_good", ev, now.Add(-24*time.Hour)), "stale_timestamp"},
		{"just past the tolerance", ev, sign("msg_old", ev, now.Add(-6*time.Minute)), "stale_timestamp"},
		{"from the future", ev, sign("msg_future", ev, now.Add(6*time.Minute)), "stale_timestamp"},
		{"no message id", ev, edit(good, "svix-id", ""), "bad_signature"},
		{"no timestamp", ev, edit(good, "svix-timestamp", ""), "bad_signature"},
		{"timestamp not a number", ev, edit(good, "svix-timestamp", "soon"), "bad_signature"},
		{"no signature", ev, edit(good, "svix-signature", ""), "bad_signature"},
		{"unknown signature version", ev, edit(good, "svix-signature", strings.Replace(good.Get("svix-signature"), "v1,", "v2,", 1)), "bad_signature"},
		{"captured webhook-* set with a fresh svix-id and svix-timestamp", ev, mergeHeaders(captured, fresh), "bad_signature"},
		{"stale webhook-* set with a fresh svix-timestamp", ev, mergeHeaders(headerSetAs("webhook-", sign("msg_old", ev, now.Add(-time.Hour))),
			http.Header{"Svix-Timestamp": fresh["Svix-Timestamp"]}), "bad_signature"},
		{"svix-id given twice", ev, mergeHeaders(good, http.Header{"Svix-Id": {"msg_fresh"}}), "bad_signature"},
		{"empty body", nil, sign("msg_empty", nil, now), "malformed"},
		{"array", []byte(`[]`), sign("msg_arr", []byte(`[]`), now), "malformed"},
		{"no type", []byte(`{"data":{"email_id":"e1"}}`), sign("msg_nt", []byte(`{"data":{"email_id":"e1"}}`), now), "malformed"},
		{"email id of the wrong type", []byte(`{"type":"email.bounced","data":{"email_id":42}}`),
			sign("msg_id", []byte(`{"type":"email.bounced","data":{"email_id":42}}`), now), "malformed"},
		{"data of the wrong type", []byte(`{"type":"email.bounced","data":"e1"}`), sign("msg_d", []byte(`{"type":"email.bounced","data":"e1"}`), now), "malformed"},
		{"deep nesting", deepJSON("data", 20_000), sign("msg_deep", deepJSON("data", 20_000), now), "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.postResendSigned(c.body, c.h)
			assert.Equal(t, http.StatusBadRequest, status, "body: %v", body)
			assert.Equal(t, c.code, errorCode(body))
		})
	}
	t.Run("oversized", func(t *testing.T) {
		big := append([]byte(`{"type":"email.bounced","pad":"`), bytes.Repeat([]byte("a"), 70<<10)...)
		status, body := f.postResendSigned(big, sign("msg_big", big, now))
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)
		assert.Equal(t, "too_large", errorCode(body))
	})

	// The marker: the genuine delivery, after every refused one, is the
	// only row.
	status, body := f.postResendSigned(ev, good)
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, []string{"msg_good"}, f.resendEventIDs(), "no refused delivery is stored")
	_, err := f.store.GetSuppression(context.Background(), "bob@example.com")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestResendWebhookAcceptsEachHeaderSetOnce: a genuine delivery passes
// under Svix's header names, Standard Webhooks' names, or both with equal
// values; a redelivery of one message id is acknowledged as a duplicate
// and stored once; signed events crmflow does not act on (a type it does
// not handle, no email id) are acknowledged and stored ignored, so Resend
// stops retrying them.
func TestResendWebhookAcceptsEachHeaderSetOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	ev := resendEventBody(t, "email.delivered", "4ef9a417-02e9-4d39-ad75-000000000003", "ada@example.com", "")
	sign := func(id string, body []byte) http.Header { return signClerk(t, id, body, now, resendSecret) }
	both := sign("msg_both", ev)
	allows := []struct {
		name, id string
		body     []byte
		h        http.Header
		dup      bool
	}{
		{"svix-* set", "msg_svix", ev, sign("msg_svix", ev), false},
		{"webhook-* set", "msg_webhook", ev, headerSetAs("webhook-", sign("msg_webhook", ev)), false},
		{"both sets with equal values", "msg_both", ev, mergeHeaders(both, headerSetAs("webhook-", both)), false},
		{"svix-* redelivered", "msg_svix", ev, sign("msg_svix", ev), true},
		{"webhook-* redelivered under svix-* names", "msg_webhook", ev, sign("msg_webhook", ev), true},
	}
	for _, c := range allows {
		t.Run("allow "+c.name, func(t *testing.T) {
			status, body := f.postResendSigned(c.body, c.h)
			require.Equal(t, http.StatusOK, status, "body: %v", body)
			assert.Equal(t, c.dup, body["duplicate"])
		})
	}
	clicked := []byte(`{"type":"email.clicked","created_at":"2026-08-21T10:00:00.000Z","data":{"email_id":"e1"}}`)
	status, _ := f.postResend("msg_clicked", clicked)
	require.Equal(t, http.StatusOK, status)
	noID := []byte(`{"type":"email.bounced","created_at":"2026-08-21T10:00:00.000Z","data":{"to":["ada@example.com"]}}`)
	status, _ = f.postResend("msg_noid", noID)
	require.Equal(t, http.StatusOK, status)

	assert.Equal(t, []string{"msg_svix", "msg_webhook", "msg_both", "msg_clicked", "msg_noid"}, f.resendEventIDs(),
		"each genuine delivery is stored once, under the id it was signed with")
	clickedRow := f.waitInboxEvent("msg_clicked", "ignored")
	assert.Contains(t, clickedRow.Note, "email.clicked is not handled")
	noIDRow := f.waitInboxEvent("msg_noid", "ignored")
	assert.Contains(t, noIDRow.Note, "no usable email id")
	_, err := f.store.GetSuppression(context.Background(), "ada@example.com")
	assert.ErrorIs(t, err, store.ErrNotFound, "an ignored bounce suppresses nothing")
}

// TestResendWebhookPostgresDown: with PostgreSQL gone, neither the
// signing secrets nor the inbox can be read, so Resend gets 503 (and
// retries later) instead of a 200 for an event nobody stored.
func TestResendWebhookPostgresDown(t *testing.T) {
	url := testenv.DatabaseURL(t)
	st, err := store.Open(context.Background(), url)
	require.NoError(t, err)
	defer st.Close()
	f := newFixture(t, fixtureOptions{store: st})
	admin := testenv.Store(t)
	dbName := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	_, err = admin.Pool().Exec(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)")
	require.NoError(t, err)

	ev := resendEventBody(t, "email.delivered", "4ef9a417-02e9-4d39-ad75-000000000004", "ada@example.com", "")
	status, body := f.postResend("msg_pgdown", ev)
	assert.Equal(t, http.StatusServiceUnavailable, status, "%v", body)
	assert.Equal(t, "unavailable", errorCode(body))
}

// TestResendWebhookSecretRotates: the Resend webhook secret rotates like
// Clerk's: a submitted secret becomes active only once a genuine delivery
// signed with the old and the new secret (as Svix signs while it rolls a
// secret) verifies with it; after the rotation a delivery signed with the
// new secret alone is accepted and one signed with the revoked secret is
// refused.
func TestResendWebhookSecretRotates(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	// A Svix secret (whsec_ and base64) the fixture's verifier accepts.
	const newSecret = "whsec_goodcmVzZW5kLXJvdGF0ZWQtc2VjcmV0"
	id := contract.KeyRotationID(contract.KeyRotationResendWebhook)
	_, err := f.temporal.ExecuteWorkflow(ctx, clientOptions(f, id), contract.KeyRotationType,
		contract.KeyRotationInput{Provider: contract.KeyRotationResendWebhook, RequestedBy: "test"})
	require.NoError(t, err)
	f.waitStatus(id, "awaiting-key")
	rotations := &api.Rotations{Starter: f.starter, Keys: f.creds}
	res, err := rotations.SubmitKey(ctx, "alice", contract.KeyRotationResendWebhook, newSecret)
	require.NoError(t, err)
	require.True(t, res.Valid, res.Reason)
	f.waitStatus(id, "awaiting-proof")

	ev := resendEventBody(t, "email.delivered", "4ef9a417-02e9-4d39-ad75-0000000000bb", "ada@example.com", "")
	onlyNew := signClerk(t, "msg_new_early", ev, time.Now(), newSecret)
	status, body := f.postResendSigned(ev, onlyNew)
	assert.Equal(t, http.StatusBadRequest, status, "a secret waiting for proof verifies nothing yet: %v", body)
	h := signClerk(t, "msg_proof", ev, time.Now(), resendSecret)
	h.Set("svix-signature", h.Get("svix-signature")+" "+signClerk(t, "msg_proof", ev, time.Now(), newSecret).Get("svix-signature"))
	status, body = f.postResendSigned(ev, h)
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Eventually(t, func() bool {
		return f.starter.ConfirmOldKeyRevoked(ctx, contract.KeyRotationResendWebhook, "alice") == nil
	}, 60*time.Second, 100*time.Millisecond, "the revocation is accepted once the secret is active")
	var out contract.KeyRotationResult
	require.NoError(t, f.result(id, &out))
	assert.Equal(t, "rotated", out.State)
	active, err := f.creds.Active(ctx, contract.KeyRotationResendWebhook, "api_key")
	require.NoError(t, err)
	assert.Equal(t, newSecret, active.Secret.Reveal())

	status, body = f.postResendSigned(ev, signClerk(t, "msg_new", ev, time.Now(), newSecret))
	assert.Equal(t, http.StatusOK, status, "%v", body)
	status, body = f.postResendSigned(ev, signClerk(t, "msg_old", ev, time.Now(), resendSecret))
	assert.Equal(t, http.StatusBadRequest, status, "the revoked secret verifies nothing: %v", body)
	assert.Equal(t, "bad_signature", errorCode(body))
}
