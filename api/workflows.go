package api

import (
	"net/http"

	"github.com/crmflow/crmflow/internal/httpserver"
)

// workflowStatus: GET /v1/workflows/{workflowID...} answers the status query.
func (a *API) workflowStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("workflowID")
	st, err := a.deps.Starter.Status(r.Context(), id)
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"workflow_id": id, "status": st})
}
