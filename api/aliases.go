package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/starter"
)

// createAliasRequest is the body of POST /v1/aliases.
type createAliasRequest struct {
	// AliasID is optional; crmflow makes one when it is missing.
	AliasID    string `json:"alias_id"`
	CustomerID string `json:"customer_id"`
	// Email makes a shadow alias (no customer yet) claimed by its sign-up.
	Email    string `json:"email"`
	Mode     string `json:"mode"`
	Prefix   string `json:"prefix"`
	Hostname string `json:"hostname"`
}

// createAlias: POST /v1/aliases → 202 {"alias_id","workflow_id","run_id"}
// of the new or running lifecycle; 409 alias_ended once it ended, since an
// alias ID is never brought back.
func (a *API) createAlias(w http.ResponseWriter, r *http.Request) {
	var req createAliasRequest
	if !httpserver.DecodeJSON(w, r, smallBodyLimit, &req) {
		return
	}
	if req.AliasID == "" {
		req.AliasID = randomID("al_")
	}
	if req.Mode == "" {
		req.Mode = "random"
	}
	var problem string
	switch {
	case contract.ValidateKey("alias ID", req.AliasID) != nil:
		problem = contract.ValidateKey("alias ID", req.AliasID).Error()
	case req.CustomerID == "" && req.Email == "":
		problem = "customer_id or email (for a shadow alias) is required"
	case req.CustomerID != "" && req.Email != "":
		problem = "give customer_id or email, not both"
	case req.Email != "" && !strings.Contains(req.Email, "@"):
		problem = "email is not an email address"
	case req.Mode != "random" && req.Mode != "custom":
		problem = `mode must be "random" or "custom"`
	case req.Mode == "custom" && req.Prefix == "":
		problem = "prefix is required for a custom alias"
	}
	if problem != "" {
		httpserver.WriteError(w, http.StatusUnprocessableEntity, "invalid_alias", problem)
		return
	}
	if req.CustomerID != "" {
		if _, err := a.deps.Store.GetCustomer(r.Context(), req.CustomerID); err != nil {
			a.storeError(w, err)
			return
		}
	}
	run, err := a.deps.Starter.CreateAlias(r.Context(), contract.AliasLifecycleInput{
		AliasID: req.AliasID, CustomerID: req.CustomerID, Email: req.Email,
		Mode: req.Mode, Prefix: req.Prefix, Hostname: req.Hostname,
	})
	if errors.Is(err, starter.ErrAlreadyDone) {
		closedRun(w, "alias_ended", "alias "+req.AliasID+" has ended (deleted, expired, or its creation skipped); use a new alias ID", run)
		return
	}
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]string{"alias_id": req.AliasID, "workflow_id": run.WorkflowID, "run_id": run.RunID})
}

// aliasCommand: POST /v1/aliases/{aliasID}/{disable|enable|delete|claim};
// claim takes {"customer_id"}. An Idempotency-Key header (see
// idempotencyKey for what it may hold) makes a retried request the same
// command, which the workflow ignores the second time.
func (a *API) aliasCommand(w http.ResponseWriter, r *http.Request) {
	aliasID, action := r.PathValue("aliasID"), r.PathValue("action")
	if err := contract.ValidateKey("alias ID", aliasID); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_alias_id", err.Error())
		return
	}
	var signal string
	switch action {
	case "disable":
		signal = contract.AliasDisableSignal
	case "enable":
		signal = contract.AliasEnableSignal
	case "delete":
		signal = contract.AliasDeleteSignal
	case "claim":
		signal = contract.AliasClaimSignal
	default:
		httpserver.WriteError(w, http.StatusNotFound, "not_found", "action must be disable, enable, delete or claim")
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	cmd := contract.AliasCommand{EventID: key}
	if cmd.EventID == "" {
		cmd.EventID = randomID("cmd_")
	}
	if action == "claim" {
		var body struct {
			CustomerID string `json:"customer_id"`
		}
		if !httpserver.DecodeJSON(w, r, smallBodyLimit, &body) {
			return
		}
		if body.CustomerID == "" {
			httpserver.WriteError(w, http.StatusUnprocessableEntity, "missing_customer_id", `"customer_id" is required to claim`)
			return
		}
		if _, err := a.deps.Store.GetCustomer(r.Context(), body.CustomerID); err != nil {
			a.storeError(w, err)
			return
		}
		cmd.CustomerID = body.CustomerID
	}
	if err := a.deps.Starter.SignalAlias(r.Context(), aliasID, signal, cmd); err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]string{"alias_id": aliasID, "action": action, "event_id": cmd.EventID})
}
