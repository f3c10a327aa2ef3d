package providerhttp

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Failures every provider client can report. A provider package declares its
// own sentinels wrapping these (fmt.Errorf("knock: %w", ErrNoAPIKey)), so that
// its callers match the provider's and Classify matches any provider's.
var (
	// ErrNoAPIKey: a client that is not in console mode has no API key, so
	// nothing was sent.
	ErrNoAPIKey = errors.New("no API key configured")
	// ErrNoActiveKey: the key func (WithAPIKeyFunc) of a client that is not
	// in console mode returned no key, because the credential store holds
	// no active one (never stored, or revoked), so nothing was sent. The
	// error carries the provider's ErrNoAPIKey too. Unlike a client built
	// without any key, which is a wiring mistake, this is a provider that
	// is configured and has lost its key: an operator must store one.
	ErrNoActiveKey = errors.New("the key source holds no active key")
	// ErrInvalidParams: the client refused to send a call the provider would
	// reject, or could not answer reliably. Retrying cannot fix it.
	ErrInvalidParams = errors.New("invalid parameters")
	// ErrNotFound: the provider said, in its own way, that the thing the call
	// acts on does not exist.
	ErrNotFound = errors.New("not found")
)

// MaxRetryAfter caps a provider's wait so that absurd values cannot overflow
// a time.Duration; a day is already beyond any activity's patience.
const MaxRetryAfter = 24 * time.Hour

// MaxMessageLen keeps a proxy's HTML error page from flooding error strings.
const MaxMessageLen = 256

// redacted stands where a key was found in a message.
const redacted = "[redacted]"

// ErrorResponse is a non-2xx answer, as handed to Provider.DecodeError.
type ErrorResponse struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header is the response's header, for request ids and the like.
	Header http.Header
	// Body is the start of the body (up to 64 KiB); it may hold anything,
	// including a key echoed by a proxy, so build messages with Message.
	Body []byte
	// RetryAfter is how long the provider asked the caller to wait, capped at
	// MaxRetryAfter; Provider.RateLimitBackoff for a 429 that did not say;
	// else zero.
	RetryAfter time.Duration

	// secrets are scrubbed from Message: the key sent and the static key.
	secrets []string
}

// Message is the message for the provider's error: apiMessage when the body
// had the provider's error shape (fromAPI), else the trimmed body, and the
// status text when that is empty; every key the client knows is redacted and
// the result cut to MaxMessageLen.
func (r *ErrorResponse) Message(apiMessage string, fromAPI bool) string {
	msg := apiMessage
	if !fromAPI {
		msg = strings.TrimSpace(string(r.Body))
	}
	if msg == "" {
		msg = http.StatusText(r.StatusCode)
	}
	// Scrub before truncating, so that a key cut in half by the truncation
	// cannot survive as a prefix.
	return Truncate(Scrub(msg, r.secrets...), MaxMessageLen)
}

// decodeError builds the provider's error for a non-2xx response; it never
// fails, because an unreadable body must not hide the status.
func (c *Client) decodeError(resp *http.Response, key string) error {
	// A read error leaves what was read; the status is the part that matters.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	r := &ErrorResponse{
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		Body:       raw,
		RetryAfter: c.retryAfter(resp.StatusCode, resp.Header, time.Now()),
		// The providers do not echo keys, but a proxy in between might.
		secrets: []string{key, c.settings.apiKey},
	}
	return c.provider.DecodeError(r)
}

// retryAfter is the provider's requested wait for a response.
func (c *Client) retryAfter(status int, h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if c.provider.RetryAfterMs {
		d = RetryAfterMs(h)
	}
	if d == 0 {
		d = RetryAfter(h, now)
	}
	if d == 0 && status == http.StatusTooManyRequests {
		d = c.provider.RateLimitBackoff
	}
	return d
}

// ErrorText renders a provider's answer alike for every client, such as
// "knock: HTTP 429 rate_limit_exceeded: Too many requests (request req_1)";
// code, message and note are left out when empty. It adds nothing the caller
// did not pass, so no credential can get into it.
func ErrorText(provider string, status int, code, message, note string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", provider, status)
	if code != "" {
		b.WriteString(" " + code)
	}
	if message != "" {
		b.WriteString(": " + message)
	}
	if note != "" {
		b.WriteString(" (" + note + ")")
	}
	return b.String()
}

// Temporary reports whether a request answered with status may succeed
// later: rate limited (429), request timeout (408) or a server-side failure
// (5xx). The provider clients' Error.Temporary methods answer with it.
func Temporary(status int) bool {
	return status == http.StatusTooManyRequests ||
		status == http.StatusRequestTimeout ||
		status >= 500
}

// Scrub replaces every non-empty secret in s with "[redacted]".
func Scrub(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// Truncate shortens s to at most n bytes without splitting a rune, marking
// the cut with an ellipsis.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// RetryAfter reads the Retry-After header, in seconds or as an HTTP date
// relative to now, capped at MaxRetryAfter. It is zero when the header is
// absent, unreadable, zero, negative or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
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
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// RetryAfterMs reads the Retry-After-Ms header (milliseconds, possibly
// fractional; a Stainless convention finer grained than Retry-After), capped
// at MaxRetryAfter. It is zero when the header is absent, unreadable or not
// positive.
func RetryAfterMs(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After-Ms"))
	if v == "" {
		return 0
	}
	ms, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(ms) || ms <= 0 || math.IsInf(ms, 0) {
		return 0
	}
	return capRetryAfter(ms * float64(time.Millisecond))
}

// capRetryAfter converts nanoseconds held in a float, clamping before the
// conversion so that a huge value cannot overflow.
func capRetryAfter(ns float64) time.Duration {
	if ns >= float64(MaxRetryAfter) {
		return MaxRetryAfter
	}
	return time.Duration(ns)
}
