package api

import (
	"fmt"
	"net/http"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/providers"
)

// startKeyRotation: POST /v1/key-rotations/{provider} → 202; a rotation
// already running is joined.
func (a *API) startKeyRotation(w http.ResponseWriter, r *http.Request) {
	if p, ok := providers.Lookup(r.PathValue("provider")); !ok || !p.Rotated() {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("no key rotation for provider %q", r.PathValue("provider")))
		return
	}
	run, err := a.deps.Starter.StartKeyRotation(r.Context(), r.PathValue("provider"), "api")
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, run)
}

// submitKey: POST /v1/key-rotations/{provider}/key with {"key","operator"};
// 200 {"valid","reason"} once the provider was asked; 409 when the rotation
// is not waiting for a key or the key's form is wrong.
func (a *API) submitKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key      string `json:"key"`
		Operator string `json:"operator"`
	}
	if !httpserver.DecodeJSON(w, r, smallBodyLimit, &body) {
		return
	}
	if body.Key == "" {
		httpserver.WriteError(w, http.StatusUnprocessableEntity, "missing_key", `"key" is required`)
		return
	}
	if body.Operator == "" {
		body.Operator = "api"
	}
	if err := contract.ValidateOperator(body.Operator); err != nil {
		httpserver.WriteError(w, http.StatusUnprocessableEntity, "invalid_operator", err.Error())
		return
	}
	res, err := a.deps.Starter.SubmitKey(r.Context(), r.PathValue("provider"),
		contract.SubmitKeyInput{Secret: body.Key, Operator: body.Operator})
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

// confirmRevoked: POST /v1/key-rotations/{provider}/revoked → 202 once the
// rotation took the operator's word that the old key is revoked.
func (a *API) confirmRevoked(w http.ResponseWriter, r *http.Request) {
	if err := a.deps.Starter.ConfirmOldKeyRevoked(r.Context(), r.PathValue("provider"), "api"); err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]string{"provider": r.PathValue("provider"), "status": "revoked"})
}

// collectToken: POST /v1/key-rotations/crmflow/token → 200 {"token",
// "version"}: the rotated start-API token, handed out once.
func (a *API) collectToken(w http.ResponseWriter, r *http.Request) {
	tok, err := a.deps.Starter.CollectToken(r.Context(), "api")
	if err != nil {
		a.starterError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, tok)
}
