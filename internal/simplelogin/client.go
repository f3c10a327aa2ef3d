// Package simplelogin is a small typed client for the parts of SimpleLogin's
// REST API that crmflow uses: the key check (user_info), alias options,
// random and custom alias creation, reading, listing, toggling and deleting
// aliases, and the mailboxes aliases forward to (listing, creating, pointing
// an alias at them, deleting).
//
// SimpleLogin publishes no Go SDK and its API has no idempotency keys, and
// toggling an alias flips its state. The helpers FindByNote, SetEnabled and
// DeleteIfExists give callers that retry (Temporal activities) idempotent
// semantics on top: look before creating, set a state instead of flipping it,
// and count "already gone" as deleted.
//
// Paths, parameters and status codes follow simple-login/app's docs/api.md
// and server code, which win over the unofficial OpenAPI spec where the two
// differ; each difference is noted where it matters.
//
// A Client built with NewConsole sends nothing: it hands every call to a
// Recorder and answers from memory, so crmflow runs end to end on a machine
// with no SimpleLogin API key.
//
// It is a library: it imports internal/providerhttp only.
package simplelogin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// DefaultBaseURL is SimpleLogin's hosted origin; request paths carry the /api
// prefix.
const DefaultBaseURL = "https://app.simplelogin.io"

// DefaultTimeout bounds one HTTP exchange when no *http.Client is given, so a
// stalled connection cannot hold an activity until its own timeout.
const DefaultTimeout = providerhttp.DefaultTimeout

// PageSize is how many aliases SimpleLogin returns per list page
// (PAGE_LIMIT in simple-login/app's config). A shorter page is the last one:
// the list answer carries no has_more flag.
const PageSize = 20

var (
	// ErrNoAPIKey is returned, before anything is sent, by a non-console
	// client that has no API key; use NewConsole when no key is configured.
	ErrNoAPIKey = fmt.Errorf("simplelogin: %w", providerhttp.ErrNoAPIKey)
	// ErrInvalidParams marks a call the client refused to send because
	// SimpleLogin would reject it or because it could not be answered
	// reliably. Retrying cannot fix it.
	ErrInvalidParams = fmt.Errorf("simplelogin: %w", providerhttp.ErrInvalidParams)
	// ErrAliasNotFound is matched (errors.Is) by errors for an alias that does
	// not exist for this account, and by FindByNote when no alias carries the
	// marker. SimpleLogin has no single "not found" answer (see GetAlias), so
	// callers should test for this instead of a status code.
	ErrAliasNotFound = fmt.Errorf("simplelogin: alias %w", providerhttp.ErrNotFound)
)

// simpleLoginAPI is what sets SimpleLogin apart on the wire: the key as it is
// in the Authentication header, its {"error": ...} bodies, and a default wait
// for its 429s, which never say when to come back.
var simpleLoginAPI = providerhttp.Provider{
	Name:             "simplelogin",
	BaseURL:          DefaultBaseURL,
	BasePath:         "/api",
	Auth:             providerhttp.HeaderAuth("Authentication"),
	DecodeError:      decodeError,
	RateLimitBackoff: DefaultRateLimitBackoff,
	ErrNoAPIKey:      ErrNoAPIKey,
	ErrInvalidParams: ErrInvalidParams,
}

// Client calls SimpleLogin's API. It is safe for concurrent use.
type Client struct {
	api     *providerhttp.Client
	console *consoleState
}

// ClientOption configures a Client built by NewClient. The options are
// providerhttp's, handed out under this package's names so that callers need
// import only simplelogin.
type ClientOption = providerhttp.Option

// WithAPIKey sets the API key, sent in the Authentication header (not
// Authorization, and without a Bearer prefix: that is what SimpleLogin reads).
func WithAPIKey(key string) ClientOption { return providerhttp.WithAPIKey(key) }

// WithAPIKeyFunc makes the client ask fn for the API key on every request
// (it wins over WithAPIKey), so a key rotated in a credential store is used
// without a restart. A "" key is recorded by a client WithConsole and fails
// with ErrNoAPIKey otherwise; an error from fn fails the request, retryably,
// with nothing sent. See providerhttp.WithAPIKeyFunc.
func WithAPIKeyFunc(fn func(ctx context.Context) (string, error)) ClientOption {
	return providerhttp.WithAPIKeyFunc(fn)
}

// WithBaseURL points the client at another SimpleLogin origin, such as a
// self-hosted server or a test server. A trailing "/api" is accepted and
// dropped, because the unofficial spec gives the server URL with it while
// request paths here already carry it.
func WithBaseURL(u string) ClientOption { return providerhttp.WithBaseURL(u) }

// WithHTTPClient sets the *http.Client used for requests; its Timeout is kept
// unless WithTimeout is also given.
func WithHTTPClient(hc *http.Client) ClientOption { return providerhttp.WithHTTPClient(hc) }

// WithTimeout bounds each HTTP exchange (DefaultTimeout when unset). The
// request's context still applies, whichever ends first.
func WithTimeout(d time.Duration) ClientOption { return providerhttp.WithTimeout(d) }

// WithConsole makes the client send nothing and hand every call to rec
// instead; see NewConsole.
func WithConsole(rec Recorder) ClientOption { return providerhttp.WithConsole(rec) }

// NewClient builds a client for SimpleLogin's API.
func NewClient(opts ...ClientOption) *Client {
	c := &Client{api: providerhttp.New(simpleLoginAPI, opts...)}
	if c.api.Console() {
		c.console = newConsoleState()
	}
	return c
}

// NewConsole builds a client for when no API key is configured: it sends
// nothing, records every call with rec (a LogRecorder when rec is nil) and
// answers from an in-memory account with clearly fake results, such as the
// alias console-<id>@simplelogin.invalid, whose id no restart repeats.
func NewConsole(rec Recorder) *Client {
	return NewClient(WithConsole(rec))
}

// Console reports whether the client records calls instead of sending them.
// With WithAPIKeyFunc it reports only that calls made while the func returns
// no key are recorded: calls made while it returns one are sent.
func (c *Client) Console() bool { return c.api.Console() }
