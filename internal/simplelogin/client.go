// Package simplelogin is a small typed client for the parts of SimpleLogin's
// REST API that crmflow uses: the key check (user_info), alias options,
// random and custom alias creation, reading, listing, toggling and deleting
// aliases.
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
package simplelogin

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

// DefaultBaseURL is SimpleLogin's hosted origin; request paths carry the /api
// prefix.
const DefaultBaseURL = "https://app.simplelogin.io"

// DefaultTimeout bounds one HTTP exchange when no *http.Client is given, so a
// stalled connection cannot hold an activity until its own timeout.
const DefaultTimeout = 10 * time.Second

// PageSize is how many aliases SimpleLogin returns per list page
// (PAGE_LIMIT in simple-login/app's config). A shorter page is the last one:
// the list answer carries no has_more flag.
const PageSize = 20

// userAgent names crmflow in SimpleLogin's logs, which helps when asking their
// support about a request.
const userAgent = "crmflow"

// Size limits for response bodies: SimpleLogin's answers are small, and an
// error page from a proxy should not be read into memory whole.
const (
	maxResponseBytes = 1 << 20
	maxErrorBytes    = 64 << 10
)

var (
	// ErrNoAPIKey is returned, before anything is sent, by a non-console
	// client that has no API key; use NewConsole when no key is configured.
	ErrNoAPIKey = errors.New("simplelogin: no API key configured")
	// ErrInvalidParams marks a call the client refused to send because
	// SimpleLogin would reject it or because it could not be answered
	// reliably. Retrying cannot fix it.
	ErrInvalidParams = errors.New("simplelogin: invalid parameters")
	// ErrAliasNotFound is matched (errors.Is) by errors for an alias that does
	// not exist for this account, and by FindByNote when no alias carries the
	// marker. SimpleLogin has no single "not found" answer (see GetAlias), so
	// callers should test for this instead of a status code.
	ErrAliasNotFound = errors.New("simplelogin: alias not found")
)

// Client calls SimpleLogin's API. It is safe for concurrent use.
type Client struct {
	apiKey     string
	keyFunc    func(ctx context.Context) (string, error)
	baseURL    string
	httpClient *http.Client
	timeout    time.Duration
	recorder   Recorder
	console    *consoleState
	consoleSeq atomic.Int64
}

// ClientOption configures a Client built by NewClient.
type ClientOption func(*Client)

// WithAPIKey sets the API key, sent in the Authentication header (not
// Authorization, and without a Bearer prefix: that is what SimpleLogin reads).
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

// WithBaseURL points the client at another SimpleLogin origin, such as a
// self-hosted server or a test server. A trailing "/api" is accepted and
// dropped, because the unofficial spec gives the server URL with it while
// request paths here already carry it.
func WithBaseURL(u string) ClientOption {
	return func(c *Client) {
		u = strings.TrimRight(u, "/")
		c.baseURL = strings.TrimSuffix(u, "/api")
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

// NewClient builds a client for SimpleLogin's API.
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
	if c.recorder != nil {
		c.console = newConsoleState()
	}
	return c
}

// NewConsole builds a client for when no API key is configured: it sends
// nothing, records every call with rec (a LogRecorder when rec is nil) and
// answers from an in-memory account with clearly fake results, such as the
// alias console-1@simplelogin.invalid.
func NewConsole(rec Recorder) *Client {
	return NewClient(WithConsole(rec))
}

// Console reports whether the client records calls instead of sending them.
// With WithAPIKeyFunc it reports only that calls made while the func returns
// no key are recorded: calls made while it returns one are sent.
func (c *Client) Console() bool { return c.recorder != nil }

// call is one request to SimpleLogin, described before it is sent or
// recorded.
type call struct {
	method string
	// path is the escaped path with its query string, if any.
	path string
	// body is encoded as JSON; nil sends no body at all.
	body any
}

// send performs r, decoding a 2xx answer into out when out is non-nil. In
// console mode it records r instead and reports recorded, so the caller can
// answer from the console state.
func (c *Client) send(ctx context.Context, r call, out any) (recorded bool, err error) {
	var body []byte
	if r.body != nil {
		if body, err = encodeBody(r.body); err != nil {
			return false, err
		}
	}
	key, err := c.requestKey(ctx)
	if err != nil {
		return false, err
	}
	if key == "" && c.recorder != nil {
		if err := c.recorder.Record(ctx, Call{Method: r.method, Path: r.path, Body: body}); err != nil {
			return true, fmt.Errorf("record console call: %w", err)
		}
		return true, nil
	}
	if key == "" {
		return false, ErrNoAPIKey
	}

	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.baseURL+r.path, reqBody)
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authentication", key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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
		return "", fmt.Errorf("simplelogin: read API key: %w", err)
	}
	return key, nil
}

// encodeBody renders v as the exact JSON that is sent or recorded. HTML
// escaping is off so console logs show notes as written.
func encodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode body: %w: %w", ErrInvalidParams, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
