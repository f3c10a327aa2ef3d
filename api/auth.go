package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
)

// Authenticator tells who a bearer token belongs to: a service or an
// operator (credentials.Store implements it, over every token valid now).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (credentials.Principal, error)
}

type principalKey struct{}

// principalOf is who made the request, as requireScope found.
func principalOf(ctx context.Context) credentials.Principal {
	p, _ := ctx.Value(principalKey{}).(credentials.Principal)
	return p
}

// Authorize checks r's bearer token for scope: nil and r's principal when
// the token is valid and its scope includes scope; otherwise the status,
// error code and message to answer (401 no or invalid token, 403 a valid
// token of a lesser scope, 503 the token store cannot be read). Every
// route of crmflow that needs a token checks it this way: the API, the
// codec endpoint, /readyz?verbose=1 and the console.
func Authorize(ctx context.Context, auth Authenticator, r *http.Request, scope credentials.Scope) (credentials.Principal, *Refusal) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return credentials.Principal{}, &Refusal{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"}
	}
	p, err := auth.Authenticate(ctx, got)
	switch {
	case errors.Is(err, credentials.ErrUnauthenticated):
		return p, &Refusal{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"}
	case err != nil:
		return p, &Refusal{http.StatusServiceUnavailable, "unavailable", "could not check the token; retry later"}
	case p.Scope < scope:
		return p, &Refusal{http.StatusForbidden, "forbidden", "this route needs an " + scope.String() + " token"}
	}
	return p, nil
}

// Refusal is why a request was not let through.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

// Write answers the refusal.
func (f *Refusal) Write(w http.ResponseWriter) {
	if f.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crmflow"`)
	}
	httpserver.WriteError(w, f.Status, f.Code, f.Message)
}

// requireScope lets a request through only with a valid token whose scope
// includes scope, and hands the handler who it is.
func (a *API) requireScope(scope credentials.Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, refused := Authorize(r.Context(), a.deps.Auth, r, scope)
		if refused != nil {
			if refused.Status == http.StatusServiceUnavailable {
				a.deps.Logger.Error("Token store unreadable; refusing the request")
			}
			refused.Write(w)
			return
		}
		if p.Pending && a.deps.TokenSeen != nil {
			// A rotation waits for its new token's first use before it
			// retires the old one.
			a.deps.TokenSeen(r.Context(), p)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// CodecAuthorizer lets any valid token decode payloads (backend services in
// any language read memos, queries and results through it; no secret is in
// a payload) and only operator tokens encode. A browser on one of
// trustedOrigins (the embedded Temporal UI of `crmflow dev`, which cannot
// send crmflow's token) is let in by its origin: a browser-enforced check,
// fit for a laptop only, so give none outside dev (temporal CLI:
// --codec-auth).
func CodecAuthorizer(auth Authenticator, trustedOrigins []string) codec.Authorizer {
	return func(r *http.Request, encode bool) error {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(trustedOrigins, origin) {
			return nil
		}
		scope := credentials.ScopeService
		if encode {
			scope = credentials.ScopeOperator
		}
		if _, refused := Authorize(r.Context(), auth, r, scope); refused != nil {
			return &codec.Denial{Status: refused.Status, Code: refused.Code, Message: refused.Message}
		}
		return nil
	}
}
