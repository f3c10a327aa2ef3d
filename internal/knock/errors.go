package knock

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a non-2xx answer from Knock. Branch on StatusCode and Code; Message
// is for people and may change.
type Error struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Code is Knock's machine-readable code, such as "api_key_missing";
	// empty when the body did not carry one.
	Code string
	// Type groups codes, such as "authentication_error".
	Type string
	// Message explains the error; for a body that is not Knock's JSON it is
	// the start of the body, or the status text.
	Message string
	// RetryAfter is how long Knock asked the caller to wait (Retry-After-Ms
	// or Retry-After); zero when it did not say.
	RetryAfter time.Duration
	// RequestID is Knock's x-request-id, for support requests.
	RequestID string
}

// Error describes the failure without any credential.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "knock: HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
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

// maxRetryAfter caps a provider's wait so that absurd values cannot overflow
// a time.Duration; a day is already beyond any activity's patience.
const maxRetryAfter = 24 * time.Hour

// maxMessageLen keeps a proxy's HTML error page from flooding error strings.
const maxMessageLen = 256

// errorBody is every error shape Knock is known to answer with: its API
// errors ({code, message, status, type}) and its router's
// ({"errors": {"detail": ...}}) for paths it does not know.
type errorBody struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Errors  json.RawMessage `json:"errors"`
}

// decodeError builds the *Error for a non-2xx response; it never fails,
// because an unreadable body must not hide the status.
func (c *Client) decodeError(resp *http.Response) *Error {
	e := &Error{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: parseRetryAfter(resp.Header, time.Now()),
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body errorBody
	switch {
	case json.Unmarshal(raw, &body) == nil && (body.Code != "" || body.Message != "" || len(body.Errors) > 0):
		e.Code, e.Type, e.Message = body.Code, body.Type, body.Message
		if e.Message == "" {
			e.Message = routerDetail(body.Errors)
		}
	default:
		e.Message = strings.TrimSpace(string(raw))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.Message = truncate(e.Message, maxMessageLen)
	if c.apiKey != "" {
		// Knock does not echo keys, but a proxy in between might.
		e.Message = strings.ReplaceAll(e.Message, c.apiKey, "[redacted]")
	}
	return e
}

// routerDetail extracts the message of the router's error shape, falling back
// to the raw JSON for shapes not seen yet.
func routerDetail(raw json.RawMessage) string {
	var obj struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Detail != "" {
		return obj.Detail
	}
	return string(raw)
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

// parseRetryAfter reads how long Knock asks us to wait. Knock's docs promise
// neither header; Retry-After-Ms (a Stainless convention, finer grained) wins
// over Retry-After, which may be seconds or an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && !math.IsInf(ms, 0) {
			return capRetryAfter(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return capRetryAfter(float64(secs) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// capRetryAfter converts nanoseconds held in a float, clamping before the
// conversion so that a huge value cannot overflow.
func capRetryAfter(ns float64) time.Duration {
	if ns >= float64(maxRetryAfter) {
		return maxRetryAfter
	}
	return time.Duration(ns)
}
