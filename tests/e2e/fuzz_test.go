package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/webhooks"
)

// Fuzz targets for everything that decodes a request body at the edge. Each
// signs what it sends with the server's real secret (when the mode says so)
// so the fuzzer gets past the signature check to the parsers. The
// properties, checked on every input: no panic (the server's recovery would
// turn one into a 500), never a 5xx, a 4xx always carries the JSON error
// code, and no inbox row for anything refused. `go test` runs the seeds
// (f.Add and testdata/fuzz); `make fuzz` runs each target for a few seconds.

// fuzzServer is a crmflow HTTP handler on a fresh database, called in
// process: no network in the loop, so the fuzzer gets many runs a second.
type fuzzServer struct {
	store   *store.Store
	handler http.Handler
}

// newFuzzServer builds the server. The webhook handlers never call
// Temporal, so a starter is only built (on the test binary's
// Temporal) when withTemporal is set, for the start API.
func newFuzzServer(f *testing.F, withTemporal bool) *fuzzServer {
	st := testenv.Store(f)
	var s *starter.Starter
	if withTemporal {
		s = starter.New(testenv.TemporalClient(f), starter.Options{TaskQueue: testenv.TaskQueue(f), PaymentTimeout: time.Hour})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	ib := inbox.NewStore(st.Pool())
	handler := api.Handler(api.HandlerOptions{
		HTTP: httpserver.Options{Logger: logger, Registry: reg},
		Ops:  api.OpsDeps{Registry: reg},
		API: &api.Deps{Logger: logger, Store: st, Starter: s, Inbox: ib,
			Auth: staticAuth{apiToken: {Scope: credentials.ScopeService, Name: "api_token"}}},
		// No dispatcher runs, so rows stay in the inbox where the properties
		// can see them.
		Webhooks: &webhooks.Deps{Logger: logger, Registry: reg, Inbox: ib,
			Options: webhooks.Options{StripeSecret: stripeSecret, ClerkSecret: clerkSecret,
				Tolerance: 5 * time.Minute, MaxBodyBytes: 64 << 10}},
	})
	return &fuzzServer{store: st, handler: handler}
}

func (s *fuzzServer) rows(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM webhook_inbox`).Scan(&n); err != nil {
		t.Fatalf("count inbox rows: %v", err)
	}
	return n
}

// storedPayload reads the payload stored for (provider, eventID) and
// decodes it into envelope. The column is jsonb: PostgreSQL normalises the
// text, so callers compare the decoded envelope, not the bytes.
func (s *fuzzServer) storedPayload(provider, eventID string, envelope any) ([]byte, error) {
	var payload []byte
	err := s.store.Pool().QueryRow(context.Background(),
		`SELECT payload FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, provider, eventID).Scan(&payload)
	if err == nil {
		err = json.Unmarshal(payload, envelope)
	}
	return payload, err
}

// serve runs one request and checks the properties every answer must have;
// it returns the status and whether a row was added.
func (s *fuzzServer) serve(t *testing.T, req *http.Request) (int, bool) {
	t.Helper()
	before := s.rows(t)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	added := s.rows(t) - before
	if rec.Code >= 500 {
		t.Fatalf("%s %s answered %d: %s", req.Method, req.URL.Path, rec.Code, rec.Body.String())
	}
	if rec.Code >= 400 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
			t.Fatalf("%s %s answered %d without a JSON error code: %q", req.Method, req.URL.Path, rec.Code, rec.Body.String())
		}
		if added != 0 {
			t.Fatalf("%s %s answered %d but stored %d inbox rows", req.Method, req.URL.Path, rec.Code, added)
		}
	}
	if added > 1 {
		t.Fatalf("%s %s stored %d rows for one request", req.Method, req.URL.Path, added)
	}
	return rec.Code, added == 1
}

// Signing modes of the webhook fuzz targets.
const (
	signGood = iota
	signWrongSecret
	signStale
	signFuture
	signNone
	signModes
)

func signedAt(mode byte) time.Time {
	switch mode % signModes {
	case signStale:
		return time.Now().Add(-time.Hour)
	case signFuture:
		return time.Now().Add(time.Hour)
	}
	return time.Now()
}

// stripeEnvelope is what a stored Stripe event must have.
type stripeEnvelope struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func FuzzStripeWebhook(f *testing.F) {
	s := newFuzzServer(f, false)
	f.Add(stripeEvent("evt_seed_ok", "payment_intent.succeeded", "o-seed"), byte(signGood))
	f.Add(stripeEvent("evt_seed_fail", "payment_intent.payment_failed", "o-seed"), byte(signGood))
	f.Add([]byte(`{"id":"evt_seed_ref","object":"event","type":"charge.refunded","data":{"object":{"id":"ch_1","payment_intent":"pi_1"}}}`), byte(signGood))
	f.Add([]byte(`{"id":"evt_seed_unknown","type":"invoice.paid","data":{"object":{}}}`), byte(signGood))
	f.Add([]byte(`{"id":7,"type":[]}`), byte(signGood))
	f.Add(stripeEvent("evt_seed_ok", "payment_intent.succeeded", "o-seed"), byte(signWrongSecret))
	f.Add(stripeEvent("evt_seed_ok", "payment_intent.succeeded", "o-seed"), byte(signStale))
	f.Add(stripeEvent("evt_seed_ok", "payment_intent.succeeded", "o-seed"), byte(signFuture))
	f.Add(stripeEvent("evt_seed_ok", "payment_intent.succeeded", "o-seed"), byte(signNone))
	f.Fuzz(func(t *testing.T, body []byte, mode byte) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
		switch mode % signModes {
		case signGood, signStale, signFuture:
			req.Header.Set("Stripe-Signature", sign(body, stripeSecret, signedAt(mode)))
		case signWrongSecret:
			req.Header.Set("Stripe-Signature", sign(body, "whsec_not_ours", signedAt(mode)))
		}
		status, stored := s.serve(t, req)
		if mode%signModes != signGood && status != http.StatusBadRequest {
			t.Fatalf("a delivery in signing mode %d answered %d, want 400", mode%signModes, status)
		}
		if status != http.StatusOK {
			return
		}
		var ev stripeEnvelope
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
			t.Fatalf("accepted a body that is not a Stripe event envelope (%v): %q", err, body)
		}
		if stored {
			var got stripeEnvelope
			if payload, err := s.storedPayload("stripe", ev.ID, &got); err != nil || got != ev {
				t.Fatalf("the row of %q does not hold the event (%v): %q", ev.ID, err, payload)
			}
		}
	})
}

// clerkEnvelope is what a stored Clerk event must have.
type clerkEnvelope struct {
	Type string `json:"type"`
}

func FuzzClerkWebhook(f *testing.F) {
	s := newFuzzServer(f, false)
	wh, err := svix.NewWebhook(clerkSecret)
	if err != nil {
		f.Fatal(err)
	}
	other, err := svix.NewWebhook("whsec_b3RoZXItc2VjcmV0LWtleQ==")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(clerkUserEvent("user.created", "user_seed", "seed@example.com"), byte(signGood))
	f.Add(clerkUserEvent("user.deleted", "user_seed", ""), byte(signGood))
	f.Add([]byte(`{"type":"session.created","data":{"id":"sess_1"}}`), byte(signGood))
	f.Add([]byte(`{"type":"user.deleted","data":{"id":42}}`), byte(signGood))
	f.Add(clerkUserEvent("user.deleted", "user_seed", ""), byte(signWrongSecret))
	f.Add(clerkUserEvent("user.deleted", "user_seed", ""), byte(signStale))
	f.Add(clerkUserEvent("user.deleted", "user_seed", ""), byte(signFuture))
	f.Add(clerkUserEvent("user.deleted", "user_seed", ""), byte(signNone))
	f.Fuzz(func(t *testing.T, body []byte, mode byte) {
		sum := sha256.Sum256(body)
		msgID := "msg_" + hex.EncodeToString(sum[:12])
		at := signedAt(mode)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
		req.Header.Set("svix-id", msgID)
		req.Header.Set("svix-timestamp", strconv.FormatInt(at.Unix(), 10))
		var sig string
		var err error
		switch mode % signModes {
		case signGood, signStale, signFuture:
			sig, err = wh.Sign(msgID, at, body)
		case signWrongSecret:
			sig, err = other.Sign(msgID, at, body)
		}
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		if sig != "" {
			req.Header.Set("svix-signature", sig)
		}
		status, stored := s.serve(t, req)
		if mode%signModes != signGood && status != http.StatusBadRequest {
			t.Fatalf("a delivery in signing mode %d answered %d, want 400", mode%signModes, status)
		}
		if status != http.StatusOK {
			return
		}
		var ev clerkEnvelope
		if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
			t.Fatalf("accepted a body that is not a Clerk event (%v): %q", err, body)
		}
		if stored {
			var got clerkEnvelope
			if payload, err := s.storedPayload("clerk", msgID, &got); err != nil || got != ev {
				t.Fatalf("the row of %q does not hold the event (%v): %q", msgID, err, payload)
			}
		}
	})
}

// apiBodyRoutes are the start API's endpoints that read a JSON body; the
// fuzzer picks one with its first argument. None of them waits on a
// workflow that has no worker: the key and dead-letter routes find nothing
// running, so they answer 404 rather than block.
var apiBodyRoutes = []string{
	"/v1/inventory/sku-fz/stock-level",
	"/v1/aliases",
	"/v1/aliases/al-fz/claim",
	"/v1/key-rotations/stripe/key",
	"/v1/dead-letters/1/retry",
}

func FuzzAPIBodies(f *testing.F) {
	s := newFuzzServer(f, true)
	ctx := context.Background()
	if err := s.store.UpsertProduct(ctx, store.Product{SKU: "sku-fz", Name: "Mug", PriceCents: 900, Settings: store.StockSettings{Threshold: 5}}); err != nil {
		f.Fatal(err)
	}
	if err := s.store.UpsertCustomer(ctx, store.Customer{ID: "cus_fz", Email: "fz@example.com"}); err != nil {
		f.Fatal(err)
	}
	seeds := []struct {
		route byte
		ct    string
		body  string
	}{
		{0, "application/json", `{"level":3}`},
		{0, "application/json", `{"level":"3"}`},
		{0, "", `{"level":-1}`},
		{0, "application/json", `{"level":1} {"level":2}`},
		{1, "application/json", `{"alias_id":"al-seed","customer_id":"cus_fz"}`},
		{1, "application/json", `{"email":"new@example.com","mode":"custom","prefix":"news"}`},
		{1, "application/json; charset=utf-8", `{"customer_id":"cus_fz","mode":"fancy"}`},
		{2, "application/json", `{"customer_id":"cus_fz"}`},
		{3, "application/json", `{"key":"whsec_new","operator":"fuzz"}`},
		{4, "application/json", `{"operator":"fuzz"}`},
		{4, "text/plain", `{"operator":"fuzz"}`},
	}
	for _, sd := range seeds {
		f.Add(sd.route, sd.ct, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, route byte, contentType string, body []byte) {
		path := apiBodyRoutes[int(route)%len(apiBodyRoutes)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		// Bound Temporal calls: a valid body may start or signal a workflow.
		reqCtx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
		defer cancel()
		req = req.WithContext(reqCtx)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		status, stored := s.serve(t, req)
		if stored && (status != http.StatusAccepted || !json.Valid(body)) {
			t.Fatalf("%s stored a row for an invalid body (answer %d): %q", path, status, body)
		}
	})
}
