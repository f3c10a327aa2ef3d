package api

import (
	"net/http"

	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/callstats"
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
	// Console, when set with API, serves the operator console at
	// /console/.
	Console *ConsoleDeps
	// Calls, when set, records Clerk's webhook deliveries for the
	// console's call statistics.
	Calls *callstats.Recorder
}

// Handler is the process's whole HTTP handler: the routes opts ask for,
// wrapped in the shared middleware.
func Handler(opts HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	NewOps(opts.Ops).Register(mux)
	if opts.Webhooks != nil {
		if opts.Calls == nil {
			webhooks.New(*opts.Webhooks).Register(mux)
		} else {
			wh := http.NewServeMux()
			webhooks.New(*opts.Webhooks).Register(wh)
			mux.Handle("/webhooks/", wh)
			// Clerk calls crmflow rather than the other way round: its
			// deliveries are its calls in the console.
			mux.Handle("/webhooks/clerk", callstats.Inbound(opts.Calls, callstats.Clerk, wh))
		}
	}
	if opts.API != nil {
		a := New(*opts.API)
		a.Register(mux)
		if opts.Console != nil {
			a.registerConsole(mux, *opts.Console)
		}
		// The runs parked for an operator, counted in PostgreSQL at scrape
		// time; a worker replica, which serves no API, leaves it out.
		opts.Ops.Registry.MustRegister(appmetrics.NewParkedCollector(opts.API.Store.Pool()))
	}
	return httpserver.Wrap(mux, opts.HTTP)
}
