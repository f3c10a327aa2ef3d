package stripeevents_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/stripeevents"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type page struct {
	Object string `json:"object"`
	Data   []struct {
		ID string `json:"id"`
	} `json:"data"`
	HasMore bool `json:"has_more"`
}

func get(t *testing.T, s *stripeevents.Server, query string) (int, page) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/events?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var p page
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, &p), "%s", body)
	}
	return resp.StatusCode, p
}

func ids(p page) []string {
	var out []string
	for _, d := range p.Data {
		out = append(out, d.ID)
	}
	return out
}

func TestListsLikeStripe(t *testing.T) {
	s := stripeevents.New(t, func() time.Time { return t0 })
	for i := range 5 {
		s.Add(t, stripeevents.PaymentIntentEvent(fmt.Sprintf("evt_%d", i), "payment_intent.succeeded",
			"o-1", "pi_1", 4200, "eur", t0.Add(time.Duration(i-5)*time.Minute)))
	}
	s.Add(t,
		stripeevents.ChargeRefundedEvent("evt_refund", "ch_1", "pi_1", 4200, 4200, "eur", t0.Add(-30*time.Second)),
		stripeevents.PaymentIntentEvent("evt_old", "payment_intent.succeeded", "o-2", "pi_2", 4200, "eur", t0.Add(-31*24*time.Hour)))

	status, p := get(t, s, "limit=2")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "list", p.Object)
	assert.Equal(t, []string{"evt_refund", "evt_4"}, ids(p), "newest first")
	assert.True(t, p.HasMore)

	_, p = get(t, s, "limit=2&starting_after=evt_4")
	assert.Equal(t, []string{"evt_3", "evt_2"}, ids(p))
	assert.True(t, p.HasMore)
	_, p = get(t, s, "limit=2&starting_after=evt_1")
	assert.Equal(t, []string{"evt_0"}, ids(p), "events beyond the 30-day horizon are not listed")
	assert.False(t, p.HasMore)
	_, p = get(t, s, "limit=2&ending_before=evt_1")
	assert.Equal(t, []string{"evt_3", "evt_2"}, ids(p), "the page just newer than the cursor")
	assert.True(t, p.HasMore)

	_, p = get(t, s, "types[0]=charge.refunded&types[1]=payment_intent.payment_failed")
	assert.Equal(t, []string{"evt_refund"}, ids(p))
	_, p = get(t, s, "types[0]=payment_intent.succeeded&limit=100")
	assert.Len(t, p.Data, 5)
	_, p = get(t, s, "type=charge.*")
	assert.Equal(t, []string{"evt_refund"}, ids(p))

	gte, lt := t0.Add(-4*time.Minute).Unix(), t0.Add(-2*time.Minute).Unix()
	_, p = get(t, s, fmt.Sprintf("created[gte]=%d&created[lt]=%d", gte, lt))
	assert.Equal(t, []string{"evt_2", "evt_1"}, ids(p), "created[gte] includes, created[lt] excludes")
	_, p = get(t, s, fmt.Sprintf("created=%d", gte))
	assert.Equal(t, []string{"evt_1"}, ids(p))

	status, _ = get(t, s, "starting_after=evt_nope")
	assert.Equal(t, http.StatusBadRequest, status, "an unknown cursor")
	status, _ = get(t, s, "limit=101")
	assert.Equal(t, http.StatusBadRequest, status)

	s.FailNext(http.StatusTooManyRequests)
	status, _ = get(t, s, "limit=1")
	assert.Equal(t, http.StatusTooManyRequests, status)
	status, _ = get(t, s, "limit=1")
	assert.Equal(t, http.StatusOK, status, "one failure only")

	reqs := s.Requests()
	require.NotEmpty(t, reqs)
	assert.Equal(t, 2, reqs[0].Limit)
	assert.Equal(t, []string{"charge.refunded", "payment_intent.payment_failed"}, reqs[4].Types)
}

// TestSpecChecksTheListRequest proves the check the server runs can fail:
// Stripe's spec accepts the list parameters crmflow sends, in the forms
// stripe-go writes them, and refuses malformed ones. (Unknown parameters,
// which the spec allows, the server refuses itself, as Stripe does.)
func TestSpecChecksTheListRequest(t *testing.T) {
	spec := openapicheck.LoadFile(t, openapicheck.Stripe, testenv.StripeSpecPath(t))
	check := func(query, auth string) error {
		r := httptest.NewRequest(http.MethodGet, "/v1/events?"+query, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return spec.ValidateRequest(r, nil)
	}
	good := "created[gte]=1700000000&created[lt]=1700003600&limit=100&starting_after=evt_1" +
		"&types[0]=payment_intent.succeeded&types[1]=charge.refunded"
	assert.NoError(t, check(good, "Bearer sk_test_123"))
	assert.Error(t, check("created[gte]=soon", "Bearer sk_test_123"), "a created bound that is not an integer")
	assert.Error(t, check("limit=ten", "Bearer sk_test_123"), "a limit that is not an integer")
	assert.Error(t, check(good, ""), "no credential")
}
