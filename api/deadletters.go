package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
)

// listDeadLetters: GET /v1/dead-letters?status=parked.
func (a *API) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", store.DeadLetterParked, store.DeadLetterRetrying, store.DeadLetterSkipped, store.DeadLetterAborted, store.DeadLetterResolved:
	default:
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_status", "status must be parked, retrying, skipped, aborted or resolved")
		return
	}
	list, err := a.deps.Store.ListDeadLetters(r.Context(), status, 500)
	if err != nil {
		a.storeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": list})
}

// decideDeadLetter: POST /v1/dead-letters/{id}/{action} with an optional
// body {"operator": "..."}; answers once the parked run accepted it.
func (a *API) decideDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_id", "dead letter id must be a positive integer")
		return
	}
	action := r.PathValue("action")
	switch action {
	case contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort:
	default:
		httpserver.WriteError(w, http.StatusNotFound, "not_found", "action must be retry, skip or abort")
		return
	}
	var body struct {
		Operator string `json:"operator"`
	}
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
	d, res, err := a.decide(r.Context(), operator, id, action)
	var notParked *notParkedError
	switch {
	case errors.As(err, &notParked):
		httpserver.WriteError(w, http.StatusConflict, "not_parked", err.Error())
		return
	case errors.As(err, new(*readError)):
		a.storeError(w, err)
		return
	case err != nil:
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]any{"dead_letter_id": id, "workflow_id": d.WorkflowID, "step": res.Step, "action": res.Action})
}

// readError marks a decision that failed reading the dead letter (the
// store's errors), rather than sending it (the starter's).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// notParkedError is a decision for a dead letter no longer parked.
type notParkedError struct {
	id     int64
	status string
}

func (e *notParkedError) Error() string {
	return "dead letter " + strconv.FormatInt(e.id, 10) + " is " + e.status
}

// decide sends operator's action on dead letter id to its parked run and
// audits it: the one decision path of the API and the console.
func (a *API) decide(ctx context.Context, operator string, id int64, action string) (*store.DeadLetter, *contract.DeadLetterDecisionResult, error) {
	d, err := a.deps.Store.GetDeadLetter(ctx, id)
	if err != nil {
		return nil, nil, &readError{err}
	}
	if d.Status != store.DeadLetterParked {
		return d, nil, &notParkedError{id: id, status: d.Status}
	}
	res, err := a.deps.Starter.DecideDeadLetter(ctx, d.WorkflowID, d.RunID,
		contract.DeadLetterDecision{DeadLetterID: id, Action: action, Operator: operator})
	a.audit(ctx, store.AuditEntry{Actor: operator, Action: "dead_letter." + action,
		Subject: "dead-letter/" + strconv.FormatInt(id, 10), Outcome: outcome(err),
		Details: map[string]any{"workflow_id": d.WorkflowID, "run_id": d.RunID, "step": d.Step}})
	return d, res, err
}
