package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

// clerkSecret is a Svix secret: whsec_ + base64 key bytes.
const clerkSecret = "whsec_dGVzdC1jbGVyay1zZWNyZXQta2V5LWJ5dGVz"

const slKey = "sl-test-key"

// simpleLoginPeer stands in for SimpleLogin's API with a small account: it
// checks the Authentication header and the paths and bodies crmflow's
// client sends, keeps aliases and mailboxes, and counts deletions per alias.
type simpleLoginPeer struct {
	mu        sync.Mutex
	nextID    int64
	aliases   map[int64]map[string]any
	deletes   map[int64]int
	mailboxes []map[string]any
	srv       *httptest.Server
}

func newSimpleLoginPeer(t *testing.T) *simpleLoginPeer {
	p := &simpleLoginPeer{nextID: 100, aliases: map[int64]map[string]any{}, deletes: map[int64]int{},
		mailboxes: []map[string]any{{"id": int64(1), "email": "owner@sl.test", "default": true, "verified": true}}}
	// Every request crmflow sends is checked against SimpleLogin's published spec.
	p.srv = httptest.NewServer(openapicheck.Load(t, openapicheck.SimpleLogin).Middleware(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authentication") != slKey {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"Wrong api key"}`)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v2/aliases":
			var body struct {
				Query string `json:"query"`
			}
			if r.Method == http.MethodPost {
				_ = json.NewDecoder(r.Body).Decode(&body)
			}
			out := []map[string]any{}
			if r.URL.Query().Get("page_id") == "0" {
				for _, a := range p.aliases {
					if body.Query == "" || strings.Contains(a["note"].(string), body.Query) {
						out = append(out, a)
					}
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"aliases": out})
		case r.URL.Path == "/api/alias/random/new" && r.Method == http.MethodPost:
			var body struct {
				Note string `json:"note"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			p.nextID++
			a := map[string]any{"id": p.nextID, "email": fmt.Sprintf("random%d@sl.test", p.nextID), "enabled": true,
				"note": body.Note, "name": nil, "pinned": false, "creation_timestamp": time.Now().Unix()}
			p.aliases[p.nextID] = a
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(a)
		case strings.HasPrefix(r.URL.Path, "/api/aliases/") && strings.HasSuffix(r.URL.Path, "/toggle") && r.Method == http.MethodPost:
			id, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/aliases/"), "/toggle"), 10, 64)
			a, ok := p.aliases[id]
			if !ok {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"error":"Forbidden"}`)
				return
			}
			a["enabled"] = !a["enabled"].(bool)
			_ = json.NewEncoder(w).Encode(map[string]any{"enabled": a["enabled"]})
		case strings.HasPrefix(r.URL.Path, "/api/aliases/") && r.Method == http.MethodPatch:
			p.patchAlias(w, r)
		case r.URL.Path == "/api/v2/mailboxes" || strings.HasPrefix(r.URL.Path, "/api/mailboxes"):
			p.serveMailboxes(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/aliases/"):
			id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/aliases/"), 10, 64)
			a, ok := p.aliases[id]
			switch {
			case err != nil || !ok && r.Method == http.MethodGet:
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":"Unknown error"}`)
			case !ok:
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"error":"Forbidden"}`)
			case r.Method == http.MethodGet:
				_ = json.NewEncoder(w).Encode(a)
			case r.Method == http.MethodDelete:
				delete(p.aliases, id)
				p.deletes[id]++
				fmt.Fprint(w, `{"deleted":true}`)
			default:
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"No such endpoint"}`)
		}
	})))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *simpleLoginPeer) deletions() map[int64]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int64]int{}
	for k, v := range p.deletes {
		out[k] = v
	}
	return out
}

// signClerk signs a Clerk payload as Svix does.
func signClerk(t *testing.T, msgID string, payload []byte, at time.Time, secret string) http.Header {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	require.NoError(t, err)
	sig, err := wh.Sign(msgID, at, payload)
	require.NoError(t, err)
	h := http.Header{}
	h.Set("svix-id", msgID)
	h.Set("svix-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("svix-signature", sig)
	return h
}

func (f *fixture) postClerk(payload []byte, h http.Header) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/webhooks/clerk", bytes.NewReader(payload))
	require.NoError(f.t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	return f.do(req)
}

// clerkUserEvent is a Clerk user event whose primary address is email,
// beside old@example.com, both verified.
func clerkUserEvent(typ, userID, email string) []byte {
	if typ == "user.deleted" {
		return []byte(fmt.Sprintf(`{"type":"user.deleted","object":"event","data":{"object":"user","id":%q,"deleted":true}}`, userID))
	}
	return []byte(fmt.Sprintf(`{"type":%q,"object":"event","data":{"object":"user","id":%q,
"primary_email_address_id":"idn_1","email_addresses":[
{"id":"idn_0","email_address":"old@example.com","verification":{"status":"verified","strategy":"email_code"}},
{"id":"idn_1","email_address":%q,"verification":{"status":"verified","strategy":"email_code"}}]}}`, typ, userID, email))
}

func TestClerkWebhookRejectsBadInputAndStoresNothing(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ev := clerkUserEvent("user.deleted", "user_1", "")
	cases := []struct {
		name    string
		payload []byte
		h       http.Header
		code    string
	}{
		{"no headers", ev, http.Header{}, "bad_signature"},
		{"wrong secret", ev, signClerk(t, "msg_1", ev, time.Now(), "whsec_b3RoZXItc2VjcmV0LWtleQ=="), "bad_signature"},
		{"tampered", bytes.Replace(ev, []byte("user_1"), []byte("user_2"), 1), signClerk(t, "msg_1", ev, time.Now(), clerkSecret), "bad_signature"},
		{"stale", ev, signClerk(t, "msg_1", ev, time.Now().Add(-6*time.Minute), clerkSecret), "stale_timestamp"},
		{"from the future", ev, signClerk(t, "msg_1", ev, time.Now().Add(6*time.Minute), clerkSecret), "stale_timestamp"},
		{"malformed", []byte(`{"type":`), signClerk(t, "msg_1", []byte(`{"type":`), time.Now(), clerkSecret), "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.postClerk(c.payload, c.h)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, c.code, errorCode(body))
		})
	}
	total, _ := f.inboxRows()
	assert.Zero(t, total)

	// Duplicate delivery and unknown types.
	h := signClerk(t, "msg_dup", ev, time.Now(), clerkSecret)
	status, body := f.postClerk(ev, h)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, false, body["duplicate"])
	status, body = f.postClerk(ev, h)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["duplicate"])
	other := []byte(`{"type":"session.created","data":{"id":"sess_1"}}`)
	status, _ = f.postClerk(other, signClerk(t, "msg_other", other, time.Now(), clerkSecret))
	require.Equal(t, http.StatusOK, status)
	total, _ = f.inboxRows()
	assert.Equal(t, 2, total)
}

// TestClerkUserDeletedDeletesEveryAliasEndToEnd: a signed user.deleted →
// every alias of the user deleted once at the SimpleLogin peer → rows
// marked deleted and scrubbed; a user.created claims the shadow alias made
// for the new user's email.
func TestClerkUserDeletedDeletesEveryAliasEndToEnd(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newFixture(t, fixtureOptions{worker: true, simpleLoginURL: sl.srv.URL})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "user_del", Email: "del@example.com"}))

	ids := []string{"al-1", "al-2", "al-3"}
	for _, id := range ids {
		_, err := f.starter.CreateAlias(ctx, contract.AliasLifecycleInput{AliasID: id, CustomerID: "user_del"})
		require.NoError(t, err)
	}
	_, err := f.starter.CreateAlias(ctx, contract.AliasLifecycleInput{AliasID: "al-shadow", Email: "New@Example.com"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, id := range append(ids, "al-shadow") {
			a, err := f.store.GetAlias(ctx, id)
			if err != nil || a.State != store.AliasActive {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "aliases created")

	// user.created for new@example.com claims the shadow alias.
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "user_new", Email: "new@example.com"}))
	created := clerkUserEvent("user.created", "user_new", "new@example.com")
	status, _ := f.postClerk(created, signClerk(t, "msg_created", created, time.Now(), clerkSecret))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-shadow")
		return err == nil && a.CustomerID == "user_new"
	}, 30*time.Second, 100*time.Millisecond, "shadow alias claimed")

	deleted := clerkUserEvent("user.deleted", "user_del", "")
	h := signClerk(t, "msg_deleted", deleted, time.Now(), clerkSecret)
	for range 2 { // Svix retries deliver the same message id again
		status, _ = f.postClerk(deleted, h)
		require.Equal(t, http.StatusOK, status)
	}
	for _, id := range ids {
		res := contract.AliasLifecycleResult{}
		run := f.temporal.GetWorkflow(ctx, contract.AliasID(id), "")
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		require.NoError(t, run.Get(waitCtx, &res))
		cancel()
		assert.Equal(t, contract.AliasDeleted, res.State, id)
		a, err := f.store.GetAlias(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, store.AliasDeleted, a.State)
		assert.Empty(t, a.AliasEmail, "nothing of the alias is kept but what the audit needs")
		assert.Empty(t, a.CustomerID)
	}
	dels := sl.deletions()
	assert.Len(t, dels, 3, "three aliases deleted at SimpleLogin")
	for id, n := range dels {
		assert.Equal(t, 1, n, "alias %d deleted once", id)
	}
	a, err := f.store.GetAlias(ctx, "al-shadow")
	require.NoError(t, err)
	assert.Equal(t, store.AliasActive, a.State, "another user's alias is untouched")
	saveHistory(t, f.temporal, contract.AliasID("al-1"), "alias_lifecycle_deleted.json")
	saveHistory(t, f.temporal, contract.AliasID("al-shadow"), "alias_lifecycle_shadow_claimed.json")
}

func TestAliasAPI(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newFixture(t, fixtureOptions{worker: true, simpleLoginURL: sl.srv.URL})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_al", Email: "al@example.com"}))
	post := func(path, body string) (int, map[string]any) {
		return f.api(http.MethodPost, path, apiToken, strings.NewReader(body))
	}
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{}`, 422, "invalid_alias"},
		{`{"customer_id":"cus_al","email":"x@example.com"}`, 422, "invalid_alias"},
		{`{"customer_id":"cus_al","mode":"custom"}`, 422, "invalid_alias"},
		{`{"customer_id":"cus_al","mode":"fancy"}`, 422, "invalid_alias"},
		{`{"customer_id":"nobody"}`, 404, "not_found"},
		{`{"customer_id":"cus_al","surprise":1}`, 400, "malformed"},
	} {
		status, body := post("/v1/aliases", c.body)
		assert.Equal(t, c.status, status, c.body)
		assert.Equal(t, c.code, errorCode(body), c.body)
	}
	status, body := post("/v1/aliases", `{"alias_id":"al-api","customer_id":"cus_al"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "alias/al-api", body["workflow_id"])
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-api")
		return err == nil && a.State == store.AliasActive
	}, 30*time.Second, 100*time.Millisecond)

	status, _ = post("/v1/aliases/al-api/disable", "")
	require.Equal(t, http.StatusAccepted, status)
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-api")
		return err == nil && a.State == store.AliasDisabled
	}, 30*time.Second, 100*time.Millisecond)
	status, body = post("/v1/aliases/al-api/claim", `{}`)
	assert.Equal(t, 422, status, body)
	status, _ = post("/v1/aliases/al-api/explode", "")
	assert.Equal(t, http.StatusNotFound, status)
	status, body = post("/v1/aliases/no-such-alias/delete", "")
	assert.Equal(t, http.StatusNotFound, status, body)
	status, _ = post("/v1/aliases/al-api/delete", "")
	require.Equal(t, http.StatusAccepted, status)
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-api")
		return err == nil && a.State == store.AliasDeleted
	}, 30*time.Second, 100*time.Millisecond)
	assert.Len(t, sl.deletions(), 1)
	saveHistory(t, f.temporal, contract.AliasID("al-api"), "alias_lifecycle_disabled_deleted.json")
}
