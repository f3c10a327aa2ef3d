package providerhttp

import (
	"context"
	"net/http"
	"time"
)

// Option configures a Client built by New. The provider packages hand these
// out as their own ClientOptions, so every client takes the same settings.
type Option func(*settings)

// settings are what the caller chooses; Provider is what the provider
// package fixes.
type settings struct {
	apiKey     string
	keyFunc    func(ctx context.Context) (string, error)
	baseURL    string
	httpClient *http.Client
	timeout    time.Duration
	recorder   Recorder
}

// WithAPIKey sets the key sent with every request (in the header the
// provider's Auth names).
func WithAPIKey(key string) Option {
	return func(s *settings) { s.apiKey = key }
}

// WithAPIKeyFunc makes the client ask fn for the API key on every request,
// so a key rotated in a credential store is used without a restart. It wins
// over WithAPIKey. When fn returns "" the request is treated as having no key:
// a client with WithConsole records it instead of sending it, any other client
// fails it with the provider's ErrNoAPIKey and ErrNoActiveKey (Classify:
// CredentialMissing). A provider whose key lives in a credential store
// should get WithConsole only when it was decided, at start, to run in
// console mode: a recorder on a configured provider's client would turn a
// revoked key into calls that look sent. An error from fn fails the
// request, wrapped, with nothing sent; it is neither ErrNoAPIKey nor
// ErrInvalidParams, so callers can retry it. The key is never logged or
// recorded.
func WithAPIKeyFunc(fn func(ctx context.Context) (string, error)) Option {
	return func(s *settings) { s.keyFunc = fn }
}

// WithBaseURL points the client at another origin, such as a self-hosted
// server or a test server. A trailing slash, and a trailing Provider.BasePath,
// are dropped: request paths already carry the latter.
func WithBaseURL(u string) Option {
	return func(s *settings) { s.baseURL = u }
}

// WithHTTPClient sets the *http.Client used for requests; its Timeout is kept
// unless WithTimeout is also given.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) { s.httpClient = hc }
}

// WithTimeout bounds each HTTP exchange (DefaultTimeout when unset). The
// request's context still applies, whichever ends first.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// WithConsole makes the client send nothing and hand every call to rec
// instead (a LogRecorder when rec is nil). With WithAPIKeyFunc, only calls
// made while the func returns no key are recorded.
func WithConsole(rec Recorder) Option {
	return func(s *settings) {
		if rec == nil {
			rec = LogRecorder{}
		}
		s.recorder = rec
	}
}

// buildHTTPClient returns the *http.Client the settings ask for.
func (s *settings) buildHTTPClient() *http.Client {
	switch {
	case s.httpClient == nil:
		timeout := s.timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		return &http.Client{Timeout: timeout}
	case s.timeout > 0:
		// Copy rather than mutate: the caller may share its client.
		hc := *s.httpClient
		hc.Timeout = s.timeout
		return &hc
	default:
		return s.httpClient
	}
}
