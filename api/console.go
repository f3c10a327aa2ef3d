package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/callstats"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
)

// The operator console at /console/: one server-rendered page of the
// integrations' health, the inbox, the parked runs and the key rotations,
// with the operator's actions as plain HTML forms. An operator signs in by
// pasting their operator token once; the session cookie is bound to that
// token's version, and every form carries the session's CSRF token.

//go:embed console
var consoleFiles embed.FS

// consoleTemplates are the console's pages.
var consoleTemplates = template.Must(template.New("").Funcs(consoleFuncs).ParseFS(consoleFiles, "console/*.html"))

// Cookie names of the console. The session cookie holds a random id whose
// SHA-256 is the stored session's key; the login cookie holds the CSRF
// token of the sign-in form (nobody is signed in yet to bind it to).
const (
	consoleSessionCookie = "crmflow_console"
	consoleLoginCookie   = "crmflow_console_login"
	consolePath          = "/console/"
)

// DefaultConsoleSessionTTL is how long a console session lasts at most.
const DefaultConsoleSessionTTL = 12 * time.Hour

// ConsoleDeps are what the console needs besides the API's own Deps; every
// field is optional unless noted.
type ConsoleDeps struct {
	// Tokens tells whether the operator token a session is bound to is
	// still valid (credentials.Store implements it). Required.
	Tokens TokenVersions
	// Keys lists the provider keys' versions, without secrets, for their
	// age (credentials.Store implements it). Required.
	Keys KeyVersions
	// InboxStats counts the inbox (inbox.Store implements it). Required.
	InboxStats InboxStats
	// Calls reads the integrations' call statistics; nil reads them from
	// the store's pool.
	Calls func(ctx context.Context, now time.Time) (map[string]*callstats.Summary, error)
	// ConsoleProviders are the providers in console mode (calls recorded,
	// not sent).
	ConsoleProviders []string
	// TemporalUIURL is the Temporal UI's base URL, e.g.
	// "http://127.0.0.1:8233"; without it parked runs link nowhere.
	TemporalUIURL string
	// Namespace is the Temporal namespace the runs are in.
	Namespace string
	// SessionTTL bounds a session; 0 means DefaultConsoleSessionTTL.
	SessionTTL time.Duration
	// SecureCookies sets Secure on the cookies even when the request did
	// not come over TLS (TLS ends at a proxy in front of crmflow).
	SecureCookies bool
}

// TokenVersions reads the operator token versions valid now.
type TokenVersions interface {
	Valid(ctx context.Context, provider, name string) ([]credentials.Credential, error)
}

// KeyVersions lists a key's versions without decrypting them.
type KeyVersions interface {
	Versions(ctx context.Context, provider, name string) ([]credentials.Credential, error)
}

// InboxStats are the inbox's counts the console shows.
type InboxStats interface {
	Backlog(ctx context.Context) (inbox.Backlog, error)
	Counts(ctx context.Context) ([]inbox.Count, error)
}

// console serves /console/.
type console struct {
	a    *API
	deps ConsoleDeps
}

// registerConsole adds the console's routes to mux.
func (a *API) registerConsole(mux *http.ServeMux, deps ConsoleDeps) {
	if deps.SessionTTL <= 0 {
		deps.SessionTTL = DefaultConsoleSessionTTL
	}
	if deps.Calls == nil {
		pool := a.deps.Store.Pool()
		deps.Calls = func(ctx context.Context, now time.Time) (map[string]*callstats.Summary, error) {
			return callstats.Read(ctx, pool, now)
		}
	}
	c := &console{a: a, deps: deps}
	page := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, httpserver.Bounded(timeout, consoleHeaders(h)))
	}
	static, _ := fs.Sub(consoleFiles, "console/static") // the directory is embedded above
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.Handle("GET /console", http.RedirectHandler(consolePath, http.StatusMovedPermanently))
	page("GET /console/{$}", c.index)
	page("POST /console/login", c.login)
	page("POST /console/logout", c.signedIn(c.logout))
	page("POST /console/dead-letters/{id}/{action}", c.signedIn(c.decide))
	page("POST /console/inbox/{id}/replay", c.signedIn(c.replay))
	page("POST /console/rotations/{provider}/key", c.signedIn(c.submitKey))
	page("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "No such page.")
	})
}

// consoleHeaders keeps the console's pages out of caches and frames, and
// lets them load nothing but the console's own stylesheet.
func consoleHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: under no-referrer browsers send a
		// form's POST with "Origin: null", which sameOrigin must refuse.
		// Links away (the Temporal UI) still carry no referrer.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// session is a signed-in operator's session, as a request presents it.
type session struct {
	store.ConsoleSession
	idHash []byte
}

type sessionKey struct{}

// sessionOf is the session signedIn found.
func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// errNoSession is a request without a usable session: none, unknown,
// expired, or bound to a token version no longer valid.
var errNoSession = errors.New("not signed in")

// session finds r's session. It is errNoSession when there is none
// usable, and another error when the session or token store cannot be
// read. A session whose token version is no longer valid is deleted.
func (c *console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(consoleSessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errNoSession
	}
	sum := sha256.Sum256([]byte(ck.Value))
	s := &session{idHash: sum[:]}
	s.ConsoleSession, err = c.a.deps.Store.GetConsoleSession(r.Context(), s.idHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	valid, err := c.deps.Tokens.Valid(r.Context(), credentials.OperatorTokenProvider, s.Operator)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(valid, func(cr credentials.Credential) bool { return cr.Version == s.CredentialVersion }) {
		// Revoked, or retired after a rotation: the session ends with it.
		_ = c.a.deps.Store.DeleteConsoleSession(r.Context(), s.idHash)
		return nil, errNoSession
	}
	return s, nil
}

// signedIn lets a form's POST through only from the console itself (same
// origin, the session's CSRF token) with a valid session; without one it
// shows the sign-in form (401).
func (c *console) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			c.fail(w, r, nil, http.StatusForbidden, "Cross-site request refused.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, smallBodyLimit)
		s, err := c.session(r)
		if errors.Is(err, errNoSession) {
			c.signInForm(w, r, http.StatusUnauthorized, "Sign in first.")
			return
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if got := r.PostFormValue("csrf"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			c.fail(w, r, s, http.StatusForbidden, "The form's CSRF token is missing or wrong; reload the console and try again.")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	}
}

// sameOrigin refuses what a browser marks as sent from another site: a
// Sec-Fetch-Site other than same-origin (or none, typed by the user), or
// an Origin that is not this host. Clients that send neither header are
// held to the CSRF token alone.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// index is the console, or the sign-in form without a session.
func (c *console) index(w http.ResponseWriter, r *http.Request) {
	s, err := c.session(r)
	if errors.Is(err, errNoSession) {
		c.signInForm(w, r, http.StatusOK, "")
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "console.html", c.pageData(r, s))
}

// signInForm shows the sign-in form with a fresh login CSRF token, in a
// cookie and in the form: the login POST must carry both.
func (c *console) signInForm(w http.ResponseWriter, r *http.Request, status int, message string) {
	token := randomToken()
	http.SetCookie(w, c.cookie(r, consoleLoginCookie, token, consolePath+"login", 10*time.Minute))
	c.render(w, status, "signin.html", map[string]any{"CSRF": token, "Message": message})
}

// login: POST /console/login with the fields token and csrf. A valid
// operator token starts a session bound to its version.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.fail(w, r, nil, http.StatusForbidden, "Cross-site request refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, smallBodyLimit)
	ck, err := r.Cookie(consoleLoginCookie)
	got := r.PostFormValue("csrf")
	if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ck.Value)) != 1 {
		c.signInForm(w, r, http.StatusForbidden, "The sign-in form expired; paste your token again.")
		return
	}
	p, err := c.a.deps.Auth.Authenticate(r.Context(), r.PostFormValue("token"))
	switch {
	case errors.Is(err, credentials.ErrUnauthenticated):
		c.signInForm(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	case err != nil:
		c.unavailable(w, r, err)
		return
	case p.Scope < credentials.ScopeOperator:
		c.signInForm(w, r, http.StatusForbidden, "The console needs an operator token; that one is a service token.")
		return
	}
	id := randomToken()
	sum := sha256.Sum256([]byte(id))
	expires := time.Now().Add(c.deps.SessionTTL)
	err = c.a.deps.Store.CreateConsoleSession(r.Context(), sum[:], store.ConsoleSession{
		Operator: p.Name, CredentialVersion: p.Version, CSRF: randomToken(), ExpiresAt: expires})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.a.audit(r.Context(), store.AuditEntry{Actor: p.Name, Action: "console.sign_in", Subject: p.Subject, Outcome: "ok"})
	http.SetCookie(w, c.cookie(r, consoleLoginCookie, "", consolePath+"login", -1))
	http.SetCookie(w, c.cookie(r, consoleSessionCookie, id, consolePath, c.deps.SessionTTL))
	http.Redirect(w, r, consolePath, http.StatusSeeOther)
}

// logout: POST /console/logout ends the session and clears its cookie.
func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	if err := c.a.deps.Store.DeleteConsoleSession(r.Context(), s.idHash); err != nil {
		c.unavailable(w, r, err)
		return
	}
	http.SetCookie(w, c.cookie(r, consoleSessionCookie, "", consolePath, -1))
	c.signInForm(w, r, http.StatusOK, "Signed out.")
}

// cookie is an HttpOnly, SameSite=Strict cookie, Secure over TLS; a
// negative maxAge deletes it.
func (c *console) cookie(r *http.Request, name, value, path string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || c.deps.SecureCookies}
	if maxAge < 0 {
		ck.MaxAge = -1
	} else {
		ck.MaxAge = int(maxAge.Seconds())
	}
	return ck
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// fail shows a refusal or an action's failure; s, when signed in, keeps
// the page's sign-out form.
func (c *console) fail(w http.ResponseWriter, _ *http.Request, s *session, status int, message string) {
	data := map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": message}
	if s != nil {
		data["Operator"], data["CSRF"] = s.Operator, s.CSRF
	}
	c.render(w, status, "message.html", data)
}

// unavailable answers 503 for a store or Temporal that cannot be read.
func (c *console) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	c.a.deps.Logger.Error("Console could not read its data", "error", err)
	c.fail(w, r, sessionOf(r.Context()), http.StatusServiceUnavailable, "crmflow cannot reach its database or Temporal right now; retry later.")
}

// render executes the named page.
func (c *console) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := consoleTemplates.ExecuteTemplate(w, name, data); err != nil {
		c.a.deps.Logger.Error("Console page failed to render", "page", name, "error", err)
	}
}
