// Package webhooks verifies and accepts provider deliveries: Stripe's (with
// stripe-go's own signature check), Clerk's and Resend's (both signed by
// Svix, verified by one piece of code with svix's library, svix.go). A
// delivery is read up to the size limit, its signature and timestamp
// checked, and the verified event handed to the inbox, which commits it
// and works out its route; the provider gets its 200 as soon as that
// commit is durable, and never waits for Temporal.
//
// webhooks may import inbox, contract, config and internal/ libraries;
// never api, worker, workflows or activities.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
)

// timeout bounds the PostgreSQL work of one delivery (reading the signing
// secrets, routing, the inbox commit), so a hanging database gets the
// provider a 503 and a retry rather than a request held until it gives up.
const timeout = 10 * time.Second

// Inbox is where accepted events go (inbox.Store implements it).
type Inbox interface {
	Insert(ctx context.Context, e inbox.Event) (bool, error)
}

// Poker wakes the dispatcher when a new event is committed
// (inbox.Dispatcher implements it).
type Poker interface {
	Poke()
}

// Deps are what the webhook endpoints need; every field is required unless
// noted.
type Deps struct {
	Logger *slog.Logger
	// Registry receives crmflow_webhooks_total.
	Registry prometheus.Registerer
	Inbox    Inbox
	// Dispatcher, when set, is poked after each new event.
	Dispatcher Poker
	// Secrets, when set, returns the signing secrets valid now for
	// "stripe_webhook", "clerk_webhook" or "resend_webhook" (from the
	// credential store: during a rotation both the new and the retiring
	// secret verify). Without it the static secrets in Options are used.
	Secrets func(ctx context.Context, provider string) ([]string, error)
	// Proofs, when set, tell a rotation that a genuine delivery verified
	// with the signing secret an operator submitted (see Proofs).
	Proofs  *Proofs
	Options Options
}

// Options are the endpoints' static secrets and limits.
type Options struct {
	StripeSecret string
	// ClerkSecret is the Svix signing secret (whsec_ + base64) of Clerk.
	ClerkSecret string
	// ResendSecret is the Svix signing secret of Resend's webhook endpoint.
	ResendSecret string
	// Tolerance is how far a signature's timestamp may be from now.
	Tolerance time.Duration
	// MaxBodyBytes bounds a webhook body; larger gets 413.
	MaxBodyBytes int64
}

// Handler serves the webhook endpoints.
type Handler struct {
	deps     Deps
	outcomes *prometheus.CounterVec
}

// New builds the handler and registers its metric.
func New(deps Deps) *Handler {
	h := &Handler{deps: deps, outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmflow_webhooks_total",
		Help: "Webhook deliveries by provider and outcome (accepted, duplicate, ignored, unavailable, rejected_<reason>).",
	}, []string{"provider", "outcome"})}
	deps.Registry.MustRegister(h.outcomes)
	return h
}

// Register adds the webhook routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /webhooks/stripe", httpserver.Bounded(timeout, http.HandlerFunc(h.stripe)))
	mux.Handle("POST /webhooks/clerk", httpserver.Bounded(timeout, http.HandlerFunc(h.clerk)))
	mux.Handle("POST /webhooks/resend", httpserver.Bounded(timeout, http.HandlerFunc(h.resend)))
}

// secrets are the signing secrets of provider valid now.
func (h *Handler) secrets(ctx context.Context, provider, static string) ([]string, error) {
	if h.deps.Secrets == nil {
		if static == "" {
			return nil, nil
		}
		return []string{static}, nil
	}
	return h.deps.Secrets(ctx, provider)
}

// rejection is a delivery refused before anything is stored.
type rejection struct {
	status  int
	code    string
	message string
}

// readBody reads at most the configured limit of a provider's delivery;
// larger bodies get 413 and nothing is stored. Both refusals count as
// rejected deliveries of the provider.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, provider string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.deps.Options.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.reject(w, provider, rejection{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("body is larger than %d bytes", h.deps.Options.MaxBodyBytes)})
		return nil, false
	case err != nil:
		h.reject(w, provider, rejection{http.StatusBadRequest, "unreadable", "could not read the body"})
		return nil, false
	}
	return body, true
}

func (h *Handler) reject(w http.ResponseWriter, provider string, rj rejection) {
	h.outcomes.WithLabelValues(provider, "rejected_"+rj.code).Inc()
	httpserver.WriteError(w, rj.status, rj.code, rj.message)
}

// unavailable answers 503 when PostgreSQL fails, so the provider retries.
// A body whose text PostgreSQL refuses is no outage: it is refused with 400.
func (h *Handler) unavailable(w http.ResponseWriter, provider, eventID string, err error) {
	if store.IsDataException(err) {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "body holds text the inbox cannot store"})
		return
	}
	h.deps.Logger.Error("Inbox commit failed; provider will retry", "provider", provider, "eventID", eventID, "error", err)
	h.outcomes.WithLabelValues(provider, "unavailable").Inc()
	httpserver.WriteError(w, http.StatusServiceUnavailable, "unavailable", "could not store the event; retry later")
}

// accept commits a verified event to the inbox. PostgreSQL unreachable means
// 503, so the provider retries later and nothing is lost.
func (h *Handler) accept(w http.ResponseWriter, r *http.Request, ev inbox.Event) {
	ev.TraceParent = inbox.TraceParentOf(r.Context())
	inserted, err := h.deps.Inbox.Insert(r.Context(), ev)
	if err != nil {
		h.unavailable(w, ev.Source, ev.EventID, err)
		return
	}
	outcome := "accepted"
	switch {
	case !inserted:
		outcome = "duplicate"
	case ev.Ignored != "":
		outcome = "ignored"
	case h.deps.Dispatcher != nil:
		h.deps.Dispatcher.Poke()
	}
	h.outcomes.WithLabelValues(ev.Source, outcome).Inc()
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": !inserted})
}
