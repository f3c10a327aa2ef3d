package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// rsOutbox is the fake Resend's sent mail, with Resend's idempotency: a
// repeated key with the same payload gets the first answer and sends
// nothing; with another payload 409 invalid_idempotent_request. It is used
// under the fake's lock.
type rsOutbox struct {
	sent  []rsEmail
	byKey map[string]int
}

// rsEmail is one email the fake accepted.
type rsEmail struct {
	id, idempotencyKey string
	body               map[string]any
	payload            string
}

func (o *rsOutbox) send(req rsRequest) (int, string) {
	payload, _ := json.Marshal(req.body)
	if i, ok := o.byKey[req.idempotencyKey]; ok && req.idempotencyKey != "" {
		if o.sent[i].payload != string(payload) {
			return 409, rsError(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload.")
		}
		return 200, fmt.Sprintf(`{"id":%q}`, o.sent[i].id)
	}
	e := rsEmail{id: fmt.Sprintf("49a3999c-0ce1-4ea6-ab68-%012d", len(o.sent)+1), idempotencyKey: req.idempotencyKey,
		body: req.body, payload: string(payload)}
	if o.byKey == nil {
		o.byKey = map[string]int{}
	}
	o.byKey[req.idempotencyKey] = len(o.sent)
	o.sent = append(o.sent, e)
	return 200, fmt.Sprintf(`{"id":%q}`, e.id)
}

// emails returns the emails the fake accepted.
func (f *fakeResend) emails() []rsEmail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rsEmail(nil), f.outbox.sent...)
}

const emFrom = "CRM <hello@example.com>"

// emailActivities sends through the fake with a sending_access key, which
// is all sending needs.
func (f *fakeResend) emailActivities(t *testing.T, st *store.Store) *activities.EmailActivities {
	t.Helper()
	sending := f.addKey("sending-only", activities.ResendSendingAccess)
	return &activities.EmailActivities{Resend: f.activities(&rsKeys{t: t, key: sending.token}), From: emFrom, Store: st}
}

func emSend(t *testing.T, a *activities.EmailActivities, in activities.SendEmailInput) (*activities.SendEmailOutput, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.SendTemplatedEmail, in)
	if err != nil {
		return nil, err
	}
	var out activities.SendEmailOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

// receiptInput is the receipt of order o-42 as the order confirmation
// builds it.
func receiptInput(to string) activities.SendEmailInput {
	r := activities.Receipt{OrderID: "o-42", Email: to, CustomerName: "Ada", AmountCents: 4250, Currency: "eur",
		Lines: []activities.ReceiptLine{
			{SKU: "mug", Name: "Mug", Quantity: 2, UnitPriceCents: 1500, TotalCents: 3000},
			{SKU: "tea", Name: "Tea", Quantity: 1, UnitPriceCents: 1250, TotalCents: 1250},
		}}
	return activities.SendEmailInput{Template: activities.ReceiptTemplate, To: to, Data: r.TemplateData(),
		IdempotencyKey: "order-confirmation/o-42/send-receipt", BusinessKey: "o-42"}
}

// TestSendTemplatedEmailThroughResend: resend-go sends one POST /emails
// with the idempotency key, the configured sender, both parts and tags
// naming the template and the business key; the emails row records
// Resend's id. Every request is checked against Resend's spec.
func TestSendTemplatedEmailThroughResend(t *testing.T) {
	f := newFakeResend(t)
	st := testenv.Store(t)
	a := f.emailActivities(t, st)
	in := receiptInput("Ada <Ada@Example.com>")

	out, err := emSend(t, a, in)
	require.NoError(t, err)
	sent := f.emails()
	require.Len(t, sent, 1)
	assert.Equal(t, activities.SendEmailOutput{EmailID: sent[0].id, Status: activities.EmailStatusSent}, *out)
	assert.Equal(t, in.IdempotencyKey, sent[0].idempotencyKey)

	body := sent[0].body
	assert.Equal(t, emFrom, body["from"])
	assert.Equal(t, []any{"Ada <Ada@Example.com>"}, body["to"])
	assert.Equal(t, "Your receipt for order o-42", body["subject"])
	assert.Contains(t, body["text"], "2 x Mug (mug) at 15.00 EUR: 30.00 EUR")
	assert.Contains(t, body["text"], "Total paid: 42.50 EUR")
	assert.Contains(t, body["html"], "<th align=\"right\">42.50 EUR</th>")
	assert.ElementsMatch(t, []any{
		map[string]any{"name": "template", "value": "payment-receipt"},
		map[string]any{"name": "template_version", "value": "v1"},
		map[string]any{"name": "business_key", "value": "o-42"},
	}, body["tags"])

	row, err := st.EmailByKey(t.Context(), in.IdempotencyKey)
	require.NoError(t, err)
	assert.Equal(t, store.EmailSent, row.Status)
	assert.Equal(t, sent[0].id, row.ProviderID)
	assert.Equal(t, "ada@example.com", row.Recipient, "the address is kept as suppressions compare it")
	assert.Equal(t, []string{"payment-receipt", "v1", "o-42", "Your receipt for order o-42"},
		[]string{row.Template, row.TemplateVersion, row.BusinessKey, row.Subject})
	assert.NotNil(t, row.SentAt)
	assert.False(t, row.Console)

	// A repeat (a retried step after the activity finished) finds the row
	// and sends nothing.
	again, err := emSend(t, a, in)
	require.NoError(t, err)
	assert.Equal(t, out, again)
	assert.Len(t, f.emails(), 1)
}

// TestSendRetriedAfterResendFailedUsesTheSameKey: an attempt Resend failed
// leaves the row sending; the retry sends with the same Idempotency-Key
// and records the email once.
func TestSendRetriedAfterResendFailedUsesTheSameKey(t *testing.T) {
	f := newFakeResend(t)
	st := testenv.Store(t)
	a := f.emailActivities(t, st)
	in := receiptInput("ada@example.com")
	f.failNext("POST /emails", rsCanned{status: 503, body: rsError(503, "internal_server_error", "try later")})

	_, err := emSend(t, a, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, "ResendUnavailable", appErr.Type())
	assert.False(t, appErr.NonRetryable())
	row, err := st.EmailByKey(t.Context(), in.IdempotencyKey)
	require.NoError(t, err)
	assert.Equal(t, store.EmailSending, row.Status)

	out, err := emSend(t, a, in)
	require.NoError(t, err)
	assert.Equal(t, activities.EmailStatusSent, out.Status)
	var keys []string
	for _, r := range f.requests() {
		keys = append(keys, r.idempotencyKey)
	}
	assert.Equal(t, []string{in.IdempotencyKey, in.IdempotencyKey}, keys)
	assert.Len(t, f.emails(), 1)
}

// TestSendToASuppressedAddressIsSkippedAndRecorded: nothing reaches
// Resend; the row is suppressed and says why.
func TestSendToASuppressedAddressIsSkippedAndRecorded(t *testing.T) {
	f := newFakeResend(t)
	st := testenv.Store(t)
	a := f.emailActivities(t, st)
	require.NoError(t, st.Suppress(t.Context(), store.Suppression{Address: "ADA@example.com", Reason: store.SuppressedBounce,
		Detail: "Permanent/General: mailbox does not exist"}))

	out, err := emSend(t, a, receiptInput("ada@example.com"))
	require.NoError(t, err)
	assert.Equal(t, activities.SendEmailOutput{Status: activities.EmailStatusSuppressed}, *out)
	assert.Empty(t, f.requests())
	row, err := st.EmailByKey(t.Context(), "order-confirmation/o-42/send-receipt")
	require.NoError(t, err)
	assert.Equal(t, store.EmailSuppressed, row.Status)
	assert.Equal(t, "address suppressed after a bounce: Permanent/General: mailbox does not exist", row.StatusDetail)
	assert.Empty(t, row.ProviderID)
}

// TestSendInConsoleMode records the call instead of sending it.
func TestSendInConsoleMode(t *testing.T) {
	st := testenv.Store(t)
	rec := &rsRecorder{}
	a := &activities.EmailActivities{Resend: &activities.ResendActivities{Console: true, Recorder: rec}, Store: st}
	in := receiptInput("ada@example.com")
	out, err := emSend(t, a, in)
	require.NoError(t, err)
	assert.Equal(t, activities.SendEmailOutput{EmailID: "console:" + in.IdempotencyKey, Status: activities.EmailStatusSent}, *out)
	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodPost, calls[0].Method)
	assert.Equal(t, "/emails", calls[0].Path)
	assert.Contains(t, string(calls[0].Body), `"subject":"Your receipt for order o-42"`)
	row, err := st.EmailByKey(t.Context(), in.IdempotencyKey)
	require.NoError(t, err)
	assert.True(t, row.Console)
	assert.Equal(t, store.EmailSent, row.Status)
}

// TestSendErrorsAreClassified: what can never be sent fails at once, what
// may pass later is retried.
func TestSendErrorsAreClassified(t *testing.T) {
	f := newFakeResend(t)
	st := testenv.Store(t)
	a := f.emailActivities(t, st)
	noFrom := *a
	noFrom.From = ""
	withKey := func(in activities.SendEmailInput, key string) activities.SendEmailInput {
		in.IdempotencyKey = key
		return in
	}
	unknown := withKey(receiptInput("ada@example.com"), "k-unknown")
	unknown.Template = "invoice"
	incomplete := withKey(receiptInput("ada@example.com"), "k-incomplete")
	delete(incomplete.Data, "lines")
	cases := []struct {
		name      string
		acts      *activities.EmailActivities
		in        activities.SendEmailInput
		canned    *rsCanned
		errType   string
		retryable bool
	}{
		{"unknown template", a, unknown, nil, "ResendInvalidRequest", false},
		{"data the template needs is missing", a, incomplete, nil, "ResendInvalidRequest", false},
		{"not an address", a, withKey(receiptInput("ada at example"), "k-addr"), nil, "ResendInvalidRequest", false},
		{"no idempotency key", a, withKey(receiptInput("ada@example.com"), ""), nil, "ResendInvalidRequest", false},
		{"no sender configured", &noFrom, withKey(receiptInput("ada@example.com"), "k-from"), nil, "ResendInvalidRequest", false},
		{"resend refuses the email", a, withKey(receiptInput("ada@example.com"), "k-422"),
			&rsCanned{status: 422, body: rsError(422, "validation_error", "Invalid `to` field.")}, "ResendInvalidRequest", false},
		{"unverified domain", a, withKey(receiptInput("ada@example.com"), "k-403"),
			&rsCanned{status: 403, body: rsError(403, "validation_error", "The example.com domain is not verified.")}, "ResendAuthFailed", false},
		{"rate limited", a, withKey(receiptInput("ada@example.com"), "k-429"),
			&rsCanned{status: 429, header: map[string]string{"retry-after": "2"}, body: rsError(429, "rate_limit_exceeded", "Too many requests.")}, "ResendRateLimited", true},
		{"daily quota used up", a, withKey(receiptInput("ada@example.com"), "k-quota"),
			&rsCanned{status: 429, body: rsError(429, "daily_quota_exceeded", "Quota exceeded.")}, "ResendQuotaExceeded", false},
		{"same key, another payload", a, withKey(receiptInput("ada@example.com"), "k-409"),
			&rsCanned{status: 409, body: rsError(409, "invalid_idempotent_request", "Different payload.")}, "ResendConflict", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.canned != nil {
				f.failNext("POST /emails", *c.canned)
			}
			_, err := emSend(t, c.acts, c.in)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			assert.Equal(t, c.errType, appErr.Type(), "%v", err)
			assert.Equal(t, !c.retryable, appErr.NonRetryable(), "%v", err)
		})
	}

	// One key reused for another recipient is a bug in the caller.
	_, err := emSend(t, a, receiptInput("ada@example.com"))
	require.NoError(t, err)
	_, err = emSend(t, a, receiptInput("bob@example.com"))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, "ResendConflict", appErr.Type())
}

// TestSendEmailRequestMatchesOpenAPI: the send is an operation of Resend's
// published spec, and the check can fail.
func TestSendEmailRequestMatchesOpenAPI(t *testing.T) {
	spec := &resendSpec{openapicheck.Require(t, openapicheck.Resend)}
	f := newFakeResend(t)
	require.NotNil(t, f.spec)
	_, err := emSend(t, f.emailActivities(t, testenv.Store(t)), receiptInput("ada@example.com"))
	require.NoError(t, err)
	assert.Contains(t, routePatterns(f.requests()), "POST /emails")

	post := func(body string) error {
		r := httptest.NewRequest(http.MethodPost, "/emails", nil)
		r.Header.Set("Content-Type", "application/json")
		return spec.validateRequest(r, []byte(body))
	}
	require.NoError(t, post(`{"from":"a@example.com","to":["b@example.com"],"subject":"s","text":"t","tags":[{"name":"template","value":"x"}]}`))
	assert.Error(t, post(`{"from":"a@example.com","to":["b@example.com"],"text":"t"}`), "an email without a subject must fail")
	assert.Error(t, post(`{"from":"a@example.com","to":[],"subject":"s"}`), "an email to nobody must fail")
}

// TestLoadReceipt reads the order's lines and customer, and its template
// data renders.
func TestLoadReceipt(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "cus_r", Email: "ada@example.com", Name: "Ada"}))
	for _, p := range []store.Product{{SKU: "mug", Name: "Mug", PriceCents: 1500}, {SKU: "tea", Name: "Tea", PriceCents: 1250}} {
		require.NoError(t, st.UpsertProduct(ctx, p))
	}
	require.NoError(t, st.InsertOrder(ctx, store.Order{ID: "o-r", CustomerID: "cus_r", AmountCents: 4250, Currency: "eur"}))
	require.NoError(t, st.InsertOrderItem(ctx, "o-r", "tea", 1, 1250))
	require.NoError(t, st.InsertOrderItem(ctx, "o-r", "mug", 2, 1500))

	a := &activities.ReceiptActivities{Store: st}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.LoadReceipt, activities.LoadReceiptInput{OrderID: "o-r"})
	require.NoError(t, err)
	var r activities.Receipt
	require.NoError(t, val.Get(&r))
	assert.Equal(t, activities.Receipt{OrderID: "o-r", CustomerID: "cus_r", Email: "ada@example.com", CustomerName: "Ada",
		AmountCents: 4250, Currency: "eur", Lines: []activities.ReceiptLine{
			{SKU: "mug", Name: "Mug", Quantity: 2, UnitPriceCents: 1500, TotalCents: 3000},
			{SKU: "tea", Name: "Tea", Quantity: 1, UnitPriceCents: 1250, TotalCents: 1250},
		}}, r)

	_, err = env.ExecuteActivity(a.LoadReceipt, activities.LoadReceiptInput{OrderID: "o-missing"})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, "StoreNotFound", appErr.Type())
	assert.True(t, appErr.NonRetryable())
}

// rsRecorder keeps console mode's calls.
type rsRecorder struct{ calls []activities.ResendCall }

func (r *rsRecorder) Record(_ context.Context, call activities.ResendCall) error {
	if call.Path == "" {
		return errors.New("no path")
	}
	r.calls = append(r.calls, call)
	return nil
}

func (r *rsRecorder) all() []activities.ResendCall {
	return append([]activities.ResendCall(nil), r.calls...)
}

// flakyRecorder is the database, except that recording Resend's answer
// fails once, as when PostgreSQL goes away after Resend accepted the email.
type flakyRecorder struct {
	*store.Store
	failures int
}

func (r *flakyRecorder) MarkEmailSent(ctx context.Context, key, providerID string, console bool) (*store.Email, error) {
	if r.failures > 0 {
		r.failures--
		return nil, errors.New("connection reset by peer")
	}
	return r.Store.MarkEmailSent(ctx, key, providerID, console)
}

// TestSendRetriedAfterResendAcceptedSendsOnce: Resend accepted the email
// but its id could not be recorded; the retry sends the same
// Idempotency-Key and payload, Resend answers with the email it already
// accepted, and that id is recorded: one email reaches the customer.
func TestSendRetriedAfterResendAcceptedSendsOnce(t *testing.T) {
	f := newFakeResend(t)
	st := testenv.Store(t)
	a := f.emailActivities(t, st)
	a.Store = &flakyRecorder{Store: st, failures: 1}
	in := receiptInput("ada@example.com")

	_, err := emSend(t, a, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.False(t, appErr.NonRetryable(), "a database error is retried: %v", err)
	require.Len(t, f.emails(), 1, "Resend has the email")
	row, err := st.EmailByKey(t.Context(), in.IdempotencyKey)
	require.NoError(t, err)
	assert.Equal(t, store.EmailSending, row.Status, "its id is not recorded yet")

	out, err := emSend(t, a, in)
	require.NoError(t, err)
	sent := f.emails()
	require.Len(t, sent, 1, "the retry sent nothing new")
	assert.Equal(t, activities.SendEmailOutput{EmailID: sent[0].id, Status: activities.EmailStatusSent}, *out)
	assert.Len(t, f.requests(), 2, "both attempts reached Resend, under one key")
	row, err = st.EmailByKey(t.Context(), in.IdempotencyKey)
	require.NoError(t, err)
	assert.Equal(t, sent[0].id, row.ProviderID)
	assert.Equal(t, store.EmailSent, row.Status)
}

// TestSendWelcomeAsUserLifecycleBuildsIt: the welcome email in the shape
// the user lifecycle sends it (template by name, the user's address and
// name, a key of its workflow ID and step, the Clerk user as business key).
func TestSendWelcomeAsUserLifecycleBuildsIt(t *testing.T) {
	f := newFakeResend(t)
	st := testenv.Store(t)
	in := activities.SendEmailInput{Template: "welcome", To: "grace@example.com",
		Data:           map[string]any{"name": "Grace", "email": "grace@example.com"},
		IdempotencyKey: "user/user_2abc/send-welcome", BusinessKey: "user_2abc"}
	out, err := emSend(t, f.emailActivities(t, st), in)
	require.NoError(t, err)
	sent := f.emails()
	require.Len(t, sent, 1)
	assert.Equal(t, activities.SendEmailOutput{EmailID: sent[0].id, Status: activities.EmailStatusSent}, *out)
	assert.Equal(t, "Welcome, Grace", sent[0].body["subject"])
	assert.Contains(t, sent[0].body["tags"], map[string]any{"name": "business_key", "value": "user_2abc"})
	row, err := st.EmailByKey(t.Context(), in.IdempotencyKey)
	require.NoError(t, err)
	assert.Equal(t, []string{"welcome", "v1", "user_2abc"}, []string{row.Template, row.TemplateVersion, row.BusinessKey})
}
