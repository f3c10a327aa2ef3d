package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// storeError answers a database error: the caller's fault (400, 404, 409)
// or an outage (503, retry later).
func (a *API) storeError(w http.ResponseWriter, err error) {
	switch {
	case store.IsDataException(err):
		httpserver.WriteError(w, http.StatusBadRequest, "invalid", "the request holds text the database cannot store")
	case errors.Is(err, store.ErrNotFound):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, store.ErrConflict):
		httpserver.WriteError(w, http.StatusConflict, "conflict", err.Error())
	default:
		a.deps.Logger.Error("Database call failed", "error", err)
		httpserver.WriteError(w, http.StatusServiceUnavailable, "unavailable", "database unavailable; retry later")
	}
}

// starterError answers a Temporal error the same way.
func (a *API) starterError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, starter.ErrInvalid):
		httpserver.WriteError(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, starter.ErrNotFound):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, starter.ErrRejected):
		httpserver.WriteError(w, http.StatusConflict, "rejected", err.Error())
	case errors.Is(err, context.Canceled):
		httpserver.WriteError(w, http.StatusServiceUnavailable, "unavailable", "request cancelled")
	default:
		a.deps.Logger.Error("Temporal call failed", "error", err)
		httpserver.WriteError(w, http.StatusServiceUnavailable, "unavailable", "Temporal unavailable; retry later")
	}
}

// closedError is the body of closedRun's 409: the one error shape, plus the
// run that ended.
type closedError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		WorkflowID string `json:"workflow_id"`
		RunID      string `json:"run_id"`
	} `json:"error"`
}

// closedRun answers 409 code for a start whose business key's run ended
// and may not start again (starter.ErrAlreadyDone). The answer names that
// run, whose outcome GET /v1/workflows/{workflow_id} tells: a 202 with its
// id would say that work was under way when nothing was done.
func closedRun(w http.ResponseWriter, code, what string, run starter.Run) {
	var b closedError
	b.Error.Code, b.Error.WorkflowID, b.Error.RunID = code, run.WorkflowID, run.RunID
	b.Error.Message = fmt.Sprintf("%s (workflow %s, run %s); it is not started again", what, run.WorkflowID, run.RunID)
	httpserver.WriteJSON(w, http.StatusConflict, b)
}

// randomID makes an unguessable id with a readable prefix.
func randomID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b)
}

// audit writes an operator action to the audit log. The action's effect
// stands whether or not its row could be written, so a failed write is
// logged, not answered.
func (a *API) audit(ctx context.Context, e store.AuditEntry) {
	if a.deps.Audit == nil {
		return
	}
	if err := a.deps.Audit.Audit(context.WithoutCancel(ctx), e); err != nil {
		a.deps.Logger.Error("Could not write the audit log", "action", e.Action, "subject", e.Subject, "error", err)
	}
}
