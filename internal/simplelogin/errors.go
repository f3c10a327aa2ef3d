package simplelogin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	var b strings.Builder
	fmt.Fprintf(&b, "simplelogin: HTTP %d", e.StatusCode)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: rate limited
// (429), request timeout (408) or a server-side failure (5xx).
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode == http.StatusRequestTimeout ||
		e.StatusCode >= 500
}

// maxRetryAfter caps a server's wait so that absurd values cannot overflow a
// time.Duration; a day is already beyond any activity's patience.
const maxRetryAfter = 24 * time.Hour

// maxMessageLen keeps a proxy's HTML error page from flooding error strings.
const maxMessageLen = 256

// routerNotFound is the message of SimpleLogin's 404 handler for /api/*: the
// path matched no route, which says nothing about any alias.
const routerNotFound = "No such endpoint"

// errorBody is SimpleLogin's error shape on every 4xx (docs/api.md).
type errorBody struct {
	Error *string `json:"error"`
}

// decodeError builds the *Error for a non-2xx response; it never fails,
// because an unreadable body must not hide the status.
func (c *Client) decodeError(resp *http.Response) *Error {
	e := &Error{
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header, time.Now()),
	}
	if e.StatusCode == http.StatusTooManyRequests && e.RetryAfter == 0 {
		e.RetryAfter = DefaultRateLimitBackoff
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body errorBody
	if json.Unmarshal(raw, &body) == nil && body.Error != nil {
		e.Message, e.fromAPI = *body.Error, true
	} else {
		e.Message = strings.TrimSpace(string(raw))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.Message = truncate(e.Message, maxMessageLen)
	if c.apiKey != "" {
		// SimpleLogin does not echo keys, but a proxy in between might.
		e.Message = strings.ReplaceAll(e.Message, c.apiKey, "[redacted]")
	}
	return e
}

// statusOf returns the HTTP status of an *Error in err's chain, or 0.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
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

// truncate shortens s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// parseRetryAfter reads Retry-After, in seconds or as an HTTP date. The
// hosted service does not send it, but a self-hosted one behind a proxy, or
// the proxy itself, may.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs >= int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}
