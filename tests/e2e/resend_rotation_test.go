package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

// resendPeer is shaped like Resend's API keys endpoints: it keeps keys,
// answers GET /domains for a known token, and can refuse new tokens to
// simulate a key that does not work.
type resendPeer struct {
	mu         sync.Mutex
	next       int
	keys       map[string]map[string]string // id → {name, token}
	refuseNew  bool
	deleted    []string
	srv        *httptest.Server
	initialTok string
}

func newResendPeer(t *testing.T, initialToken string) *resendPeer {
	p := &resendPeer{keys: map[string]map[string]string{"key_initial": {"name": "initial", "token": initialToken}}, initialTok: initialToken}
	// Every request crmflow sends is checked against Resend's published spec.
	p.srv = httptest.NewServer(openapicheck.Load(t, openapicheck.Resend).Middleware(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		known := false
		for _, k := range p.keys {
			if k["token"] == tok && (!p.refuseNew || tok == p.initialTok) {
				known = true
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if !known {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"statusCode":403,"name":"invalid_api_key","message":"API key is invalid"}`)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/domains":
			fmt.Fprint(w, `{"object":"list","has_more":false,"data":[]}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api-keys":
			data := []map[string]any{}
			for id, k := range p.keys {
				data = append(data, map[string]any{"id": id, "name": k["name"], "created_at": "2026-01-01T00:00:00.000Z", "last_used_at": nil})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "has_more": false, "data": data})
		case r.Method == http.MethodPost && r.URL.Path == "/api-keys":
			var body struct {
				Name       string `json:"name"`
				Permission string `json:"permission"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			p.next++
			id := fmt.Sprintf("key_%d", p.next)
			p.keys[id] = map[string]string{"name": body.Name, "token": fmt.Sprintf("re_new_%d_secret", p.next)}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]string{"id": id, "token": p.keys[id]["token"]})
		case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api-keys/"):
			id := strings.TrimPrefix(r.URL.Path, "/api-keys/")
			if _, ok := p.keys[id]; !ok {
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"statusCode":404,"name":"not_found","message":"API key not found"}`)
				return
			}
			delete(p.keys, id)
			p.deleted = append(p.deleted, id)
			fmt.Fprintf(w, `{"object":"api_key","id":%q,"deleted":true}`, id)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})))
	t.Cleanup(p.srv.Close)
	return p
}

// TestResendRotationEndToEnd: create a key at Resend, verify it, store and
// activate it, then (after the grace period) delete the old key at Resend
// and revoke it in the store.
func TestResendRotationEndToEnd(t *testing.T) {
	resend := newResendPeer(t, "re_initial_secret")
	f := newFixture(t, fixtureOptions{worker: true, resendURL: resend.srv.URL})
	ctx := context.Background()
	_, err := f.creds.PutWithExternalID(ctx, "resend", "api_key", "re_initial_secret", "key_initial", "active")
	require.NoError(t, err)
	run, err := f.temporal.ExecuteWorkflow(ctx, clientOptions(f, contract.KeyRotationID("resend")), contract.KeyRotationType,
		contract.KeyRotationInput{Provider: "resend", Grace: time.Second, RequestedBy: "test"})
	require.NoError(t, err)
	var res contract.KeyRotationResult
	require.NoError(t, run.Get(ctx, &res))
	assert.Equal(t, "rotated", res.State)
	active, err := f.creds.Active(ctx, "resend", "api_key")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(active.Secret.Reveal(), "re_new_"), "the new key is active")
	resend.mu.Lock()
	defer resend.mu.Unlock()
	assert.Equal(t, []string{"key_initial"}, resend.deleted, "the old key was deleted at Resend")
	assert.Len(t, resend.keys, 1)
	assert.Equal(t, 1, f.knock.countWorkflow("key-rotated"))
	saveHistory(t, f.temporal, contract.KeyRotationID("resend"), "key_rotation_resend_rotated.json")
}

// TestResendRotationFailedVerificationKeepsOldKey: a new key Resend refuses
// is never activated; the old key stays in use and the new one is deleted.
func TestResendRotationFailedVerificationKeepsOldKey(t *testing.T) {
	resend := newResendPeer(t, "re_initial_secret")
	resend.refuseNew = true
	f := newFixture(t, fixtureOptions{worker: true, resendURL: resend.srv.URL})
	ctx := context.Background()
	_, err := f.creds.PutWithExternalID(ctx, "resend", "api_key", "re_initial_secret", "key_initial", "active")
	require.NoError(t, err)
	run, err := f.temporal.ExecuteWorkflow(ctx, clientOptions(f, contract.KeyRotationID("resend")), contract.KeyRotationType,
		contract.KeyRotationInput{Provider: "resend", Grace: time.Second, RequestedBy: "test"})
	require.NoError(t, err)
	var res contract.KeyRotationResult
	require.NoError(t, run.Get(ctx, &res))
	assert.Equal(t, "failed_verification", res.State)
	active, err := f.creds.Active(ctx, "resend", "api_key")
	require.NoError(t, err)
	assert.Equal(t, "re_initial_secret", active.Secret.Reveal(), "the old key stays in use")
	resend.mu.Lock()
	defer resend.mu.Unlock()
	assert.Len(t, resend.keys, 1, "the refused key was deleted at Resend")
	_, stillThere := resend.keys["key_initial"]
	assert.True(t, stillThere)
	saveHistory(t, f.temporal, contract.KeyRotationID("resend"), "key_rotation_resend_failed_verification.json")
}
