// Package knock is a small typed client for the parts of Knock's REST API that
// crmflow uses: triggering and cancelling workflows and identifying users.
//
// Knock's official Go SDK is not available to this build, so the call sites
// are shaped like it (client.Workflows.Trigger(ctx, key, params, opts...));
// swapping the SDK in later should touch only the file that builds the client
// and the activities that call it.
//
// A Client built with NewConsole sends nothing: it hands every call to a
// Recorder, so crmflow runs end to end on a machine with no Knock API key.
package knock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is Knock's API origin; request paths carry the /v1 prefix.
const DefaultBaseURL = "https://api.knock.app"

// DefaultTimeout bounds one HTTP exchange when no *http.Client is given, so a
// stalled connection cannot hold an activity until its own timeout.
const DefaultTimeout = 10 * time.Second

// MaxIdempotencyKeyLen is the longest Idempotency-Key Knock accepts.
const MaxIdempotencyKeyLen = 255

// userAgent names crmflow in Knock's logs, which helps when asking their
// support about a request.
const userAgent = "crmflow"

// Size limits for response bodies: Knock's answers are small, and an error
// page from a proxy should not be read into memory whole.
const (
	maxResponseBytes = 1 << 20
	maxErrorBytes    = 64 << 10
)

var (
	// ErrNoAPIKey is returned, before anything is sent, by a non-console
	// client that has no API key; use NewConsole when no key is configured.
	ErrNoAPIKey = errors.New("knock: no API key configured")
	// ErrInvalidParams marks a call the client refused to send because Knock
	// would reject it (empty key, over-long idempotency key, unencodable data).
	// Retrying cannot fix it.
	ErrInvalidParams = errors.New("knock: invalid parameters")
)

// Client calls Knock's API. It is safe for concurrent use.
type Client struct {
	// Workflows triggers and cancels Knock workflows.
	Workflows *WorkflowsService
	// Users identifies (creates or updates) Knock users.
	Users *UsersService

	apiKey     string
	keyFunc    func(ctx context.Context) (string, error)
	baseURL    string
	httpClient *http.Client
	timeout    time.Duration
	recorder   Recorder
	consoleSeq atomic.Int64
}

// ClientOption configures a Client built by NewClient.
type ClientOption func(*Client)

// WithAPIKey sets the secret key (sk_...) sent as a bearer token.
func WithAPIKey(key string) ClientOption {
	return func(c *Client) { c.apiKey = key }
}

// WithAPIKeyFunc makes the client ask fn for the API key on every request,
// so a key rotated in a credential store is used without a restart. It wins
// over WithAPIKey. When fn returns "" the request is treated as having no key:
// a client with WithConsole records it instead of sending it, any other client
// fails it with ErrNoAPIKey. An error from fn fails the request, wrapped, with
// nothing sent; it is neither ErrNoAPIKey nor ErrInvalidParams, so callers
// can retry it. The key is never logged or recorded.
func WithAPIKeyFunc(fn func(ctx context.Context) (string, error)) ClientOption {
	return func(c *Client) { c.keyFunc = fn }
}

// WithBaseURL points the client at another Knock origin, such as a test
// server. A trailing "/v1" is accepted and dropped, because Knock's docs give
// the base URL with it while request paths here already carry it.
func WithBaseURL(u string) ClientOption {
	return func(c *Client) {
		u = strings.TrimRight(u, "/")
		c.baseURL = strings.TrimSuffix(u, "/v1")
	}
}

// WithHTTPClient sets the *http.Client used for requests; its Timeout is kept
// unless WithTimeout is also given.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) { c.httpClient = hc }
}

// WithTimeout bounds each HTTP exchange (DefaultTimeout when unset). The
// request's context still applies, whichever ends first.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *Client) { c.timeout = d }
}

// WithConsole makes the client send nothing and hand every call to rec
// instead; see NewConsole.
func WithConsole(rec Recorder) ClientOption {
	return func(c *Client) {
		if rec == nil {
			rec = LogRecorder{}
		}
		c.recorder = rec
	}
}

// NewClient builds a client for Knock's API.
func NewClient(opts ...ClientOption) *Client {
	c := &Client{baseURL: DefaultBaseURL}
	for _, opt := range opts {
		opt(c)
	}
	switch {
	case c.httpClient == nil:
		timeout := c.timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		c.httpClient = &http.Client{Timeout: timeout}
	case c.timeout > 0:
		// Copy rather than mutate: the caller may share its client.
		hc := *c.httpClient
		hc.Timeout = c.timeout
		c.httpClient = &hc
	}
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
func (c *Client) Console() bool { return c.recorder != nil }

// call is one request to Knock, described before it is sent or recorded.
type call struct {
	method         string
	path           string
	body           any
	idempotencyKey string
}

// send performs r, decoding a 2xx answer into out when out is non-nil. In
// console mode it records r instead and reports recorded, so the caller can
// make up a result.
func (c *Client) send(ctx context.Context, r call, out any) (recorded bool, err error) {
	body, err := encodeBody(r.body)
	if err != nil {
		return false, err
	}
	key, err := c.requestKey(ctx)
	if err != nil {
		return false, err
	}
	if key == "" && c.recorder != nil {
		rec := Call{Method: r.method, Path: r.path, Body: body, IdempotencyKey: r.idempotencyKey}
		if err := c.recorder.Record(ctx, rec); err != nil {
			return true, fmt.Errorf("record console call: %w", err)
		}
		return true, nil
	}
	if key == "" {
		return false, ErrNoAPIKey
	}

	req, err := http.NewRequestWithContext(ctx, r.method, c.baseURL+r.path, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		// *url.Error carries the method and URL, never the headers, so the
		// key cannot leak through it.
		return false, fmt.Errorf("send request: %w", err)
	}
	defer func() {
		// Drain what is left so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := c.decodeError(resp)
		// decodeError redacts the static key; redact the one sent, too.
		e.Message = strings.ReplaceAll(e.Message, key, "[redacted]")
		return false, e
	}
	if out == nil {
		return false, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
		return false, fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
	}
	return false, nil
}

// requestKey returns the key for one request: from the key func when one is
// set, else the static key, except that a console client without a key func
// records every call (""), as it always has.
func (c *Client) requestKey(ctx context.Context) (string, error) {
	if c.keyFunc == nil {
		if c.recorder != nil {
			return "", nil
		}
		return c.apiKey, nil
	}
	key, err := c.keyFunc(ctx)
	if err != nil {
		return "", fmt.Errorf("knock: read API key: %w", err)
	}
	return key, nil
}

// encodeBody renders v as the exact JSON that is sent or recorded. HTML
// escaping is off so console logs show URLs in data as written.
func encodeBody(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode body: %w: %w", ErrInvalidParams, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
