package webhooks

import (
	"context"
	"net/http"
	"time"
)

// webhookTimeout bounds the PostgreSQL work of one webhook delivery (reading
// the signing secrets, routing, the inbox commit). A database that hangs,
// rather than refusing connections, would otherwise hold the request until
// the provider gives up on it; with the bound the store call fails and the
// handler answers 503, so the provider retries.
const webhookTimeout = 10 * time.Second

// apiTimeout bounds a start-API request the same way; it is longer because
// a key submission waits on the provider's own check of the key.
const apiTimeout = 30 * time.Second

// bounded runs h with webhookTimeout on the request's context.
func bounded(h http.HandlerFunc) http.Handler { return boundedBy(webhookTimeout, h) }

// boundedBy runs h with timeout on the request's context.
func boundedBy(timeout time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
