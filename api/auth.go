package api

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/crmflow/crmflow/internal/httpserver"
)

// requireToken lets a request through only with a valid bearer token. Every
// token is compared in constant time, and all of them, so the answer's
// timing says nothing about which token was close.
func (a *API) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tokens, err := a.deps.Tokens(r.Context())
		if err != nil {
			a.storeError(w, err)
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
			httpserver.WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}
