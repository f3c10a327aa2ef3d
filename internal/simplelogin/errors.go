package simplelogin

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// DefaultRateLimitBackoff is the wait given to a 429 that carries no
// Retry-After, which is every 429 from the hosted service: SimpleLogin
// configures no rate-limit headers. Alias creation is limited to 5 a minute
// per egress IP (one every 12 s, shared by every user of the backend), and
// the per-user creation lock answers 429 at once and expires within 5 s, so
// 12 s lets either limit clear before the next attempt.
const DefaultRateLimitBackoff = 12 * time.Second

// Error is a non-2xx answer from SimpleLogin. Branch on StatusCode (or on
// ErrAliasNotFound with errors.Is); Message is for people, and SimpleLogin
// says it may be shown to users as is (a quota message, for example).
type Error struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Message is the "error" field of SimpleLogin's {"error": "..."} body; for
	// a body of another shape it is the start of the body, or the status text.
	Message string
	// RetryAfter is how long to wait before trying again: the Retry-After
	// header when the server sent one, DefaultRateLimitBackoff for a 429
	// without it, zero otherwise.
	RetryAfter time.Duration

	// fromAPI is true when the body had SimpleLogin's error shape, so that a
	// proxy's 404 page is not mistaken for SimpleLogin's answer about an alias.
	fromAPI bool
}

// Error describes the failure without any credential.
func (e *Error) Error() string {
	var note string
	if e.RetryAfter > 0 {
		note = "retry after " + e.RetryAfter.String()
	}
	return providerhttp.ErrorText("simplelogin", e.StatusCode, "", e.Message, note)
}

// Temporary reports whether the same request may succeed later: rate limited
// (429), request timeout (408) or a server-side failure (5xx).
func (e *Error) Temporary() bool { return providerhttp.Temporary(e.StatusCode) }

// HTTPStatus is StatusCode, for providerhttp.StatusError.
func (e *Error) HTTPStatus() int { return e.StatusCode }

// RetryDelay is RetryAfter, for providerhttp.StatusError.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }

// routerNotFound is the message of SimpleLogin's 404 handler for /api/*: the
// path matched no route, which says nothing about any alias.
const routerNotFound = "No such endpoint"

// errorBody is SimpleLogin's error shape on every 4xx (docs/api.md).
type errorBody struct {
	Error *string `json:"error"`
}

// decodeError builds the *Error for a non-2xx response (the Provider's
// DecodeError); it never fails, because an unreadable body must not hide the
// status. A 429 without Retry-After already carries DefaultRateLimitBackoff.
func decodeError(r *providerhttp.ErrorResponse) error {
	e := &Error{StatusCode: r.StatusCode, RetryAfter: r.RetryAfter}
	var body errorBody
	var msg string
	if json.Unmarshal(r.Body, &body) == nil && body.Error != nil {
		msg, e.fromAPI = *body.Error, true
	}
	e.Message = r.Message(msg, e.fromAPI)
	return e
}

// aliasMissing reports whether err is SimpleLogin saying that the alias read
// by GET /api/aliases/{id} does not exist. The server answers 400 "Unknown
// error" for that (app/api/views/alias.py), not 404; a 404 is accepted too,
// for servers that do answer it, unless it is the router's "No such endpoint",
// which means a wrong base URL rather than a missing alias.
func aliasMissing(err error) bool {
	var e *Error
	if !errors.As(err, &e) || !e.fromAPI {
		return false
	}
	switch e.StatusCode {
	case http.StatusBadRequest:
		return true
	case http.StatusNotFound:
		return e.Message != routerNotFound
	}
	return false
}
