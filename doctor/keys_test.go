package doctor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/internal/testsupport/doctortest"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestCheckKey makes each provider's key check against a stand-in that
// answers like the real API (stripe-mock for Stripe) with good, bad and
// limited keys, and checks the call that was made.
func TestCheckKey(t *testing.T) {
	peers := doctortest.NewPeers(t)
	cfg := &config.Config{Stripe: config.StripeConfig{APIURL: testenv.StripeMockURL(t)}}
	peers.Configure(cfg)
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, c := range []struct {
		provider, key  string
		valid, limited bool
		status, reason string
	}{
		{"stripe", doctortest.StripeKey, true, false, "200 OK", ""},
		{"stripe", "not-a-stripe-key", false, false, "401 Unauthorized", "invalid_request_error"},
		{"knock", doctortest.KnockKey, true, false, "404 Not Found", ""},
		{"knock", "sk_test_revoked", false, false, "401 Unauthorized", "authentication_required"},
		{"simplelogin", doctortest.SimpleLoginKey, true, false, "200 OK", ""},
		{"simplelogin", "wrong-key", false, false, "401 Unauthorized", "Wrong api key"},
		{"resend", doctortest.ResendKey, true, false, "200 OK", ""},
		{"resend", doctortest.ResendSendingKey, true, true, "401 Unauthorized", "restricted_api_key: a sending-only key; key rotation needs full_access to create and delete keys"},
		{"resend", "re_unknown", false, false, "403 Forbidden", "invalid_api_key"},
	} {
		v, err := doctor.CheckKey(context.Background(), hc, cfg, c.provider, c.key)
		require.NoError(t, err, "%s %s", c.provider, c.key)
		assert.Equal(t, c.valid, v.Valid, "%s %s", c.provider, c.key)
		assert.Equal(t, c.limited, v.Limited, "%s %s", c.provider, c.key)
		assert.Equal(t, c.status, v.Status, "%s %s", c.provider, c.key)
		assert.Equal(t, c.reason, v.Reason, "%s %s", c.provider, c.key)
		assert.NotContains(t, v.Reason, c.key, "a verdict never quotes the key")
	}

	var seen []string
	for _, r := range peers.Requests() {
		seen = append(seen, r.Provider+" "+r.Method+" "+r.Path+"?"+r.Query+" "+r.Auth)
	}
	assert.Equal(t, []string{
		"knock GET /v1/users/crmflow-key-check? Bearer " + doctortest.KnockKey,
		"knock GET /v1/users/crmflow-key-check? Bearer sk_test_revoked",
		"simplelogin GET /api/user_info? " + doctortest.SimpleLoginKey,
		"simplelogin GET /api/user_info? wrong-key",
		"resend GET /api-keys?limit=1 Bearer " + doctortest.ResendKey,
		"resend GET /api-keys?limit=1 Bearer " + doctortest.ResendSendingKey,
		"resend GET /api-keys?limit=1 Bearer re_unknown",
	}, seen)
}

// TestCheckKeyNoVerdict: a provider that is down, or a URL that is not the
// provider's API, gives an error, not a verdict about the key, and the
// error does not quote the key either.
func TestCheckKeyNoVerdict(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A proxy that echoes what it got must not leak the key.
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(r.Header.Get("Authorization") + r.Header.Get("Authentication")))
	}))
	defer down.Close()
	peers := doctortest.NewPeers(t)
	hc := &http.Client{Timeout: 30 * time.Second}

	for _, provider := range []string{"stripe", "knock", "simplelogin", "resend"} {
		cfg := &config.Config{
			Stripe: config.StripeConfig{APIURL: down.URL}, Knock: config.ProviderConfig{APIURL: down.URL},
			SimpleLogin: config.ProviderConfig{APIURL: down.URL}, Resend: config.ResendConfig{APIURL: down.URL},
		}
		v, err := doctor.CheckKey(context.Background(), hc, cfg, provider, "sk_test_secret_value")
		require.Error(t, err, provider)
		assert.Equal(t, http.StatusServiceUnavailable, v.Code, provider)
		assert.False(t, v.Valid, provider)
		assert.Contains(t, err.Error(), "503", provider)
		assert.NotContains(t, err.Error(), "sk_test_secret_value", provider)
	}

	// knock.api_url with /v1 appended reaches Knock's router, not the
	// users endpoint: that is a configuration error, not a verdict.
	cfg := &config.Config{Knock: config.ProviderConfig{APIURL: peers.Knock.URL + "/v1"}}
	_, err := doctor.CheckKey(context.Background(), hc, cfg, "knock", doctortest.KnockKey)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "knock.api_url")

	_, err = doctor.CheckKey(context.Background(), hc, cfg, "nobody", "x")
	assert.Error(t, err)
}
