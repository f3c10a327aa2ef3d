// Package api is crmflow's HTTP API: the start API backend services call
// (orders, referrals, stock levels, aliases, workflow status), the operator
// routes (dead-letter decisions, key rotations, inbox replay), and the operations routes
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
	"github.com/crmflow/crmflow/internal/credentials"
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
	// events so bursts for one SKU coalesce, and serves the operators'
	// inbox routes (list, show, replay).
	Inbox Inbox
	// Poke, when set, wakes the inbox dispatcher after a replay, so the
	// event is handed off now rather than at the next sweep.
	Poke func()
	// CoalesceWindow holds stock updates back so a burst for one SKU
	// coalesces into one signal.
	CoalesceWindow time.Duration
	// Auth tells who a bearer token belongs to.
	Auth Authenticator
	// TokenSeen, when set, is told of the first uses of a start-API token
	// a rotation generated and has not activated yet.
	TokenSeen func(ctx context.Context, p credentials.Principal)
	// Audit records what operators did (the store's audit_log).
	Audit Auditor
	// Rotations are the key-rotation actions (over Starter, the credential
	// store and Audit).
	Rotations *Rotations
}

// Auditor appends a row to the audit log (store.Store implements it). It
// never receives a secret.
type Auditor interface {
	Audit(ctx context.Context, e store.AuditEntry) error
}

// API serves the /v1 routes.
type API struct {
	deps Deps
}

// New builds the API.
func New(deps Deps) *API { return &API{deps: deps} }

// Register adds the /v1 routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	route := func(scope credentials.Scope, pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, httpserver.Bounded(timeout, a.requireScope(scope, h)))
	}
	// Service tokens: start, signal and read.
	service := credentials.ScopeService
	route(service, "POST /v1/orders/{orderID}/confirmation", a.startOrderConfirmation)
	route(service, "POST /v1/referrals/{referralID}/reward", a.startReferralReward)
	route(service, "POST /v1/inventory/{sku}/stock-level", a.setStockLevel)
	route(service, "POST /v1/aliases", a.createAlias)
	route(service, "POST /v1/aliases/{aliasID}/{action}", a.aliasCommand)
	route(service, "GET /v1/workflows/{workflowID...}", a.workflowStatus)
	// Operator tokens: everything operators do.
	operator := credentials.ScopeOperator
	route(operator, "POST /v1/key-rotations/{provider}", a.startKeyRotation)
	route(operator, "POST /v1/key-rotations/{provider}/key", a.submitKey)
	route(operator, "POST /v1/key-rotations/{provider}/revoked", a.confirmRevoked)
	route(operator, "POST /v1/key-rotations/{provider}/cancel", a.cancelRotation)
	route(operator, "POST /v1/key-rotations/crmflow/token", a.collectToken)
	route(operator, "POST /v1/key-rotations/crmflow/token/ack", a.acknowledgeToken)
	route(operator, "GET /v1/dead-letters", a.listDeadLetters)
	route(operator, "POST /v1/dead-letters/{id}/{action}", a.decideDeadLetter)
	route(operator, "GET /v1/inbox", a.listInbox)
	route(operator, "GET /v1/inbox/{id}", a.showInbox)
	route(operator, "POST /v1/inbox/{id}/replay", a.replayInbox)
	// Unknown /v1 paths still need a token, so they do not reveal the API.
	route(service, "/v1/", func(w http.ResponseWriter, _ *http.Request) {
		httpserver.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
}

// Inbox is where stock levels are committed and what operators read and
// replay (inbox.Store implements it).
type Inbox interface {
	Insert(ctx context.Context, e inbox.Event) (bool, error)
	List(ctx context.Context, f inbox.ListFilter) ([]inbox.Record, error)
	Get(ctx context.Context, id int64) (inbox.Record, error)
	Replay(ctx context.Context, id int64, operator string) (inbox.Replayed, error)
}
