package api

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
)

// Check is one dependency /readyz reports on.
type Check struct {
	// Name labels the check in the readiness answer, e.g. "postgres".
	Name string
	// Probe returns nil when the dependency is usable.
	Probe func(ctx context.Context) error
}

// OpsDeps are what the operations routes need; only Registry is required.
type OpsDeps struct {
	// Registry serves /metrics.
	Registry *prometheus.Registry
	// Checks back /readyz.
	Checks []Check
	// Doctor, when set, runs crmflow doctor's checks for /readyz?verbose=1.
	// Wrap it in doctor.Cached: every run calls every provider.
	Doctor func(ctx context.Context) []doctor.Result
	// ConsoleProviders are reported by /readyz: their calls are recorded,
	// not sent.
	ConsoleProviders []string
	// ProviderQueues, when set, reports each provider's activity queue
	// (paused or polling) in /readyz: a paused provider is a detail, not a
	// readiness failure, since its work waits in Temporal.
	ProviderQueues func() any
	// Backlog, when set, reports the inbox's hand-off backlog in /readyz.
	Backlog func(ctx context.Context) (inbox.Backlog, error)
	// Codec, when set, serves the payload codec at /codec/ for the Temporal
	// UI and the temporal CLI (--codec-endpoint).
	Codec http.Handler
	// Auth checks the operator token /readyz?verbose=1 needs: its answer
	// names provider refusals and database errors, which are nobody else's
	// business. Without it verbose answers are refused.
	Auth Authenticator
}

// Ops serves /healthz, /readyz, /metrics and /codec/, which every crmflow
// process serves, a worker-only replica too.
type Ops struct {
	deps OpsDeps
}

// NewOps builds the operations routes.
func NewOps(deps OpsDeps) *Ops { return &Ops{deps: deps} }

// Register adds the operations routes to mux.
func (o *Ops) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", o.healthz)
	mux.HandleFunc("GET /readyz", o.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.deps.Registry, promhttp.HandlerOpts{Registry: o.deps.Registry}))
	if o.deps.Codec != nil {
		mux.Handle("/codec/", o.deps.Codec)
	}
}

func (o *Ops) healthz(w http.ResponseWriter, _ *http.Request) {
	httpserver.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
func (o *Ops) readyz(w http.ResponseWriter, r *http.Request) {
	var diagnosis chan []doctor.Result
	if v := r.URL.Query().Get("verbose"); v == "1" || v == "true" {
		if o.deps.Auth == nil {
			httpserver.WriteError(w, http.StatusForbidden, "forbidden", "verbose readiness needs an operator token")
			return
		}
		if _, refused := Authorize(r.Context(), o.deps.Auth, r, credentials.ScopeOperator); refused != nil {
			refused.Write(w)
			return
		}
	}
	if v := r.URL.Query().Get("verbose"); o.deps.Doctor != nil && (v == "1" || v == "true") {
		diagnosis = make(chan []doctor.Result, 1)
		go func() {
			dctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			diagnosis <- o.deps.Doctor(dctx)
		}()
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	type named struct {
		name string
		res  checkResult
	}
	results := make(chan named, len(o.deps.Checks))
	for _, c := range o.deps.Checks {
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
	}{Status: "ready", Checks: map[string]checkResult{}, ConsoleMode: o.deps.ConsoleProviders}
	if o.deps.ProviderQueues != nil {
		body.Queues = o.deps.ProviderQueues()
	}
	if o.deps.Backlog != nil {
		// The hand-off backlog is a detail, not a readiness failure: events
		// wait safely in the inbox while Temporal catches up.
		if b, err := o.deps.Backlog(ctx); err == nil {
			body.Inbox = &inboxDetail{Pending: b.Pending, HandOffLagSeconds: b.OldestAge.Seconds()}
		}
	}
	if body.ConsoleMode == nil {
		body.ConsoleMode = []string{}
	}
	code := http.StatusOK
	for range o.deps.Checks {
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
	httpserver.WriteJSON(w, code, body)
}
