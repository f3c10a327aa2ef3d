package webhooks

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// Tokens returns every bearer token the start API accepts now.
func (s *Server) Tokens(ctx context.Context) ([]string, error) {
	tokens := s.deps.APITokens
	if s.deps.TokenSource != nil {
		more, err := s.deps.TokenSource(ctx)
		if err != nil {
			return nil, err
		}
		tokens = append(append([]string(nil), tokens...), more...)
	}
	return tokens, nil
}

// requireToken lets a request through only with a valid bearer token. Every
// token is compared in constant time, and all of them, so the answer's
// timing says nothing about which token was close.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tokens, err := s.Tokens(r.Context())
		if err != nil {
			s.storeError(w, err)
			return
		}
		match := 0
		for _, tok := range tokens {
			if tok != "" {
				match |= subtle.ConstantTimeCompare([]byte(got), []byte(tok))
			}
		}
		if !ok || got == "" || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmflow"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// startOrderConfirmation: POST /v1/orders/{orderID}/confirmation.
func (s *Server) startOrderConfirmation(w http.ResponseWriter, r *http.Request) {
	orderID := r.PathValue("orderID")
	if err := contract.ValidateKey("order ID", orderID); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_order_id", err.Error())
		return
	}
	// An unknown order would only park the new run; refuse it up front.
	if _, err := s.deps.Store.GetOrder(r.Context(), orderID); err != nil {
		s.storeError(w, err)
		return
	}
	run, err := s.deps.Starter.StartOrderConfirmation(r.Context(), orderID)
	if err != nil && !errors.Is(err, starter.ErrAlreadyDone) {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// startReferralReward: POST /v1/referrals/{referralID}/reward, for
// backfills: starts (or joins) the reward for the referred customer's first
// paid order.
func (s *Server) startReferralReward(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("referralID")
	if err := contract.ValidateKey("referral ID", id); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_referral_id", err.Error())
		return
	}
	t, err := s.deps.Store.BackfillTarget(r.Context(), id)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "no_paid_order", "the referred customer has no paid order yet")
		return
	}
	if err != nil {
		s.storeError(w, err)
		return
	}
	run, err := s.deps.Starter.StartReferralReward(r.Context(), contract.ReferralRewardInput{
		ReferralID: id, OrderID: t.OrderID, ReferredCustomerID: t.ReferredCustomerID,
	})
	if err != nil && !errors.Is(err, starter.ErrAlreadyDone) {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// workflowStatus: GET /v1/workflows/{workflowID...} answers the status query.
func (s *Server) workflowStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("workflowID")
	st, err := s.deps.Starter.Status(r.Context(), id)
	if err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflow_id": id, "status": st})
}

// listDeadLetters: GET /v1/dead-letters?status=parked.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", store.DeadLetterParked, store.DeadLetterRetrying, store.DeadLetterSkipped, store.DeadLetterAborted, store.DeadLetterResolved:
	default:
		writeError(w, http.StatusBadRequest, "invalid_status", "status must be parked, retrying, skipped, aborted or resolved")
		return
	}
	list, err := s.deps.Store.ListDeadLetters(r.Context(), status, 500)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": list})
}

// decideDeadLetter: POST /v1/dead-letters/{id}/{action} with an optional
// body {"operator": "..."}; answers once the parked run accepted it.
func (s *Server) decideDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_id", "dead letter id must be a positive integer")
		return
	}
	action := r.PathValue("action")
	switch action {
	case contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort:
	default:
		writeError(w, http.StatusNotFound, "not_found", "action must be retry, skip or abort")
		return
	}
	var body struct {
		Operator string `json:"operator"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, 4096, &body) {
		return
	}
	if body.Operator == "" {
		body.Operator = "api"
	}
	if err := contract.ValidateOperator(body.Operator); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_operator", err.Error())
		return
	}
	d, err := s.deps.Store.GetDeadLetter(r.Context(), id)
	if err != nil {
		s.storeError(w, err)
		return
	}
	if d.Status != store.DeadLetterParked {
		writeError(w, http.StatusConflict, "not_parked", "dead letter "+r.PathValue("id")+" is "+d.Status)
		return
	}
	res, err := s.deps.Starter.DecideDeadLetter(r.Context(), d.WorkflowID, d.RunID,
		contract.DeadLetterDecision{DeadLetterID: id, Action: action, Operator: body.Operator})
	if err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"dead_letter_id": id, "workflow_id": d.WorkflowID, "step": res.Step, "action": res.Action})
}

func (s *Server) storeError(w http.ResponseWriter, err error) {
	switch {
	case isDataException(err):
		writeError(w, http.StatusBadRequest, "invalid", "the request holds text the database cannot store")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	default:
		s.deps.Logger.Error("Database call failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "database unavailable; retry later")
	}
}

func (s *Server) starterError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, starter.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, starter.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, starter.ErrRejected):
		writeError(w, http.StatusConflict, "rejected", err.Error())
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "request cancelled")
	default:
		s.deps.Logger.Error("Temporal call failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "Temporal unavailable; retry later")
	}
}

// isDataException reports whether PostgreSQL refused a value itself (SQLSTATE
// class 22: a NUL character, an unpaired surrogate in JSON, invalid UTF-8).
// Retrying cannot help, so it is the caller's error, never an outage.
func isDataException(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}
