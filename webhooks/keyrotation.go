package webhooks

import (
	"net/http"

	"github.com/crmflow/crmflow/contract"
)

// startKeyRotation: POST /v1/key-rotations/{provider} → 202; a rotation
// already running is joined.
func (s *Server) startKeyRotation(w http.ResponseWriter, r *http.Request) {
	run, err := s.deps.Starter.StartKeyRotation(r.Context(), r.PathValue("provider"), "api")
	if err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// submitKey: POST /v1/key-rotations/{provider}/key with {"key","operator"};
// 200 {"valid","reason"} once the provider was asked; 409 when the rotation
// is not waiting for a key or the key's form is wrong.
func (s *Server) submitKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key      string `json:"key"`
		Operator string `json:"operator"`
	}
	if !decodeJSON(w, r, smallBodyLimit, &body) {
		return
	}
	if body.Key == "" {
		writeError(w, http.StatusUnprocessableEntity, "missing_key", `"key" is required`)
		return
	}
	if body.Operator == "" {
		body.Operator = "api"
	}
	if err := contract.ValidateOperator(body.Operator); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_operator", err.Error())
		return
	}
	res, err := s.deps.Starter.SubmitKey(r.Context(), r.PathValue("provider"),
		contract.SubmitKeyInput{Secret: body.Key, Operator: body.Operator})
	if err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// confirmRevoked: POST /v1/key-rotations/{provider}/revoked → 202 once the
// rotation took the operator's word that the old key is revoked.
func (s *Server) confirmRevoked(w http.ResponseWriter, r *http.Request) {
	if err := s.deps.Starter.ConfirmOldKeyRevoked(r.Context(), r.PathValue("provider"), "api"); err != nil {
		s.starterError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"provider": r.PathValue("provider"), "status": "revoked"})
}

// collectToken: POST /v1/key-rotations/crmflow/token → 200 {"token",
// "version"}: the rotated start-API token, handed out once.
func (s *Server) collectToken(w http.ResponseWriter, r *http.Request) {
	tok, err := s.deps.Starter.CollectToken(r.Context(), "api")
	if err != nil {
		s.starterError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tok)
}
