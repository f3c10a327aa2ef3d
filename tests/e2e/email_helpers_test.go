package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

const (
	// resendSecret is the Svix secret of Resend's webhook endpoint.
	resendSecret = "whsec_dGVzdC1yZXNlbmQtd2ViaG9vay1rZXktYnl0ZXM="
	// resendFrom is the sender the fixture's email activities use.
	resendFrom = "CRM <hello@example.com>"
	// resendKey is the API key the mail peer accepts.
	resendKey = "re_test_mail_key"
)

// resendMailPeer stands in for Resend's POST /emails: it checks the bearer
// key, keeps Resend's idempotency (a repeated key with the same payload is
// answered with the first email and sends nothing), and records what it
// sent. Every request and answer is checked against Resend's spec.
// refuseFirst makes the first n sends answer 403, as Resend does for a
// sender whose domain is not verified.
type resendMailPeer struct {
	mu          sync.Mutex
	sent        []resendMail
	byKey       map[string]int
	refuseFirst int
	refused     int
	srv         *httptest.Server
}

// resendMail is one email the peer accepted.
type resendMail struct {
	ID, IdempotencyKey string
	Body               map[string]any
	payload            string
}

func newResendMailPeer(t *testing.T) *resendMailPeer {
	p := &resendMailPeer{byKey: map[string]int{}}
	p.srv = httptest.NewServer(openapicheck.Load(t, openapicheck.Resend).Middleware(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+resendKey {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"statusCode":403,"name":"invalid_api_key","message":"API key is invalid"}`)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/emails" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"statusCode":404,"name":"not_found","message":"not found"}`)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"statusCode":422,"name":"validation_error","message":"body"}`)
			return
		}
		payload, _ := json.Marshal(body)
		key := r.Header.Get("Idempotency-Key")
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.refuseFirst > 0 {
			p.refuseFirst--
			p.refused++
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"statusCode":403,"name":"validation_error","message":"The example.com domain is not verified."}`)
			return
		}
		if i, ok := p.byKey[key]; ok && key != "" {
			if p.sent[i].payload != string(payload) {
				w.WriteHeader(http.StatusConflict)
				fmt.Fprint(w, `{"statusCode":409,"name":"invalid_idempotent_request","message":"payload differs"}`)
				return
			}
			fmt.Fprintf(w, `{"id":%q}`, p.sent[i].ID)
			return
		}
		m := resendMail{ID: newResendEmailID(), IdempotencyKey: key, Body: body, payload: string(payload)}
		p.byKey[key] = len(p.sent)
		p.sent = append(p.sent, m)
		fmt.Fprintf(w, `{"id":%q}`, m.ID)
	})))
	t.Cleanup(p.srv.Close)
	return p
}

// refuse makes the next n sends answer 403.
func (p *resendMailPeer) refuse(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseFirst = n
}

// refusals counts the sends answered 403.
func (p *resendMailPeer) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// newResendEmailID is a fresh id, shaped as Resend's (a UUID). Ids are
// unique across tests, as Resend's are: a complaint's workflow ID is made
// of it, and the tests share one Temporal namespace.
func newResendEmailID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (p *resendMailPeer) all() []resendMail {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]resendMail(nil), p.sent...)
}

// emailFixture is a fixture whose email goes to a Resend mail peer, with
// the peer's key active in the credential store.
func emailFixture(t *testing.T, opts fixtureOptions) (*fixture, *resendMailPeer) {
	t.Helper()
	peer := newResendMailPeer(t)
	opts.worker, opts.resendURL = true, peer.srv.URL
	f := newFixture(t, opts)
	_, err := f.creds.Put(context.Background(), "resend", "api_key", resendKey, "active")
	require.NoError(t, err)
	return f, peer
}

// resendEventBody builds a Resend webhook event about one email, shaped as
// Resend's spec describes it (checked against it when the spec is there):
// bounceType "" adds no bounce.
func resendEventBody(t *testing.T, typ, emailID, to, bounceType string) []byte {
	t.Helper()
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	data := map[string]any{"email_id": emailID, "created_at": now, "from": resendFrom, "to": []string{to},
		"subject": "Your receipt", "tags": map[string]string{"template": "payment-receipt"}}
	schema := map[string]string{"email.delivered": "EmailDeliveredEvent", "email.delivery_delayed": "EmailDeliveryDelayedEvent",
		"email.bounced": "EmailBouncedEvent", "email.complained": "EmailComplainedEvent", "email.opened": "EmailOpenedEvent"}[typ]
	if typ == "email.bounced" {
		data["bounce"] = map[string]any{"diagnosticCode": []string{"smtp; 550 5.1.1 user unknown"},
			"message": "The recipient's mailbox does not exist", "subType": "General", "type": bounceType}
	}
	body, err := json.Marshal(map[string]any{"type": typ, "created_at": now, "data": data})
	require.NoError(t, err)
	if spec := openapicheck.Load(t, openapicheck.Resend); spec != nil && schema != "" {
		require.NoError(t, spec.ValidateSchema(schema, body), "the fixture is a Resend %s", typ)
	}
	return body
}

// postResend delivers a Resend event signed with svix's own signer.
func (f *fixture) postResend(msgID string, body []byte) (int, map[string]any) {
	f.t.Helper()
	return f.postResendSigned(body, signClerk(f.t, msgID, body, time.Now(), resendSecret))
}

// postResendSigned delivers a body with the given headers.
func (f *fixture) postResendSigned(body []byte, h http.Header) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/webhooks/resend", bytes.NewReader(body))
	require.NoError(f.t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	return f.do(req)
}

// emailOf returns the emails row of an idempotency key.
func (f *fixture) emailOf(idempotencyKey string) *store.Email {
	f.t.Helper()
	e, err := f.store.EmailByKey(context.Background(), idempotencyKey)
	require.NoError(f.t, err, "emails row %s", idempotencyKey)
	return e
}

// waitEmailStatus waits for the emails row of a key to reach status.
func (f *fixture) waitEmailStatus(idempotencyKey, status string) *store.Email {
	f.t.Helper()
	var e *store.Email
	require.Eventually(f.t, func() bool {
		got, err := f.store.EmailByKey(context.Background(), idempotencyKey)
		e = got
		return err == nil && got.Status == status
	}, 30*time.Second, 50*time.Millisecond, "email %s reaches %s", idempotencyKey, status)
	return e
}

// seedReceiptOrder creates a customer, a product and a pending 42.00 EUR
// order of two lines.
func (f *fixture) seedReceiptOrder(orderID, customerID string) {
	f.t.Helper()
	ctx := context.Background()
	f.seedOrder(orderID, customerID)
	require.NoError(f.t, f.store.UpsertProduct(ctx, store.Product{SKU: "mug", Name: "Mug", PriceCents: 1500, Currency: "eur"}))
	require.NoError(f.t, f.store.UpsertProduct(ctx, store.Product{SKU: "tea", Name: "Tea", PriceCents: 1200, Currency: "eur"}))
	require.NoError(f.t, f.store.InsertOrderItem(ctx, orderID, "mug", 2, 1500))
	require.NoError(f.t, f.store.InsertOrderItem(ctx, orderID, "tea", 1, 1200))
}

// confirmOrder pays an order with a signed Stripe event and waits for its
// run to end confirmed.
func (f *fixture) confirmOrder(orderID string) {
	f.t.Helper()
	ev := stripeEvent("evt_"+orderID, "payment_intent.succeeded", orderID)
	status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(f.t, http.StatusOK, status, "%v", body)
	var res struct{ State string }
	require.NoError(f.t, f.result("order-confirmation/"+orderID, &res))
	require.Equal(f.t, "confirmed", res.State)
}

// tagsOf reads an email's tags as name → value.
func tagsOf(m resendMail) map[string]string {
	out := map[string]string{}
	tags, _ := m.Body["tags"].([]any)
	for _, t := range tags {
		tag, _ := t.(map[string]any)
		name, _ := tag["name"].(string)
		value, _ := tag["value"].(string)
		out[name] = value
	}
	return out
}

// receiptKey is the idempotency key of an order's receipt.
func receiptKey(orderID string) string { return "order-confirmation/" + orderID + "/send-receipt" }
