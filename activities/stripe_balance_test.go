package activities_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/testsupport/stripebalance"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// settableClock is the stand-in Stripe's clock, moved on by the tests.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *settableClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lookingCredit is a referral credit that looks before it creates, as the
// workflow sends it.
func lookingCredit(key string, since time.Time) activities.CreditCustomerBalanceInput {
	in := validCredit()
	in.IdempotencyKey = key
	in.LookFor = &activities.BalanceMatch{
		Metadata: map[string]string{"crmflow_referral": "ref-1", "crmflow_step": "credit"},
		Legacy:   map[string]string{"referral_id": "ref-1"},
		Since:    since,
	}
	return in
}

func standIn(t *testing.T) (*stripebalance.Server, *settableClock, *activities.StripeActivities) {
	clk := &settableClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := stripebalance.New(t, clk.Now)
	return s, clk, &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient(stripeTestKey, s.URL, s.Client())}
}

func runCredit(t *testing.T, acts *activities.StripeActivities, in activities.CreditCustomerBalanceInput) (*activities.CreditCustomerBalanceOutput, error) {
	t.Helper()
	val, err := stripeEnv(t, acts).ExecuteActivity(acts.CreditCustomerBalance, in)
	if err != nil {
		return nil, err
	}
	var out activities.CreditCustomerBalanceOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

// TestCreditLooksBeforeItCreatesAgainstStripeMock: the look-up's list and
// the create, with the step's metadata, are requests Stripe's spec accepts
// (stripe-mock answers 400 otherwise), in that order.
func TestCreditLooksBeforeItCreatesAgainstStripeMock(t *testing.T) {
	rec := &recordingTransport{}
	acts := &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient(stripeTestKey, testenv.StripeMockURL(t), &http.Client{Transport: rec})}
	out, err := runCredit(t, acts, lookingCredit("referral-reward/ref-1/credit/1", time.Now()))
	require.NoError(t, err)
	assert.False(t, out.Found, "stripe-mock's fixture carries no step metadata")
	assert.Equal(t, "referral-reward/ref-1/credit/1", out.IdempotencyKey)

	reqs := rec.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, http.MethodGet, reqs[0].method)
	assert.Equal(t, "/v1/customers/cus_referrer1/balance_transactions", reqs[0].path)
	assert.Empty(t, reqs[0].header.Get("Idempotency-Key"), "a list needs no key")
	assert.Equal(t, http.MethodPost, reqs[1].method)
	assert.Equal(t, "referral-reward/ref-1/credit/1", reqs[1].header.Get("Idempotency-Key"))
	form, err := url.ParseQuery(reqs[1].body)
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"amount": {"-500"}, "currency": {"usd"}, "description": {"Referral reward"},
		"metadata[referral_id]": {"ref-1"}, "metadata[crmflow_referral]": {"ref-1"}, "metadata[crmflow_step]": {"credit"},
	}, form)
}

// TestLandedCreditIsFoundAfterTheKeyIsForgotten: the first attempt's credit
// landed but its answer was lost; a retry 25 hours later, when Stripe has
// forgotten the key and would credit again, finds it and creates nothing.
func TestLandedCreditIsFoundAfterTheKeyIsForgotten(t *testing.T) {
	s, clk, acts := standIn(t)
	since := clk.Now()
	s.FailNext(stripebalance.LandedLost)
	_, err := runCredit(t, acts, lookingCredit("referral-reward/ref-1/credit/1", since))
	requireStripeError(t, err, "StripeUnavailable", false)
	require.Len(t, s.Transactions(), 1, "the credit landed")

	clk.Add(25 * time.Hour)
	out, err := runCredit(t, acts, lookingCredit("referral-reward/ref-1/credit/1", since))
	require.NoError(t, err)
	assert.True(t, out.Found)
	assert.Equal(t, s.Transactions()[0].ID, out.BalanceTransactionID)
	assert.Empty(t, out.IdempotencyKey, "nothing was sent with a key")
	assert.Len(t, s.Transactions(), 1, "no second credit")
	assert.Len(t, s.Creates(), 1)
}

// TestStored500NeedsAFreshKey: Stripe stored its 500 under the key. The
// retry with the key looks first (nothing landed), then gets the stored 500
// again, marked replayed: a permanent StripeStoredFailure that names the
// key. A fresh key credits once.
func TestStored500NeedsAFreshKey(t *testing.T) {
	s, clk, acts := standIn(t)
	since := clk.Now()
	s.FailNext(stripebalance.Stored500)
	_, err := runCredit(t, acts, lookingCredit("referral-reward/ref-1/credit/1", since))
	requireStripeError(t, err, "StripeUnavailable", false)
	assert.Equal(t, activities.StripeKeyAnswer{IdempotencyKey: "referral-reward/ref-1/credit/1", Status: 500}, keyAnswer(t, err))

	_, err = runCredit(t, acts, lookingCredit("referral-reward/ref-1/credit/1", since))
	requireStripeError(t, err, "StripeStoredFailure", true)
	assert.Equal(t, activities.StripeKeyAnswer{IdempotencyKey: "referral-reward/ref-1/credit/1", Status: 500, Replayed: true}, keyAnswer(t, err))

	out, err := runCredit(t, acts, lookingCredit("referral-reward/ref-1/credit/2", since))
	require.NoError(t, err)
	assert.False(t, out.Found)
	assert.Equal(t, "referral-reward/ref-1/credit/2", out.IdempotencyKey)
	assert.Len(t, s.Transactions(), 1)
}

// TestLookUpMatchesOnlyTheStep: a clawback (debit) or another referral's
// credit is not the step's credit; a credit made before steps carried
// their name (referral_id only, a credit in the same currency) is.
func TestLookUpMatchesOnlyTheStep(t *testing.T) {
	s, clk, acts := standIn(t)
	since := clk.Now()
	other := lookingCredit("other", since)
	other.LookFor.Metadata = map[string]string{"crmflow_referral": "ref-1", "crmflow_step": "clawback"}
	val, err := stripeEnv(t, acts).ExecuteActivity(acts.DebitCustomerBalance, other)
	require.NoError(t, err, "a clawback of ref-1")
	require.NoError(t, val.Get(new(activities.CreditCustomerBalanceOutput)))
	another := lookingCredit("another", since)
	another.Metadata = map[string]string{"referral_id": "ref-2"}
	another.LookFor.Metadata = map[string]string{"crmflow_referral": "ref-2", "crmflow_step": "credit"}
	_, err = runCredit(t, acts, another)
	require.NoError(t, err, "ref-2's credit")

	out, err := runCredit(t, acts, lookingCredit("mine", since))
	require.NoError(t, err)
	assert.False(t, out.Found, "neither is ref-1's credit")
	assert.Len(t, s.Transactions(), 3)

	// A legacy credit: made without the look-up, as runs before it did.
	legacy := validCredit()
	legacy.CustomerID = "cus_legacy"
	_, err = runCredit(t, acts, legacy)
	require.NoError(t, err)
	clk.Add(time.Minute)
	in := lookingCredit("upgraded", since)
	in.CustomerID = "cus_legacy"
	out, err = runCredit(t, acts, in)
	require.NoError(t, err)
	assert.True(t, out.Found, "the legacy credit of ref-1 is the step's")
	assert.Len(t, s.Transactions(), 4)
}

// TestLookUpStopsAtSince: the list is read back to the step's first run
// (less an hour for the clocks), not through the customer's whole history.
func TestLookUpStopsAtSince(t *testing.T) {
	s, clk, acts := standIn(t)
	made := clk.Now()
	_, err := runCredit(t, acts, lookingCredit("k-old", made))
	require.NoError(t, err)
	clk.Add(3 * time.Hour)
	out, err := runCredit(t, acts, lookingCredit("k-new", made.Add(59*time.Minute)))
	require.NoError(t, err)
	assert.True(t, out.Found, "within the hour's margin")
	out, err = runCredit(t, acts, lookingCredit("k-new", made.Add(61*time.Minute)))
	require.NoError(t, err)
	assert.False(t, out.Found, "older than Since less an hour: not read")
	assert.Len(t, s.Transactions(), 2)
}

func TestLookUpNeedsStepMetadata(t *testing.T) {
	_, clk, acts := standIn(t)
	in := lookingCredit("k", clk.Now())
	in.LookFor.Metadata = nil
	_, err := runCredit(t, acts, in)
	requireStripeError(t, err, "StripeInvalidRequest", true)
	in.LookFor.Metadata = map[string]string{strings.Repeat("k", 41): "v"}
	_, err = runCredit(t, acts, in)
	requireStripeError(t, err, "StripeInvalidRequest", true)
}

// keyAnswer is the StripeKeyAnswer err carries.
func keyAnswer(t *testing.T, err error) activities.StripeKeyAnswer {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	var ans activities.StripeKeyAnswer
	require.NoError(t, appErr.Details(&ans), "error: %v", err)
	return ans
}
