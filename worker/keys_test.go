package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
)

// TestKeyVerifier checks the real authenticated calls a human-in-the-loop
// rotation makes before it accepts a key.
func TestKeyVerifier(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path+" "+r.Header.Get("Authorization")+r.Header.Get("Authentication"))
		switch r.Header.Get("Authorization") + r.Header.Get("Authentication") {
		case "Bearer sk_good":
			w.WriteHeader(http.StatusNotFound) // the probe user need not exist
		case "sl_good":
			_, _ = w.Write([]byte(`{"name":"","email":"ops@example.com","is_premium":false}`))
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	cfg := &config.Config{Knock: config.ProviderConfig{APIURL: srv.URL}, SimpleLogin: config.ProviderConfig{APIURL: srv.URL}}
	verify := keyVerifier(cfg)
	for _, c := range []struct {
		provider, secret string
		valid            bool
	}{
		{"knock", "sk_good", true},
		{"knock", "sk_bad", false},
		{"simplelogin", "sl_good", true},
		{"simplelogin", "sl_bad", false},
		{"stripe_webhook", "whsec_x", true},
		{"stripe_webhook", "nope", false},
		{"clerk_webhook", config.DevClerkWebhookSecret, true},
		{"clerk_webhook", "whsec_!!notbase64", false},
	} {
		valid, reason, err := verify(context.Background(), c.provider, c.secret)
		require.NoError(t, err, c.provider)
		assert.Equal(t, c.valid, valid, "%s %s", c.provider, c.secret)
		assert.NotContains(t, reason, c.secret, "a reason never quotes the key")
	}
	assert.Contains(t, seen, "/v1/users/crmflow-key-check Bearer sk_good")
	assert.Contains(t, seen, "/api/user_info sl_good")
	_, _, err := verify(context.Background(), "nobody", "x")
	assert.Error(t, err)
}
