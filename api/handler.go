package api

import (
	"net/http"

	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/webhooks"
)

// HandlerOptions say what one crmflow process serves over HTTP.
type HandlerOptions struct {
	// HTTP are the cross-cutting concerns around every route (metrics,
	// tracing, panic reports).
	HTTP httpserver.Options
	// Ops are the routes every process serves.
	Ops OpsDeps
	// API and Webhooks, when set, add the /v1 routes and the webhook
	// endpoints; a worker-only replica leaves them nil.
	API      *Deps
	Webhooks *webhooks.Deps
}

// Handler is the process's whole HTTP handler: the routes opts ask for,
// wrapped in the shared middleware.
func Handler(opts HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	NewOps(opts.Ops).Register(mux)
	if opts.Webhooks != nil {
		webhooks.New(*opts.Webhooks).Register(mux)
	}
	if opts.API != nil {
		New(*opts.API).Register(mux)
		// The runs parked for an operator, counted in PostgreSQL at scrape
		// time; a worker replica, which serves no API, leaves it out.
		opts.Ops.Registry.MustRegister(appmetrics.NewParkedCollector(opts.API.Store.Pool()))
	}
	return httpserver.Wrap(mux, opts.HTTP)
}
