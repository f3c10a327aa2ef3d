package e2e_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Which of Svix's two header sets a Clerk delivery is verified, timed and
// identified by: one complete set, never a mix of the two.

// headerSetAs is the svix-* set h (as signClerk makes it) under prefix
// "svix-" or "webhook-" (Standard Webhooks' names for the same headers).
func headerSetAs(prefix string, h http.Header) http.Header {
	out := http.Header{}
	for _, name := range []string{"id", "timestamp", "signature"} {
		out.Set(prefix+name, h.Get("svix-"+name))
	}
	return out
}

// mergeHeaders joins header sets; a later value of one name is added, not
// replaced, so a header given twice stays twice.
func mergeHeaders(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, vs := range h {
			for _, v := range vs {
				out.Add(k, v)
			}
		}
	}
	return out
}

// clerkEventIDs lists the event ids of the stored Clerk rows, oldest first.
func (f *fixture) clerkEventIDs() []string {
	f.t.Helper()
	rows, err := f.store.Pool().Query(context.Background(), `SELECT event_id FROM webhook_inbox WHERE provider = 'clerk' ORDER BY id`)
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

// TestClerkDeliveryIsVerifiedTimedAndIdentifiedByOneHeaderSet: a captured
// delivery (its webhook-* set) resent with a fresh svix-id and
// svix-timestamp but no svix-signature must not pass as a new event: the
// signature, the timestamp tolerance and the event id all come from one
// complete set, and a request whose two sets disagree is refused.
func TestClerkDeliveryIsVerifiedTimedAndIdentifiedByOneHeaderSet(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	ev := clerkUserEvent("user.deleted", "user_replay", "")

	// The genuine delivery the attacker captured, with Standard Webhooks'
	// header names.
	captured := headerSetAs("webhook-", signClerk(t, "msg_captured", ev, now, clerkSecret))
	status, body := f.postClerk(ev, captured)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, false, body["duplicate"])

	fresh := func(names ...string) http.Header {
		h := http.Header{}
		for _, n := range names {
			switch n {
			case "svix-id":
				h.Set(n, "msg_fresh_"+n)
			case "svix-timestamp":
				h.Set(n, strconv.FormatInt(time.Now().Unix(), 10))
			}
		}
		return h
	}
	// A delivery signed long ago and never seen, as an attacker who keeps
	// captures would hold it.
	old := headerSetAs("webhook-", signClerk(t, "msg_old", ev, now.Add(-time.Hour), clerkSecret))
	otherEv := clerkUserEvent("user.deleted", "user_other", "")
	otherMsg := signClerk(t, "msg_other", otherEv, now, clerkSecret)
	denies := []struct {
		name string
		h    http.Header
		code string
	}{
		{"captured webhook-* set with a fresh svix-id and svix-timestamp", mergeHeaders(captured, fresh("svix-id", "svix-timestamp")), "bad_signature"},
		{"captured webhook-* set with a fresh svix-id", mergeHeaders(captured, fresh("svix-id")), "bad_signature"},
		{"captured webhook-* set with an empty svix-signature", mergeHeaders(captured, fresh("svix-id", "svix-timestamp"), http.Header{"Svix-Signature": {""}}), "bad_signature"},
		{"stale webhook-* set with a fresh svix-timestamp", mergeHeaders(old, fresh("svix-timestamp")), "bad_signature"},
		{"stale webhook-* set alone", old, "stale_timestamp"},
		{"both sets complete, each genuine, of different messages", mergeHeaders(otherMsg, headerSetAs("webhook-", signClerk(t, "msg_b", ev, now, clerkSecret))), "bad_signature"},
		{"webhook-* set without its signature", mergeHeaders(http.Header{"Webhook-Id": {"msg_captured"}, "Webhook-Timestamp": captured["Webhook-Timestamp"]}), "bad_signature"},
		{"webhook-id given twice", mergeHeaders(captured, http.Header{"Webhook-Id": {"msg_fresh"}}), "bad_signature"},
		{"svix-id given twice", mergeHeaders(signClerk(t, "msg_twice", ev, now, clerkSecret), http.Header{"Svix-Id": {"msg_fresh"}}), "bad_signature"},
	}
	for _, c := range denies {
		t.Run("deny "+c.name, func(t *testing.T) {
			status, body := f.postClerk(ev, c.h)
			assert.Equal(t, http.StatusBadRequest, status, "body: %v", body)
			assert.Equal(t, c.code, errorCode(body))
		})
	}
	assert.Equal(t, []string{"msg_captured"}, f.clerkEventIDs(), "no replay is stored as a new event")

	allows := []struct {
		name, id string
		h        http.Header
		dup      bool
	}{
		{"svix-* set", "msg_svix", signClerk(t, "msg_svix", ev, now, clerkSecret), false},
		{"webhook-* set", "msg_webhook", headerSetAs("webhook-", signClerk(t, "msg_webhook", ev, now, clerkSecret)), false},
		{"both sets with equal values", "msg_both", func() http.Header {
			h := signClerk(t, "msg_both", ev, now, clerkSecret)
			return mergeHeaders(h, headerSetAs("webhook-", h))
		}(), false},
		{"the captured delivery again, unchanged", "msg_captured", captured, true},
	}
	for _, c := range allows {
		t.Run("allow "+c.name, func(t *testing.T) {
			status, body := f.postClerk(ev, c.h)
			require.Equal(t, http.StatusOK, status, "body: %v", body)
			assert.Equal(t, c.dup, body["duplicate"])
		})
	}
	assert.Equal(t, []string{"msg_captured", "msg_svix", "msg_webhook", "msg_both"}, f.clerkEventIDs(),
		"each genuine delivery is stored once, under the id it was signed with")
}
