// Package api is crmflow's HTTP API: the start API backend services call
// (orders, referrals, stock levels, aliases, workflow status), the operator
// routes (dead-letter decisions, key rotations), and the operations routes
// every process serves (health, readiness, metrics, the codec mount).
//
// Every /v1 route needs a bearer token. Handler composes one process's whole
// HTTP surface, mounting the webhook endpoints beside the API. api may
// import webhooks, inbox, starter, doctor, contract, config and internal/
// libraries; never worker, workflows or activities.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// timeout bounds a request, the token check included (it may read
// PostgreSQL). It is longer than a webhook's because a key submission waits
// on the provider's own check of the key.
const timeout = 30 * time.Second

// smallBodyLimit bounds the JSON bodies of the API.
const smallBodyLimit = 16 << 10

// Deps are what the API needs; every field is required unless noted.
type Deps struct {
	Logger  *slog.Logger
	Store   *store.Store
	Starter *starter.Starter
	// Inbox takes stock levels, which go through the inbox like webhook
	// events so bursts for one SKU coalesce.
	Inbox Inbox
	// CoalesceWindow holds stock updates back so a burst for one SKU
	// coalesces into one signal.
	CoalesceWindow time.Duration
	// Tokens returns every bearer token accepted now.
	Tokens func(ctx context.Context) ([]string, error)
}

// API serves the /v1 routes.
type API struct {
	deps Deps
}

// New builds the API.
func New(deps Deps) *API { return &API{deps: deps} }

// Register adds the /v1 routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, httpserver.Bounded(timeout, a.requireToken(h)))
	}
	route("POST /v1/orders/{orderID}/confirmation", a.startOrderConfirmation)
	route("POST /v1/referrals/{referralID}/reward", a.startReferralReward)
	route("POST /v1/inventory/{sku}/stock-level", a.setStockLevel)
	route("POST /v1/key-rotations/{provider}", a.startKeyRotation)
	route("POST /v1/key-rotations/{provider}/key", a.submitKey)
	route("POST /v1/key-rotations/{provider}/revoked", a.confirmRevoked)
	route("POST /v1/key-rotations/crmflow/token", a.collectToken)
	route("POST /v1/aliases", a.createAlias)
	route("POST /v1/aliases/{aliasID}/{action}", a.aliasCommand)
	route("GET /v1/workflows/{workflowID...}", a.workflowStatus)
	route("GET /v1/dead-letters", a.listDeadLetters)
	route("POST /v1/dead-letters/{id}/{action}", a.decideDeadLetter)
	// Unknown /v1 paths still need a token, so they do not reveal the API.
	route("/v1/", func(w http.ResponseWriter, _ *http.Request) {
		httpserver.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
}

// Inbox is where stock levels are committed (inbox.Store implements it).
type Inbox interface {
	Insert(ctx context.Context, e inbox.Event) (bool, error)
}
