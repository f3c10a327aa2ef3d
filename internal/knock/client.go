// Package knock is a small typed client for the parts of Knock's REST API that
// crmflow uses: triggering and cancelling workflows, identifying and deleting
// users.
//
// Knock's official Go SDK is not available to this build, so the call sites
// are shaped like it (client.Workflows.Trigger(ctx, key, params, opts...));
// swapping the SDK in later should touch only the file that builds the client
// and the activities that call it.
//
// A Client built with NewConsole sends nothing: it hands every call to a
// Recorder, so crmflow runs end to end on a machine with no Knock API key.
//
// It is a library: it imports internal/providerhttp only.
package knock

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// DefaultBaseURL is Knock's API origin; request paths carry the /v1 prefix.
const DefaultBaseURL = "https://api.knock.app"

// DefaultTimeout bounds one HTTP exchange when no *http.Client is given, so a
// stalled connection cannot hold an activity until its own timeout.
const DefaultTimeout = providerhttp.DefaultTimeout

// MaxIdempotencyKeyLen is the longest Idempotency-Key Knock accepts.
const MaxIdempotencyKeyLen = 255

var (
	// ErrNoAPIKey is returned, before anything is sent, by a non-console
	// client that has no API key; use NewConsole when no key is configured.
	ErrNoAPIKey = fmt.Errorf("knock: %w", providerhttp.ErrNoAPIKey)
	// ErrInvalidParams marks a call the client refused to send because Knock
	// would reject it (empty key, over-long idempotency key, unencodable data).
	// Retrying cannot fix it.
	ErrInvalidParams = fmt.Errorf("knock: %w", providerhttp.ErrInvalidParams)
)

// knockAPI is what sets Knock apart on the wire: a bearer token, its error
// bodies, and Retry-After-Ms beside Retry-After.
var knockAPI = providerhttp.Provider{
	Name:             "knock",
	BaseURL:          DefaultBaseURL,
	BasePath:         "/v1",
	Auth:             providerhttp.BearerAuth,
	DecodeError:      decodeError,
	RetryAfterMs:     true,
	ErrNoAPIKey:      ErrNoAPIKey,
	ErrInvalidParams: ErrInvalidParams,
}

// Client calls Knock's API. It is safe for concurrent use.
type Client struct {
	// Workflows triggers and cancels Knock workflows.
	Workflows *WorkflowsService
	// Users identifies (creates or updates) and deletes Knock users.
	Users *UsersService

	api *providerhttp.Client
}

// ClientOption configures a Client built by NewClient. The options are
// providerhttp's, handed out under this package's names so that callers need
// import only knock.
type ClientOption = providerhttp.Option

// WithAPIKey sets the secret key (sk_...) sent as a bearer token.
func WithAPIKey(key string) ClientOption { return providerhttp.WithAPIKey(key) }

// WithAPIKeyFunc makes the client ask fn for the API key on every request
// (it wins over WithAPIKey), so a key rotated in a credential store is used
// without a restart. A "" key is recorded by a client WithConsole and fails
// with ErrNoAPIKey otherwise; an error from fn fails the request, retryably,
// with nothing sent. See providerhttp.WithAPIKeyFunc.
func WithAPIKeyFunc(fn func(ctx context.Context) (string, error)) ClientOption {
	return providerhttp.WithAPIKeyFunc(fn)
}

// WithBaseURL points the client at another Knock origin, such as a test
// server. A trailing "/v1" is accepted and dropped, because Knock's docs give
// the base URL with it while request paths here already carry it.
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

// NewClient builds a client for Knock's API.
func NewClient(opts ...ClientOption) *Client {
	c := &Client{api: providerhttp.New(knockAPI, opts...)}
	c.Workflows = &WorkflowsService{client: c}
	c.Users = &UsersService{client: c}
	return c
}

// NewConsole builds a client for when no API key is configured: it sends
// nothing, records every call with rec (a LogRecorder when rec is nil) and
// answers with clearly fake results such as the run id "console-1".
func NewConsole(rec Recorder) *Client {
	return NewClient(WithConsole(rec))
}

// Console reports whether the client records calls instead of sending them.
// With WithAPIKeyFunc it reports only that calls made while the func returns
// no key are recorded: calls made while it returns one are sent.
func (c *Client) Console() bool { return c.api.Console() }
