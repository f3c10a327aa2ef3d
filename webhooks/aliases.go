package webhooks

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/starter"
)

// smallBodyLimit bounds the JSON bodies of the alias and key-rotation endpoints.
const smallBodyLimit = 16 << 10

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

// createAlias: POST /v1/aliases → 202 {"alias_id","workflow_id","run_id"}.
func (s *Server) createAlias(w http.ResponseWriter, r *http.Request) {
	var req createAliasRequest
	if !decodeJSON(w, r, smallBodyLimit, &req) {
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
		writeError(w, http.StatusUnprocessableEntity, "invalid_alias", problem)
		return
	}
	if req.CustomerID != "" {
		if _, err := s.deps.Store.GetCustomer(r.Context(), req.CustomerID); err != nil {
			s.storeError(w, err)
			return
		}
	}
	run, err := s.deps.Starter.CreateAlias(r.Context(), contract.AliasLifecycleInput{
		AliasID: req.AliasID, CustomerID: req.CustomerID, Email: req.Email,
		Mode: req.Mode, Prefix: req.Prefix, Hostname: req.Hostname,
	})
	if errors.Is(err, starter.ErrAlreadyDone) {
		writeError(w, http.StatusConflict, "alias_ended", "alias "+req.AliasID+" was deleted or expired; use a new alias ID")
		return
	}
	if err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"alias_id": req.AliasID, "workflow_id": run.WorkflowID, "run_id": run.RunID})
}

// aliasCommand: POST /v1/aliases/{aliasID}/{disable|enable|delete|claim};
// claim takes {"customer_id"}. An Idempotency-Key header makes a retried
// request the same command, which the workflow ignores the second time.
func (s *Server) aliasCommand(w http.ResponseWriter, r *http.Request) {
	aliasID, action := r.PathValue("aliasID"), r.PathValue("action")
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
		writeError(w, http.StatusNotFound, "not_found", "action must be disable, enable, delete or claim")
		return
	}
	cmd := contract.AliasCommand{EventID: r.Header.Get("Idempotency-Key")}
	if cmd.EventID == "" {
		cmd.EventID = randomID("cmd_")
	}
	if action == "claim" {
		var body struct {
			CustomerID string `json:"customer_id"`
		}
		if !decodeJSON(w, r, smallBodyLimit, &body) {
			return
		}
		if body.CustomerID == "" {
			writeError(w, http.StatusUnprocessableEntity, "missing_customer_id", `"customer_id" is required to claim`)
			return
		}
		if _, err := s.deps.Store.GetCustomer(r.Context(), body.CustomerID); err != nil {
			s.storeError(w, err)
			return
		}
		cmd.CustomerID = body.CustomerID
	}
	if err := s.deps.Starter.SignalAlias(r.Context(), aliasID, signal, cmd); err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"alias_id": aliasID, "action": action, "event_id": cmd.EventID})
}

// decodeJSON reads a small JSON body (at most limit bytes, no unknown
// fields) into v; it answers the error itself: 415 not JSON, 413 too
// large, 400 malformed.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "body must be application/json")
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Exactly one JSON value: data after it would be ignored silently.
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return true
		}
		if err == nil {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", limit))
		return false
	}
	writeError(w, http.StatusBadRequest, "malformed", "body is not the expected JSON: "+err.Error())
	return false
}

// randomID makes an unguessable id with a readable prefix.
func randomID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b)
}
