// Package webhooks is crmflow's HTTP server: provider webhook endpoints, the
// authenticated start API, and the health, readiness and metrics endpoints.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	svix "github.com/svix/svix-webhooks/go"
	"go.opentelemetry.io/otel/trace"

	"github.com/crmflow/crmflow/internal/doctor"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// Check is one dependency /readyz reports on.
type Check struct {
	// Name labels the check in the readiness answer, e.g. "postgres".
	Name string
	// Probe returns nil when the dependency is usable.
	Probe func(ctx context.Context) error
}

// Deps are what the server needs; every field is required unless noted.
type Deps struct {
	Logger *slog.Logger
	// Registry serves /metrics and receives the HTTP metrics.
	Registry *prometheus.Registry
	// Checks back /readyz.
	Checks []Check
	// Doctor, when set, runs crmflow doctor's checks for /readyz?verbose=1
	// (optional). Wrap it in doctor.Cached: the endpoint is unauthenticated
	// and every run calls every provider.
	Doctor func(ctx context.Context) []doctor.Result
	// ConsoleProviders are reported by /readyz: their calls are recorded,
	// not sent (optional).
	ConsoleProviders []string
	// ProviderQueues, when set, reports each provider's activity queue
	// (paused or polling) in /readyz: a paused provider is a detail, not a
	// readiness failure, since its work waits in Temporal (optional).
	ProviderQueues func() any

	// Tracer, when set, traces every request but the probes (OpenTelemetry;
	// worker.Tracing.TracerProvider). Nil adds nothing to a request.
	Tracer trace.TracerProvider
	// Panics, when set, reports handler panics (worker.SentryReporter).
	Panics PanicReporter

	// Codec, when set, serves the payload codec at /codec/ for the Temporal
	// UI and the temporal CLI (--codec-endpoint).
	Codec http.Handler

	// OpsOnly serves only /healthz, /readyz and /metrics (a worker replica);
	// the fields below are then unused.
	OpsOnly    bool
	Store      *store.Store
	Starter    *starter.Starter
	Dispatcher *Dispatcher
	// CoalesceWindow holds stock updates back so a burst for one SKU
	// coalesces into one signal.
	CoalesceWindow time.Duration
	// WebhookSecrets, when set, returns the signing secrets valid now for
	// "stripe_webhook" or "clerk_webhook" (from the credential store: during
	// a rotation both the new and the retiring secret verify). Without it
	// the static secrets in Webhooks are used.
	WebhookSecrets func(ctx context.Context, provider string) ([]string, error)
	// TokenSource, when set, returns further bearer tokens at request time:
	// the start-API tokens in the credential store, so a rotated token works
	// at once and a retired one stops after its grace period.
	TokenSource func(ctx context.Context) ([]string, error)
	// APITokens are bearer tokens the start API always accepts.
	APITokens []string
	Webhooks  WebhookOptions
}

// WebhookOptions are the webhook endpoints' secrets and limits.
type WebhookOptions struct {
	StripeSecret string
	// ClerkSecret is the Svix signing secret (whsec_ + base64) of Clerk.
	ClerkSecret string
	// Tolerance is how far a signature's timestamp may be from now.
	Tolerance time.Duration
	// MaxBodyBytes bounds a webhook body; larger gets 413.
	MaxBodyBytes int64
}

// Server routes every endpoint crmflow serves.
type Server struct {
	deps    Deps
	clerk   *svix.Webhook
	mux     *http.ServeMux
	metrics *httpMetrics
}

// NewServer builds the server and its routes.
func NewServer(deps Deps) *Server {
	s := &Server{deps: deps, mux: http.NewServeMux(), metrics: newHTTPMetrics(deps.Registry),
		clerk: newClerkVerifier(deps.Webhooks.ClerkSecret)}
	s.registerAppMetrics()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{Registry: deps.Registry}))
	if deps.Codec != nil {
		s.mux.Handle("/codec/", deps.Codec)
	}
	if deps.OpsOnly {
		return s
	}
	s.mux.Handle("POST /webhooks/stripe", bounded(s.stripeWebhook))
	s.mux.Handle("POST /webhooks/clerk", bounded(s.clerkWebhook))
	// A hanging PostgreSQL or Temporal must not hold API callers forever.
	api := func(pattern string, h http.HandlerFunc) {
		// The bound covers the token check, which may read PostgreSQL too.
		s.mux.Handle(pattern, boundedBy(apiTimeout, s.requireToken(h)))
	}
	api("POST /v1/orders/{orderID}/confirmation", s.startOrderConfirmation)
	api("POST /v1/referrals/{referralID}/reward", s.startReferralReward)
	api("POST /v1/inventory/{sku}/stock-level", s.setStockLevel)
	api("POST /v1/key-rotations/{provider}", s.startKeyRotation)
	api("POST /v1/key-rotations/{provider}/key", s.submitKey)
	api("POST /v1/key-rotations/{provider}/revoked", s.confirmRevoked)
	api("POST /v1/key-rotations/crmflow/token", s.collectToken)
	api("POST /v1/aliases", s.createAlias)
	api("POST /v1/aliases/{aliasID}/{action}", s.aliasCommand)
	api("GET /v1/workflows/{workflowID...}", s.workflowStatus)
	api("GET /v1/dead-letters", s.listDeadLetters)
	api("POST /v1/dead-letters/{id}/{action}", s.decideDeadLetter)
	// Unknown /v1 paths still need a token, so they do not reveal the API.
	api("/v1/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return s
}

// Handler returns the server's root handler with tracing, metrics, panic
// recovery and panic reports.
func (s *Server) Handler() http.Handler {
	return s.traceRequests(s.metrics.wrap(recoverPanics(s.deps.Logger, s.reportPanics(s.mux))))
}

// Run serves on addr until ctx is cancelled, then drains in-flight requests
// for up to shutdownTimeout. ready, if not nil, receives the bound address
// once the listener is open.
func (s *Server) Run(ctx context.Context, addr string, shutdownTimeout time.Duration, ready chan<- string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.deps.Logger.Handler(), slog.LevelWarn),
	}
	if ready != nil {
		ready <- l.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// checkResult is one dependency's line in the /readyz answer.
type checkResult struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Millis int64  `json:"ms"`
}

// inboxDetail is the hand-off backlog shown by /readyz.
type inboxDetail struct {
	Pending           int64   `json:"pending"`
	HandOffLagSeconds float64 `json:"handoff_lag_seconds"`
}

// readyz answers 200 only when every dependency answers; the body says which
// one did not, so an operator needs no second tool to find out. With
// ?verbose=1 it also runs crmflow doctor's checks (config, migrations,
// Temporal namespace, search attributes and schedules, every provider's
// key) and answers 503 when any of them fails.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var diagnosis chan []doctor.Result
	if v := r.URL.Query().Get("verbose"); s.deps.Doctor != nil && (v == "1" || v == "true") {
		diagnosis = make(chan []doctor.Result, 1)
		go func() {
			dctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			diagnosis <- s.deps.Doctor(dctx)
		}()
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	type named struct {
		name string
		res  checkResult
	}
	results := make(chan named, len(s.deps.Checks))
	for _, c := range s.deps.Checks {
		go func() {
			start := time.Now()
			err := c.Probe(ctx)
			res := checkResult{Status: "ok", Millis: time.Since(start).Milliseconds()}
			if err != nil {
				res.Status, res.Error = "error", err.Error()
			}
			results <- named{c.Name, res}
		}()
	}
	body := struct {
		Status      string                 `json:"status"`
		Checks      map[string]checkResult `json:"checks"`
		ConsoleMode []string               `json:"console_mode"`
		Inbox       *inboxDetail           `json:"inbox,omitempty"`
		Doctor      []doctor.Result        `json:"doctor,omitempty"`
		Queues      any                    `json:"provider_queues,omitempty"`
	}{Status: "ready", Checks: map[string]checkResult{}, ConsoleMode: s.deps.ConsoleProviders}
	if s.deps.ProviderQueues != nil {
		body.Queues = s.deps.ProviderQueues()
	}
	if s.deps.Store != nil {
		// The hand-off backlog is a detail, not a readiness failure: events
		// wait safely in the inbox while Temporal catches up.
		if b, err := s.deps.Store.InboxBacklog(ctx); err == nil {
			body.Inbox = &inboxDetail{Pending: b.Pending, HandOffLagSeconds: b.OldestAge.Seconds()}
		}
	}
	if body.ConsoleMode == nil {
		body.ConsoleMode = []string{}
	}
	code := http.StatusOK
	for range s.deps.Checks {
		n := <-results
		body.Checks[n.name] = n.res
		if n.res.Status != "ok" {
			body.Status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	if diagnosis != nil {
		body.Doctor = <-diagnosis
		if doctor.Failed(body.Doctor) > 0 {
			body.Status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, body)
}
