package api

import (
	"errors"
	"net/http"

	"github.com/crmflow/crmflow/internal/httpserver"
)

// startKeyRotation: POST /v1/key-rotations/{provider} → 202; a rotation
// already running is joined. Operators only.
func (a *API) startKeyRotation(w http.ResponseWriter, r *http.Request) {
	run, err := a.deps.Rotations.Start(r.Context(), principalOf(r.Context()).Name, r.PathValue("provider"))
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, run)
}

// submitKey: POST /v1/key-rotations/{provider}/key with {"key"}; the key is
// stored pending and its version handed to the rotation, which asks the
// provider. 200 {"valid","reason"}; 422 when the key's form is wrong; 409
// when the rotation is not waiting for a key.
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
	operator, ok := a.operator(w, r, body.Operator)
	if !ok {
		return
	}
	res, err := a.deps.Rotations.SubmitKey(r.Context(), operator, r.PathValue("provider"), body.Key)
	switch {
	case errors.Is(err, ErrBadKey):
		httpserver.WriteError(w, http.StatusUnprocessableEntity, "invalid_key", err.Error())
	case err != nil:
		a.starterError(w, err)
	default:
		httpserver.WriteJSON(w, http.StatusOK, res)
	}
}

// confirmRevoked: POST /v1/key-rotations/{provider}/revoked → 202 once the
// rotation took the operator's word that the old key is revoked.
func (a *API) confirmRevoked(w http.ResponseWriter, r *http.Request) {
	if err := a.deps.Rotations.Revoked(r.Context(), principalOf(r.Context()).Name, r.PathValue("provider")); err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]string{"provider": r.PathValue("provider"), "status": "revoked"})
}

// cancelRotation: POST /v1/key-rotations/{provider}/cancel → 202 once a
// rotation waiting for a key (or a webhook secret's proof) has ended,
// changing nothing.
func (a *API) cancelRotation(w http.ResponseWriter, r *http.Request) {
	if err := a.deps.Rotations.Cancel(r.Context(), principalOf(r.Context()).Name, r.PathValue("provider")); err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]string{"provider": r.PathValue("provider"), "status": "cancelled"})
}

// collectToken: POST /v1/key-rotations/crmflow/token → 200 {"token",
// "version"}: the rotated start-API token, read from the credential store;
// it can be fetched again until the token is first used or acknowledged.
func (a *API) collectToken(w http.ResponseWriter, r *http.Request) {
	tok, err := a.deps.Rotations.FetchToken(r.Context(), principalOf(r.Context()).Name)
	if err != nil {
		a.starterError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, tok)
}

// acknowledgeToken: POST /v1/key-rotations/crmflow/token/ack → 202: the
// operator put the new token in place, so the rotation need not wait for
// its first use before the old token's grace period starts.
func (a *API) acknowledgeToken(w http.ResponseWriter, r *http.Request) {
	if err := a.deps.Rotations.Acknowledge(r.Context(), principalOf(r.Context()).Name); err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]string{"provider": "crmflow", "status": "acknowledged"})
}

// operator is who acts: the operator the token names. A body may still
// name the operator, as older clients did, but only the token's own: a
// token never speaks for someone else.
func (a *API) operator(w http.ResponseWriter, r *http.Request, named string) (string, bool) {
	p := principalOf(r.Context())
	if named == "" || named == p.Name {
		return p.Name, true
	}
	httpserver.WriteError(w, http.StatusUnprocessableEntity, "invalid_operator",
		"the operator is the token's ("+p.Name+"), not one named in the body")
	return "", false
}
