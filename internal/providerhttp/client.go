// Package providerhttp is the HTTP base shared by crmflow's typed clients for
// providers that have no usable Go SDK (Knock, SimpleLogin): building the
// *http.Client, reading the API key for each request, setting the auth and
// content headers, bounding and draining response bodies, turning a non-2xx
// answer into the provider's error type (Retry-After, truncation, key
// scrubbing), console mode (recording calls instead of sending them) and the
// classification of a failed call as retryable or not.
//
// Each provider package keeps its own typed API, error type and sentinel
// errors, and describes what sets it apart on the wire in a Provider.
//
// It imports only the standard library: it is a library under internal/, so
// it must not import crmflow's upper layers, config, or any SDK.
package providerhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds one HTTP exchange when no *http.Client is given, so a
// stalled connection cannot hold an activity until its own timeout.
const DefaultTimeout = 10 * time.Second

// UserAgent names crmflow in the providers' logs, which helps when asking
// their support about a request.
const UserAgent = "crmflow"

// Size limits for response bodies: the providers' answers are small, and an
// error page from a proxy should not be read into memory whole.
const (
	maxResponseBytes = 1 << 20
	maxErrorBytes    = 64 << 10
)

// Provider is what sets one provider's API apart on the wire. A provider
// package declares one and builds every Client from it.
type Provider struct {
	// Name prefixes errors and console records, such as "knock".
	Name string
	// BaseURL is the default origin, such as https://api.knock.app.
	BaseURL string
	// BasePath is the prefix every request path already carries, such as
	// "/v1". A base URL given with it is accepted and the prefix dropped,
	// because providers' docs often write the base URL that way.
	BasePath string
	// Auth puts the key on an outgoing request; see BearerAuth (the
	// default) and HeaderAuth.
	Auth Auth
	// DecodeError builds the provider's error from a non-2xx answer;
	// required. It must return a non-nil error, and should take its message
	// from ErrorResponse.Message so that keys never leak into it.
	DecodeError func(r *ErrorResponse) error
	// RetryAfterMs makes Retry-After-Ms (milliseconds, a Stainless
	// convention) win over Retry-After when both are sent.
	RetryAfterMs bool
	// RateLimitBackoff is the wait given to a 429 that says nothing about
	// when to come back; zero leaves the delay to the caller's retry policy.
	RateLimitBackoff time.Duration
	// ErrNoAPIKey is returned, before anything is sent, by a client with no
	// key and no recorder. It should wrap this package's ErrNoAPIKey, so that
	// Classify knows it; nil uses that one.
	ErrNoAPIKey error
	// ErrInvalidParams wraps a body that cannot be encoded. It should wrap
	// this package's ErrInvalidParams, so that Classify knows it; nil uses
	// that one.
	ErrInvalidParams error
}

// Auth puts the API key on an outgoing request's headers.
type Auth func(h http.Header, key string)

// BearerAuth sends the key as "Authorization: Bearer <key>".
func BearerAuth(h http.Header, key string) { h.Set("Authorization", "Bearer "+key) }

// HeaderAuth sends the key as it is in the named header, for APIs such as
// SimpleLogin's that read "Authentication: <key>".
func HeaderAuth(name string) Auth {
	return func(h http.Header, key string) { h.Set(name, key) }
}

// Client sends requests to one provider, or records them in console mode. It
// is safe for concurrent use.
type Client struct {
	provider   Provider
	settings   settings
	httpClient *http.Client
	consoleSeq atomic.Int64
	consoleIDs *consoleIDs
}

// New builds a Client for p with the caller's options. A Provider without
// DecodeError is a programming error and panics here, at start-up, rather
// than on the first failed call.
func New(p Provider, opts ...Option) *Client {
	if p.DecodeError == nil {
		panic("providerhttp: Provider " + p.Name + " has no DecodeError")
	}
	if p.Auth == nil {
		p.Auth = BearerAuth
	}
	if p.ErrNoAPIKey == nil {
		p.ErrNoAPIKey = ErrNoAPIKey
	}
	if p.ErrInvalidParams == nil {
		p.ErrInvalidParams = ErrInvalidParams
	}
	s := settings{baseURL: p.BaseURL}
	for _, opt := range opts {
		opt(&s)
	}
	s.baseURL = strings.TrimSuffix(strings.TrimRight(s.baseURL, "/"), p.BasePath)
	return &Client{provider: p, settings: s, httpClient: s.buildHTTPClient(), consoleIDs: newConsoleIDs()}
}

// Console reports whether the client records calls instead of sending them.
// With WithAPIKeyFunc it reports only that calls made while the func returns
// no key are recorded: calls made while it returns one are sent.
func (c *Client) Console() bool { return c.settings.recorder != nil }

// NextConsoleID returns 1, 2, 3, ... across the client's life, for the fake
// ids of results made up in console mode ("console-1") that nothing keeps
// as a key: they start again at 1 with every process. A fake id that is
// stored as a key takes UniqueConsoleID.
func (c *Client) NextConsoleID() int64 { return c.consoleSeq.Add(1) }

// UniqueConsoleID returns a fake id for a result made up in console mode
// that is stored as a key, such as a SimpleLogin alias id: positive, at most
// MaxConsoleID, increasing across the client's life, and not repeated by a
// later process or (but for a remote chance) by another process at the same
// time; consoleid.go says how.
func (c *Client) UniqueConsoleID() int64 { return c.consoleIDs.next() }

// Request is one call to a provider, described before it is sent or
// recorded.
type Request struct {
	// Method is the HTTP method, such as POST.
	Method string
	// Path is the escaped path, with its query string if any.
	Path string
	// Body is encoded as JSON; nil sends no body and no Content-Type.
	Body any
	// IdempotencyKey is sent as Idempotency-Key when not empty.
	IdempotencyKey string
}

// Do performs r, decoding a 2xx answer into out when out is non-nil. A
// non-2xx answer returns the provider's error from Provider.DecodeError,
// unwrapped. In console mode it records r instead and reports recorded, so
// the caller can make up a result.
func (c *Client) Do(ctx context.Context, r Request, out any) (recorded bool, err error) {
	var body []byte
	if r.Body != nil {
		if body, err = c.encodeBody(r.Body); err != nil {
			return false, err
		}
	}
	key, err := c.requestKey(ctx)
	if err != nil {
		return false, err
	}
	switch {
	case key == "" && c.settings.recorder != nil:
		call := Call{Provider: c.provider.Name, Method: r.Method, Path: r.Path, Body: body, IdempotencyKey: r.IdempotencyKey}
		if err := c.settings.recorder.Record(ctx, call); err != nil {
			return true, fmt.Errorf("record console call: %w", err)
		}
		return true, nil
	case key == "" && c.settings.keyFunc != nil:
		// Never a silent fall back to recording: a client without a
		// recorder is one whose provider is configured, and the call must
		// fail for an operator rather than look as if it was sent.
		return false, fmt.Errorf("%w (%w)", c.provider.ErrNoAPIKey, ErrNoActiveKey)
	case key == "":
		return false, c.provider.ErrNoAPIKey
	}
	return false, c.send(ctx, r, body, key, out)
}

// send puts r on the wire with key.
func (c *Client) send(ctx context.Context, r Request, body []byte, key string, out any) error {
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.settings.baseURL+r.Path, reqBody)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	c.provider.Auth(req.Header, key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		// *url.Error carries the method and URL, never the headers, so the
		// key cannot leak through it.
		return fmt.Errorf("send request: %w", err)
	}
	defer func() {
		// Drain what is left so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.decodeError(resp, key)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
		return fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
	}
	return nil
}

// requestKey returns the key for one request: from the key func when one is
// set, else the static key, except that a console client without a key func
// records every call (""), as console clients always have.
func (c *Client) requestKey(ctx context.Context) (string, error) {
	s := &c.settings
	if s.keyFunc == nil {
		if s.recorder != nil {
			return "", nil
		}
		return s.apiKey, nil
	}
	key, err := s.keyFunc(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: read API key: %w", c.provider.Name, err)
	}
	return key, nil
}

// encodeBody renders v as the exact JSON that is sent or recorded. HTML
// escaping is off so console logs show URLs and notes as written.
func (c *Client) encodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode body: %w: %w", c.provider.ErrInvalidParams, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
