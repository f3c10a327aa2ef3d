package stripebalance_test

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/testsupport/stripebalance"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// clock is a settable clock for the server.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newServer(t *testing.T) (*stripebalance.Server, *clock, *client.API) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := stripebalance.New(t, clk.Now)
	return s, clk, providers.NewStripeClient("sk_test_standin", s.URL, s.Client())
}

func credit(key string, amount int64, metadata map[string]string) *stripe.CustomerBalanceTransactionParams {
	p := &stripe.CustomerBalanceTransactionParams{Customer: stripe.String("cus_1"), Amount: stripe.Int64(amount),
		Currency: stripe.String("eur"), Metadata: metadata}
	if key != "" {
		p.SetIdempotencyKey(key)
	}
	return p
}

func TestKeysAreReplayedThenForgottenAfterADay(t *testing.T) {
	s, clk, sc := newServer(t)
	first, err := sc.CustomerBalanceTransactions.New(credit("k1", -500, map[string]string{"step": "credit"}))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"step": "credit"}, first.Metadata)

	clk.Add(23 * time.Hour)
	again, err := sc.CustomerBalanceTransactions.New(credit("k1", -500, map[string]string{"step": "credit"}))
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID, "inside the window the key replays the first answer")
	assert.Equal(t, "true", again.LastResponse.Header.Get("Idempotent-Replayed"))

	_, err = sc.CustomerBalanceTransactions.New(credit("k1", -700, nil))
	var se *stripe.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, stripe.ErrorTypeIdempotency, se.Type, "the same key with other parameters")

	clk.Add(2 * time.Hour)
	later, err := sc.CustomerBalanceTransactions.New(credit("k1", -500, map[string]string{"step": "credit"}))
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, later.ID, "after 24 hours the key is forgotten and the money moves again")
	assert.Len(t, s.Transactions(), 2)
}

func TestStored500IsReplayed(t *testing.T) {
	s, _, sc := newServer(t)
	s.FailNext(stripebalance.Stored500)
	for i, replayed := range []string{"", "true"} {
		_, err := sc.CustomerBalanceTransactions.New(credit("k500", -500, nil))
		var se *stripe.Error
		require.ErrorAs(t, err, &se, "request %d", i)
		assert.Equal(t, http.StatusInternalServerError, se.HTTPStatusCode)
		assert.Equal(t, replayed, se.LastResponse.Header.Get("Idempotent-Replayed"), "request %d", i)
	}
	txn, err := sc.CustomerBalanceTransactions.New(credit("k500-fresh", -500, nil))
	require.NoError(t, err, "a fresh key gets a new answer")
	assert.Equal(t, []string{txn.ID}, ids(s.Transactions()))
}

func TestLandedLostCreatesButAnswersNothing(t *testing.T) {
	s, _, sc := newServer(t)
	s.FailNext(stripebalance.LandedLost)
	_, err := sc.CustomerBalanceTransactions.New(credit("klost", -500, nil))
	require.Error(t, err)
	var se *stripe.Error
	assert.False(t, errorAs(err, &se), "no answer was read: %v", err)
	require.Len(t, s.Transactions(), 1)
	again, err := sc.CustomerBalanceTransactions.New(credit("klost", -500, nil))
	require.NoError(t, err)
	assert.Equal(t, s.Transactions()[0].ID, again.ID, "the stored answer")
	assert.Equal(t, []stripebalance.Request{
		{Method: http.MethodPost, Customer: "cus_1", Key: "klost"},
		{Method: http.MethodPost, Customer: "cus_1", Key: "klost", Status: 200, Replayed: true},
	}, s.Requests())
}

func TestListsNewestFirstInPages(t *testing.T) {
	s, clk, sc := newServer(t)
	for i := range 150 {
		clk.Add(time.Second)
		_, err := sc.CustomerBalanceTransactions.New(credit(fmt.Sprint("k", i), int64(-i-1), nil))
		require.NoError(t, err)
	}
	params := &stripe.CustomerBalanceTransactionListParams{Customer: stripe.String("cus_1")}
	params.Limit = stripe.Int64(100)
	it := sc.CustomerBalanceTransactions.List(params)
	var got []int64
	for it.Next() {
		got = append(got, it.CustomerBalanceTransaction().Amount)
	}
	require.NoError(t, it.Err())
	require.Len(t, got, 150)
	assert.Equal(t, int64(-150), got[0], "newest first")
	assert.Equal(t, int64(-1), got[149])
	lists := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodGet {
			lists++
		}
	}
	assert.Equal(t, 2, lists, "two pages of at most 100")

	other := &stripe.CustomerBalanceTransactionListParams{Customer: stripe.String("cus_other")}
	it = sc.CustomerBalanceTransactions.List(other)
	assert.False(t, it.Next(), "another customer's list is empty")
	require.NoError(t, it.Err())
}

func TestOutage(t *testing.T) {
	s, _, sc := newServer(t)
	s.SetDown(true)
	_, err := sc.CustomerBalanceTransactions.New(credit("kdown", -500, nil))
	var se *stripe.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, se.HTTPStatusCode)
	s.SetDown(false)
	_, err = sc.CustomerBalanceTransactions.New(credit("kdown", -500, nil))
	require.NoError(t, err, "an outage's 503 is not stored under the key")
}

func ids(txns []stripebalance.Transaction) []string {
	out := make([]string, 0, len(txns))
	for _, t := range txns {
		out = append(out, t.ID)
	}
	return out
}

func errorAs(err error, target **stripe.Error) bool {
	se, ok := err.(*stripe.Error)
	if ok {
		*target = se
	}
	return ok
}
