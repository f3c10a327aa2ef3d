package activities_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// stripe-mock accepts any key shaped like a test key.
const stripeTestKey = "sk_test_123"

// stripeEnv returns an activity environment with acts registered.
func stripeEnv(t *testing.T, acts *activities.StripeActivities) *testsuite.TestActivityEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(&captureLogger{})
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return env
}

// requireStripeError asserts err is a classified application error.
func requireStripeError(t *testing.T, err error, wantType string, nonRetryable bool) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr, "error: %v", err)
	assert.Equal(t, wantType, appErr.Type(), "error: %v", err)
	assert.Equal(t, nonRetryable, appErr.NonRetryable(), "non-retryable; error: %v", err)
}

func validCredit() activities.CreditCustomerBalanceInput {
	return activities.CreditCustomerBalanceInput{
		CustomerID:     "cus_referrer1",
		AmountCents:    500,
		Currency:       "usd",
		Description:    "Referral reward",
		Metadata:       map[string]string{"referral_id": "ref-1"},
		IdempotencyKey: "referral-reward/ref-1:credit",
	}
}

func TestStripeRetrievePaymentIntent(t *testing.T) {
	acts := &activities.StripeActivities{Stripe: activities.NewStripeClient(stripeTestKey, testenv.StripeMockURL(t))}
	env := stripeEnv(t, acts)

	val, err := env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_crmflow42"})
	require.NoError(t, err)
	var pi activities.PaymentIntentSnapshot
	require.NoError(t, val.Get(&pi))
	assert.Equal(t, "pi_crmflow42", pi.ID, "stripe-mock echoes the id from the path")
	assert.Positive(t, pi.Amount)
	assert.Regexp(t, `^[a-z]{3}$`, pi.Currency)
	assert.NotEmpty(t, pi.Status)
}

func TestStripeCreditCustomerBalance(t *testing.T) {
	rec := &recordingTransport{}
	sc := activities.NewStripeClientWithHTTPClient(stripeTestKey, testenv.StripeMockURL(t), &http.Client{Transport: rec})
	acts := &activities.StripeActivities{Stripe: sc}
	env := stripeEnv(t, acts)

	// stripe-mock checks every parameter against Stripe's OpenAPI spec and
	// answers 400 to a misspelt or missing one, so success here means the
	// request is well-formed.
	val, err := env.ExecuteActivity(acts.CreditCustomerBalance, validCredit())
	require.NoError(t, err)
	var out activities.CreditCustomerBalanceOutput
	require.NoError(t, val.Get(&out))
	assert.True(t, strings.HasPrefix(out.BalanceTransactionID, "cbtxn_"), out.BalanceTransactionID)
	assert.False(t, out.Console)

	reqs := rec.requests()
	require.Len(t, reqs, 1, "stripe-go must not retry on its own")
	r := reqs[0]
	assert.Equal(t, http.MethodPost, r.method)
	assert.Equal(t, "/v1/customers/cus_referrer1/balance_transactions", r.path)
	assert.Equal(t, "referral-reward/ref-1:credit", r.header.Get("Idempotency-Key"))
	assert.Equal(t, "Bearer "+stripeTestKey, r.header.Get("Authorization"))
	assert.Equal(t, stripe.APIVersion, r.header.Get("Stripe-Version"))
	form, err := url.ParseQuery(r.body)
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"amount":                {"-500"}, // negative: a credit to the customer
		"currency":              {"usd"},
		"description":           {"Referral reward"},
		"metadata[referral_id]": {"ref-1"},
	}, form)
}

// Proves the check above has teeth: stripe-mock rejects what Stripe would.
func TestStripeMockRejectsMalformedRequests(t *testing.T) {
	sc := activities.NewStripeClient(stripeTestKey, testenv.StripeMockURL(t))
	tests := map[string]func(*stripe.CustomerBalanceTransactionParams){
		"unknown parameter": func(p *stripe.CustomerBalanceTransactionParams) { p.AddExtra("amount_cents", "-500") },
		"missing amount":    func(p *stripe.CustomerBalanceTransactionParams) { p.Amount = nil },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			params := &stripe.CustomerBalanceTransactionParams{
				Customer: stripe.String("cus_1"), Amount: stripe.Int64(-500), Currency: stripe.String("usd"),
			}
			mutate(params)
			_, err := sc.CustomerBalanceTransactions.New(params)
			var se *stripe.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, http.StatusBadRequest, se.HTTPStatusCode)
			assert.Equal(t, stripe.ErrorTypeInvalidRequest, se.Type)
		})
	}
}

func TestStripeBadKeyIsAuthFailed(t *testing.T) {
	const key = "sk_live_notarealkey123"
	acts := &activities.StripeActivities{Stripe: activities.NewStripeClient(key, testenv.StripeMockURL(t))}
	env := stripeEnv(t, acts)

	_, err := env.ExecuteActivity(acts.CreditCustomerBalance, validCredit())
	requireStripeError(t, err, "StripeAuthFailed", true)
	// stripe-mock quotes the key it refused; the error goes into histories.
	assert.NotContains(t, err.Error(), "notarealkey123")
}

func TestStripeErrorResponses(t *testing.T) {
	const notFound = `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer: 'cus_referrer1'","param":"customer"}}`
	tests := []struct {
		name         string
		status       int
		header       http.Header
		body         string
		wantType     string
		nonRetryable bool
	}{
		{"not found", 404, nil, notFound, "StripeNotFound", true},
		{"server error", 500, nil, `{"error":{"type":"api_error","message":"An unknown error occurred"}}`, "StripeUnavailable", false},
		{"rate limited", 429, nil, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`, "StripeRateLimited", false},
		{"key in use", 409, nil, `{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"in use"}}`, "StripeUnavailable", false},
		{"key reused", 400, nil, `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}`, "StripeConflict", true},
		{"card declined", 402, nil, `{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}`, "StripeInvalidRequest", true},
		{"stripe says do not retry", 503, http.Header{"Stripe-Should-Retry": {"false"}}, `{"error":{"type":"api_error","message":"stored result"}}`, "StripeUnavailable", true},
		{"proxy error page", 502, nil, `<html>Bad Gateway</html>`, "StripeUnavailable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.Header().Set("Request-Id", "req_test")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			acts := &activities.StripeActivities{Stripe: activities.NewStripeClient(stripeTestKey, srv.URL)}
			env := stripeEnv(t, acts)

			_, err := env.ExecuteActivity(acts.CreditCustomerBalance, validCredit())
			requireStripeError(t, err, tt.wantType, tt.nonRetryable)
			assert.EqualValues(t, 1, hits.Load(), "retries are Temporal's, not stripe-go's")

			_, err = env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1"})
			requireStripeError(t, err, tt.wantType, tt.nonRetryable)
		})
	}
}

func TestStripeConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	acts := &activities.StripeActivities{Stripe: activities.NewStripeClient(stripeTestKey, "http://"+addr)}
	env := stripeEnv(t, acts)

	_, err = env.ExecuteActivity(acts.CreditCustomerBalance, validCredit())
	requireStripeError(t, err, "StripeUnavailable", false)
}

func TestStripeHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	sc := activities.NewStripeClientWithHTTPClient(stripeTestKey, srv.URL, &http.Client{Timeout: 100 * time.Millisecond})
	acts := &activities.StripeActivities{Stripe: sc}
	env := stripeEnv(t, acts)

	_, err := env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1"})
	requireStripeError(t, err, "StripeUnavailable", false)
}

func TestStripeInvalidInputSendsNothing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	acts := &activities.StripeActivities{Stripe: activities.NewStripeClient(stripeTestKey, srv.URL)}
	env := stripeEnv(t, acts)

	noKey := validCredit()
	noKey.IdempotencyKey = ""
	_, err := env.ExecuteActivity(acts.CreditCustomerBalance, noKey)
	requireStripeError(t, err, "StripeInvalidRequest", true)

	upper := validCredit()
	upper.Currency = "USD"
	_, err = env.ExecuteActivity(acts.CreditCustomerBalance, upper)
	requireStripeError(t, err, "StripeInvalidRequest", true)

	_, err = env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{})
	requireStripeError(t, err, "StripeInvalidRequest", true)

	assert.Zero(t, hits.Load())
}

func TestStripeConsoleMode(t *testing.T) {
	acts := &activities.StripeActivities{Console: true}
	var s testsuite.WorkflowTestSuite
	logs := &captureLogger{}
	s.SetLogger(logs)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	snap := &activities.PaymentIntentSnapshot{ID: "pi_1", Amount: 4200, AmountReceived: 4200, Currency: "eur",
		Status: "succeeded", CustomerID: "cus_1", Metadata: map[string]string{"order_id": "o1"}}
	val, err := env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1", Snapshot: snap})
	require.NoError(t, err)
	var pi activities.PaymentIntentSnapshot
	require.NoError(t, val.Get(&pi))
	assert.Equal(t, *snap, pi)

	_, err = env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1"})
	requireStripeError(t, err, "StripeInvalidRequest", true)
	_, err = env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_2", Snapshot: snap})
	requireStripeError(t, err, "StripeInvalidRequest", true)

	val, err = env.ExecuteActivity(acts.CreditCustomerBalance, validCredit())
	require.NoError(t, err)
	var out activities.CreditCustomerBalanceOutput
	require.NoError(t, val.Get(&out))
	assert.True(t, out.Console)
	assert.Equal(t, "console:referral-reward/ref-1:credit", out.BalanceTransactionID)

	// Console mode validates like the real thing, so dev catches bad input.
	bad := validCredit()
	bad.AmountCents = 0
	_, err = env.ExecuteActivity(acts.CreditCustomerBalance, bad)
	requireStripeError(t, err, "StripeInvalidRequest", true)

	infos := logs.infos()
	require.Len(t, infos, 2)
	assert.Contains(t, infos[0], "CONSOLE MODE stripe: would call GET /v1/payment_intents/{id}")
	assert.Contains(t, infos[0], "pi_1")
	assert.Contains(t, infos[1], "CONSOLE MODE stripe: would call POST /v1/customers/{id}/balance_transactions")
	assert.Contains(t, infos[1], "cus_referrer1")
}

// recordingTransport records each request before sending it on.
type recordingTransport struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	method, path, body string
	header             http.Header
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		if err := req.Body.Close(); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, recordedRequest{method: req.Method, path: req.URL.Path, body: string(body), header: req.Header.Clone()})
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (rt *recordingTransport) requests() []recordedRequest {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]recordedRequest(nil), rt.reqs...)
}

// captureLogger keeps the activities' info lines and drops the SDK's other
// chatter.
type captureLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *captureLogger) Debug(string, ...any) {}
func (l *captureLogger) Warn(string, ...any)  {}
func (l *captureLogger) Error(string, ...any) {}
func (l *captureLogger) Info(msg string, kv ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(fmt.Sprintln(append([]any{msg}, kv...)...)))
}

func (l *captureLogger) infos() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, "stripe") {
			out = append(out, line)
		}
	}
	return out
}

func TestStripeDebitCustomerBalance(t *testing.T) {
	rec := &recordingTransport{}
	sc := activities.NewStripeClientWithHTTPClient(stripeTestKey, testenv.StripeMockURL(t), &http.Client{Transport: rec})
	acts := &activities.StripeActivities{Stripe: sc}
	env := stripeEnv(t, acts)
	in := validCredit()
	in.IdempotencyKey = "referral-reward/ref-1/clawback"
	val, err := env.ExecuteActivity(acts.DebitCustomerBalance, in)
	require.NoError(t, err)
	var out activities.CreditCustomerBalanceOutput
	require.NoError(t, val.Get(&out))
	assert.True(t, strings.HasPrefix(out.BalanceTransactionID, "cbtxn_"), out.BalanceTransactionID)
	reqs := rec.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "referral-reward/ref-1/clawback", reqs[0].header.Get("Idempotency-Key"))
	form, err := url.ParseQuery(reqs[0].body)
	require.NoError(t, err)
	assert.Equal(t, "500", form.Get("amount"), "positive: a debit of the customer's balance")
}

// TestStripeWithoutActiveKeyIsCredentialMissing: Stripe configured (a key
// source, not console mode) with no active key, e.g. the key was revoked:
// every call fails with a non-retryable StripeCredentialMissing before
// anything is sent, instead of answering from the webhook's snapshot or
// making up a console: balance transaction.
func TestStripeWithoutActiveKeyIsCredentialMissing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	acts := &activities.StripeActivities{Keys: staticKey(""), APIURL: srv.URL}
	env := stripeEnv(t, acts)

	snap := &activities.PaymentIntentSnapshot{ID: "pi_1", Amount: 4200, AmountReceived: 4200, Currency: "eur", Status: "succeeded"}
	_, err := env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1", Snapshot: snap})
	requireStripeError(t, err, "StripeCredentialMissing", true)
	_, err = env.ExecuteActivity(acts.CreditCustomerBalance, validCredit())
	requireStripeError(t, err, "StripeCredentialMissing", true)
	_, err = env.ExecuteActivity(acts.DebitCustomerBalance, validCredit())
	requireStripeError(t, err, "StripeCredentialMissing", true)
	assert.Zero(t, hits.Load(), "nothing is sent without a key")
}
