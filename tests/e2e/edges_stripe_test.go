package e2e_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// How many timestamps a Stripe-Signature may carry: one.

// TestStripeSignatureWithMoreThanOneTimestampIsRefused: stripe-go verifies
// with the last t= of a Stripe-Signature, so a header with two could pass
// a check that reads another one; such a header is refused outright.
func TestStripeSignatureWithMoreThanOneTimestampIsRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	ev := stripeEvent("evt_two_t", "payment_intent.succeeded", "o-two-t")
	genuine := sign(ev, stripeSecret, now)
	ts := func(at time.Time) string { return "t=" + strconv.FormatInt(at.Unix(), 10) }
	denies := map[string]string{
		"the same t= twice":                       genuine + "," + ts(now),
		"an honest t= before a genuine signature": ts(now) + "," + genuine,
		"an honest t= before a future-dated one":  ts(now) + "," + sign(ev, stripeSecret, now.Add(time.Hour)),
		"an old t= after the signature":           genuine + "," + ts(now.Add(-time.Hour)),
		"a future t= after the signature":         genuine + "," + ts(now.Add(time.Hour)),
	}
	for name, header := range denies {
		t.Run("deny "+name, func(t *testing.T) {
			status, body := f.postStripe(ev, header)
			assert.Equal(t, http.StatusBadRequest, status, "body: %v", body)
			assert.Equal(t, "bad_signature", errorCode(body))
		})
	}
	total, _ := f.inboxRows()
	assert.Zero(t, total, "a refused delivery stores nothing")

	t.Run("allow one t= with one signature", func(t *testing.T) {
		status, body := f.postStripe(ev, genuine)
		require.Equal(t, http.StatusOK, status, "body: %v", body)
	})
	t.Run("allow one t= with two signatures (a secret being rolled)", func(t *testing.T) {
		ev2 := stripeEvent("evt_rolled", "payment_intent.succeeded", "o-rolled")
		other := sign(ev2, "whsec_rolled_out", now)
		oldSig := other[strings.Index(other, ",v1=")+1:]
		status, body := f.postStripe(ev2, sign(ev2, stripeSecret, now)+","+oldSig)
		require.Equal(t, http.StatusOK, status, "body: %v", body)
	})
	total, _ = f.inboxRows()
	assert.Equal(t, 2, total)
}
