package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
)

// The operators' inbox routes: every accepted event, where it ended, and a
// replay for the ones that did not reach their workflow (a payment for an
// order the CRM wrote later, an event for a run that had finished).

// InboxEvent is an inbox row as the inbox routes and `crmflow inbox` show
// it.
type InboxEvent struct {
	ID        int64  `json:"id"`
	Provider  string `json:"provider"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	// Status is where the event ended, or pending (inbox.Statuses).
	Status string `json:"status"`
	// Note is why the last hand-off failed (pending) or how the event
	// ended.
	Note string `json:"note,omitempty"`
	// WorkflowID is the row's target: the workflow it is for, or a key
	// ordering several (clerk-user/…, payment-intent/…); absent when the
	// event was ignored.
	WorkflowID   string       `json:"workflow_id,omitempty"`
	Route        *inbox.Route `json:"route,omitempty"`
	Attempts     int          `json:"attempts"`
	ReceivedAt   time.Time    `json:"received_at"`
	DoneAt       *time.Time   `json:"done_at"`
	Recovered    bool         `json:"recovered"`
	ReplayedAt   *time.Time   `json:"replayed_at"`
	ReplayedBy   string       `json:"replayed_by,omitempty"`
	PayloadBytes int          `json:"payload_bytes"`
	// PurgedAt is when retention removed the payload; such a row can no
	// longer be replayed.
	PurgedAt *time.Time `json:"purged_at,omitempty"`
	// Payload is the body as received: JSON when it is JSON text, else
	// its bytes in base64 (PayloadEncoding says which). Only a single
	// event's view has it.
	Payload         any    `json:"payload,omitempty"`
	PayloadEncoding string `json:"payload_encoding,omitempty"`
}

// NewInboxEvent is r's view; withPayload adds the body.
func NewInboxEvent(r inbox.Record, withPayload bool) InboxEvent {
	v := InboxEvent{
		ID: r.ID, Provider: r.Source, EventID: r.EventID, EventType: r.EventType, Status: r.Status, Note: r.Note,
		WorkflowID: r.Target, Attempts: r.Attempts, ReceivedAt: r.ReceivedAt, DoneAt: r.DoneAt, Recovered: r.Recovered,
		ReplayedAt: r.ReplayedAt, ReplayedBy: r.ReplayedBy, PayloadBytes: r.Size, PurgedAt: r.PurgedAt,
	}
	if r.Route != (inbox.Route{}) {
		route := r.Route
		v.Route = &route
	}
	if withPayload && r.Payload != nil {
		// Invalid UTF-8 inside JSON strings would pass json.Valid and make
		// the answer invalid JSON; such a body is shown as bytes.
		if utf8.Valid(r.Payload) && json.Valid(r.Payload) {
			v.Payload, v.PayloadEncoding = json.RawMessage(r.Payload), "json"
		} else {
			v.Payload, v.PayloadEncoding = r.Payload, "base64" // []byte marshals as base64
		}
	}
	return v
}

// inboxPage is the answer of GET /v1/inbox.
type inboxPage struct {
	Events []InboxEvent `json:"events"`
	// NextBefore is the before= of the next page; absent on the last one.
	NextBefore int64 `json:"next_before,omitempty"`
}

// listInbox: GET /v1/inbox?status=…&provider=…&limit=…&before=…, newest
// first, without payloads.
func (a *API) listInbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := inbox.ListFilter{Status: q.Get("status"), Provider: q.Get("provider"), Limit: inbox.DefaultListLimit}
	if f.Status != "" && !slices.Contains(inbox.Statuses, f.Status) {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_status", "status must be one of "+strings.Join(inbox.Statuses, ", "))
		return
	}
	if f.Provider != "" && !slices.Contains(inbox.Sources, f.Provider) {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_provider", "provider must be one of "+strings.Join(inbox.Sources, ", "))
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > inbox.MaxListLimit {
			httpserver.WriteError(w, http.StatusBadRequest, "invalid_limit",
				"limit must be an integer from 1 to "+strconv.Itoa(inbox.MaxListLimit))
			return
		}
		f.Limit = n
	}
	if s := q.Get("before"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			httpserver.WriteError(w, http.StatusBadRequest, "invalid_before", "before must be a positive inbox event id")
			return
		}
		f.BeforeID = id
	}
	list, err := a.deps.Inbox.List(r.Context(), f)
	if err != nil {
		a.inboxError(w, err)
		return
	}
	page := inboxPage{Events: make([]InboxEvent, 0, len(list))}
	for _, rec := range list {
		page.Events = append(page.Events, NewInboxEvent(rec, false))
	}
	if len(list) == f.Limit {
		page.NextBefore = list[len(list)-1].ID
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

// showInbox: GET /v1/inbox/{id}, the row with its payload.
func (a *API) showInbox(w http.ResponseWriter, r *http.Request) {
	id, ok := inboxID(w, r)
	if !ok {
		return
	}
	rec, err := a.deps.Inbox.Get(r.Context(), id)
	if err != nil {
		a.inboxError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, NewInboxEvent(rec, true))
}

// replayRequest is the optional body of a replay.
type replayRequest struct {
	// Operator, when given, must be the token's own operator.
	Operator string `json:"operator"`
}

// replayResponse is the answer of a replay: the row, pending again.
type replayResponse struct {
	InboxEvent
	// ReplayedFrom is the status the row left.
	ReplayedFrom string `json:"replayed_from"`
	// Rerouted says the route was worked out again from the payload.
	Rerouted bool `json:"rerouted"`
}

// replayInbox: POST /v1/inbox/{id}/replay → 202 once the row is pending
// again; the dispatcher hands it off under its original event id. Recorded
// as the token's operator, on the row and in the audit log.
func (a *API) replayInbox(w http.ResponseWriter, r *http.Request) {
	id, ok := inboxID(w, r)
	if !ok {
		return
	}
	var body replayRequest
	if r.ContentLength != 0 && !httpserver.DecodeJSON(w, r, 4096, &body) {
		return
	}
	if body.Operator != "" {
		if err := contract.ValidateOperator(body.Operator); err != nil {
			httpserver.WriteError(w, http.StatusUnprocessableEntity, "invalid_operator", err.Error())
			return
		}
	}
	operator, ok := a.operator(w, r, body.Operator)
	if !ok {
		return
	}
	res, err := a.deps.Inbox.Replay(r.Context(), id, operator)
	if !errors.Is(err, inbox.ErrNotFound) {
		a.audit(r.Context(), ReplayAudit(operator, id, res, err))
	}
	if err != nil {
		a.inboxError(w, err)
		return
	}
	if a.deps.Poke != nil {
		a.deps.Poke()
	}
	httpserver.WriteJSON(w, http.StatusAccepted, replayResponse{InboxEvent: NewInboxEvent(res.Record, true),
		ReplayedFrom: res.From, Rerouted: res.Rerouted})
}

// ReplayAudit is the audit row of an inbox replay by operator, whatever
// its outcome (the API and `crmflow inbox replay` write the same).
func ReplayAudit(operator string, id int64, res inbox.Replayed, err error) store.AuditEntry {
	e := store.AuditEntry{Actor: operator, Action: "inbox.replay", Subject: "inbox/" + strconv.FormatInt(id, 10),
		Outcome: outcome(err)}
	if err == nil {
		e.Details = map[string]any{"provider": res.Source, "event_id": res.EventID, "event_type": res.EventType,
			"from": res.From, "workflow_id": res.Target, "rerouted": res.Rerouted}
	}
	return e
}

// inboxID reads the {id} of an inbox route.
func inboxID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_id", "inbox event id must be a positive integer")
		return 0, false
	}
	return id, true
}

// inboxError answers an error of the inbox's operator queries.
func (a *API) inboxError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, inbox.ErrNotFound):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, inbox.ErrAlreadyPending):
		httpserver.WriteError(w, http.StatusConflict, "already_pending", err.Error()+"; the dispatcher hands it off")
	case errors.Is(err, inbox.ErrNotRoutable):
		httpserver.WriteError(w, http.StatusConflict, "not_routable", err.Error())
	case errors.Is(err, inbox.ErrPurged):
		httpserver.WriteError(w, http.StatusConflict, "purged", err.Error())
	default:
		a.storeError(w, err)
	}
}
