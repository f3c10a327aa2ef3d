// Package stripebalance is a test server standing in for Stripe's customer
// balance transactions, POST and GET /v1/customers/{customer}/balance_transactions,
// that remembers what it created and treats idempotency keys as Stripe
// does: the first answer to a key (a 500 included) is stored and replayed,
// marked Idempotent-Replayed: true, to every request with that key; the same
// key with other parameters is an idempotency_error; and a key is forgotten
// once it is 24 hours old, after which it starts a new request. Lists are
// newest first with limit, starting_after and ending_before, as Stripe's.
// Every request, and every 2xx answer, is checked against Stripe's OpenAPI
// spec, the file the tests' stripe-mock validates with.
//
// stripe-mock checks requests too, but keeps nothing and simulates no
// idempotency, so what happens when a money step is retried days later can
// only be tried here. Its clock is the caller's, so a test can move it on
// 25 hours (a workflow test environment's Now, say).
//
// It is test support: it imports only other test support.
package stripebalance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// KeyWindow is how long Stripe keeps an idempotency key; it may prune a key
// from then on, and this server always does.
const KeyWindow = 24 * time.Hour

// Fault is how the server answers one creating request.
type Fault int

const (
	// Stored500 answers 500 and stores that answer under the key, creating
	// nothing, as Stripe does for an error once execution has started.
	Stored500 Fault = iota + 1
	// LandedLost creates the transaction and stores the 200 under the key,
	// then drops the connection: the caller never reads the answer (see
	// Client).
	LandedLost
	// Unavailable503 answers 503 before anything ran, storing nothing.
	Unavailable503
)

// Transaction is one balance transaction the server holds.
type Transaction struct {
	ID       string
	Customer string
	Amount   int64
	Currency string
	Metadata map[string]string
	Created  time.Time
}

// Request is one request as the server understood it.
type Request struct {
	Method   string
	Customer string
	// Key is the Idempotency-Key header.
	Key string
	// Status is what the server answered; 0 for a dropped connection.
	Status int
	// Replayed is true when the answer was one stored under Key.
	Replayed bool
}

// Server is the balance transactions API. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the server's base URL, for stripe.api_url.
	URL string

	t      testing.TB
	mu     sync.Mutex
	now    func() time.Time
	txns   []Transaction // in creation order
	keys   map[string]stored
	faults []Fault
	down   bool
	reqs   []Request
}

// stored is the first answer to an idempotency key.
type stored struct {
	at          time.Time
	fingerprint string
	status      int
	body        []byte
}

// New starts the server; it stops with the test. now is the server's clock
// for created times and the keys' age (nil: time.Now).
func New(t testing.TB, now func() time.Time) *Server {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	s := &Server{t: t, now: now, keys: map[string]stored{}}
	spec := openapicheck.LoadFile(t, openapicheck.Stripe, testenv.StripeSpecPath(t))
	srv := httptest.NewServer(spec.Middleware(t, true, http.HandlerFunc(s.serve)))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Client is an HTTP client for the server that opens a connection per
// request. net/http resends a request that carries an Idempotency-Key when
// a reused connection drops, so over kept-alive connections a LandedLost
// answer would be read after all, from the key's replay.
func (s *Server) Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// FailNext makes the next creating requests that get past the idempotency
// check (a replay takes no fault) answer as faults say, one each.
func (s *Server) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// SetDown makes every request answer 503 (an outage) until SetDown(false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Transactions returns the transactions made so far, oldest first.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Transaction(nil), s.txns...)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Creates returns the creating requests received so far.
func (s *Server) Creates() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost {
			out = append(out, r)
		}
	}
	return out
}

var pathRE = regexp.MustCompile(`^/v1/customers/([^/]+)/balance_transactions$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		s.t.Errorf("stripebalance: unexpected request %s %s", r.Method, r.URL.Path)
		writeError(w, http.StatusNotFound, "invalid_request_error", "Unrecognized request URL")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_test_") {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "Invalid API Key provided")
		return
	}
	req := Request{Method: r.Method, Customer: m[1], Key: r.Header.Get("Idempotency-Key")}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Deferred, so a dropped connection (a panic) is recorded too.
	defer func() { s.reqs = append(s.reqs, req) }()
	switch {
	case s.down:
		req.Status = http.StatusServiceUnavailable
		writeError(w, req.Status, "api_error", "Stripe is down (stand-in outage)")
	case r.Method == http.MethodGet:
		req.Status = s.list(w, r, m[1])
	case r.Method == http.MethodPost:
		s.create(w, r, &req)
	default:
		req.Status = http.StatusMethodNotAllowed
		writeError(w, req.Status, "invalid_request_error", "method not allowed")
	}
}

// create handles a POST, noting in req what it answered.
func (s *Server) create(w http.ResponseWriter, r *http.Request, req *Request) {
	if err := r.ParseForm(); err != nil {
		req.Status = http.StatusBadRequest
		writeError(w, req.Status, "invalid_request_error", err.Error())
		return
	}
	now, key := s.now(), req.Key
	fingerprint := req.Customer + "?" + r.PostForm.Encode()
	if key != "" {
		if old, ok := s.keys[key]; ok && now.Sub(old.at) < KeyWindow {
			if old.fingerprint != fingerprint {
				req.Status = http.StatusBadRequest
				writeError(w, req.Status, "idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were first used with.")
				return
			}
			req.Status, req.Replayed = old.status, true
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, old.status, old.body)
			return
		}
		delete(s.keys, key) // pruned: the key starts a new request
	}
	var fault Fault
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
	}
	switch fault {
	case Unavailable503:
		req.Status = http.StatusServiceUnavailable
		writeError(w, req.Status, "api_error", "overloaded (stand-in)")
		return
	case Stored500:
		req.Status = http.StatusInternalServerError
		body := errorBody("api_error", "An unknown error occurred (stand-in)")
		s.remember(key, now, fingerprint, req.Status, body)
		writeJSON(w, req.Status, body)
		return
	}
	txn, err := s.newTransaction(r.PostForm, req.Customer, now)
	if err != nil {
		req.Status = http.StatusBadRequest
		writeError(w, req.Status, "invalid_request_error", err.Error())
		return
	}
	body, _ := json.Marshal(s.object(txn))
	s.remember(key, now, fingerprint, http.StatusOK, body)
	if fault == LandedLost {
		dropConnection(w)
		return
	}
	req.Status = http.StatusOK
	writeJSON(w, req.Status, body)
}

func (s *Server) remember(key string, at time.Time, fingerprint string, status int, body []byte) {
	if key != "" {
		s.keys[key] = stored{at: at, fingerprint: fingerprint, status: status, body: body}
	}
}

func (s *Server) newTransaction(form url.Values, customer string, now time.Time) (Transaction, error) {
	amount, err := strconv.ParseInt(form.Get("amount"), 10, 64)
	if err != nil {
		return Transaction{}, fmt.Errorf("amount: %w", err)
	}
	txn := Transaction{ID: fmt.Sprintf("cbtxn_standin%04d", len(s.txns)+1), Customer: customer, Amount: amount,
		Currency: form.Get("currency"), Metadata: map[string]string{}, Created: now}
	for k, v := range form {
		if name, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(name, "]") {
			txn.Metadata[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	s.txns = append(s.txns, txn)
	return txn, nil
}

// list handles a GET: the customer's transactions newest first, paged.
func (s *Server) list(w http.ResponseWriter, r *http.Request, customer string) int {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "limit must be between 1 and 100")
			return http.StatusBadRequest
		}
		limit = n
	}
	var mine []Transaction
	for _, t := range s.txns {
		if t.Customer == customer {
			mine = append(mine, t)
		}
	}
	// Newest first: creation order reversed.
	for i, j := 0, len(mine)-1; i < j; i, j = i+1, j-1 {
		mine[i], mine[j] = mine[j], mine[i]
	}
	start, end := 0, len(mine)
	if after := q.Get("starting_after"); after != "" {
		start = indexOf(mine, after) + 1
	}
	if before := q.Get("ending_before"); before != "" {
		end = indexOf(mine, before)
		start = max(0, end-limit)
	}
	page := mine[start:min(end, start+limit)]
	data := make([]map[string]any, 0, len(page))
	for _, t := range page {
		data = append(data, s.object(t))
	}
	body, _ := json.Marshal(map[string]any{"object": "list", "data": data, "has_more": start+len(page) < end,
		"url": "/v1/customers/" + customer + "/balance_transactions"})
	writeJSON(w, http.StatusOK, body)
	return http.StatusOK
}

// indexOf is the position of id in txns; past the end when absent, so a
// cursor naming nothing lists nothing.
func indexOf(txns []Transaction, id string) int {
	for i, t := range txns {
		if t.ID == id {
			return i
		}
	}
	return len(txns)
}

// object is the transaction as Stripe returns it.
func (s *Server) object(t Transaction) map[string]any {
	var balance int64
	for _, o := range s.txns {
		if o.Customer == t.Customer {
			balance += o.Amount
		}
		if o.ID == t.ID {
			break
		}
	}
	return map[string]any{
		"id": t.ID, "object": "customer_balance_transaction", "amount": t.Amount, "created": t.Created.Unix(),
		"credit_note": nil, "currency": t.Currency, "customer": t.Customer, "description": nil,
		"ending_balance": balance, "invoice": nil, "livemode": false, "metadata": t.Metadata, "type": "adjustment",
	}
}

func errorBody(typ, message string) []byte {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "message": message}})
	return body
}

func writeError(w http.ResponseWriter, status int, typ, message string) {
	writeJSON(w, status, errorBody(typ, message))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_standin")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// dropConnection closes the connection without an answer. Behind
// openapicheck's middleware the writer is a recorder, so it panics with
// http.ErrAbortHandler, which the server turns into a dropped connection.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
