// Package providerhttptest is test support for the provider clients built on
// providerhttp: a recording stand-in for a provider's API, canned answers,
// console recorders, and the conformance tests every client runs for the
// behaviour it gets from providerhttp (such as WithAPIKeyFunc).
//
// It is imported by tests only. Unlike providerhttp it may import test
// libraries (testify), but nothing of crmflow's above internal/.
package providerhttptest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// Request is one request as a Server received it.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the escaped path, as sent on the wire.
	Path string
	// Query is the raw query string.
	Query string
	// Header is a copy of the request's header.
	Header http.Header
	// Body is the whole request body.
	Body []byte
}

// Server is an httptest server standing in for a provider's API: it records
// every request and hands it, body intact, to the handler given to
// NewServer (wrap that in openapicheck's Middleware to check the contract).
type Server struct {
	// URL is the server's origin, for WithBaseURL.
	URL string

	mu   sync.Mutex
	reqs []Request
}

// NewServer starts a Server answering with h; it stops when t ends.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("test server: read request body: %v", err)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body,
		})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Only returns the one request the server received, failing t otherwise.
func (s *Server) Only(t testing.TB) Request {
	t.Helper()
	reqs := s.Requests()
	require.Len(t, reqs, 1, "requests received")
	return reqs[0]
}

// Fake is a Server standing in for a provider, with the constructor of the
// client under test, so that a test gets a client pointed at it in one call.
type Fake[C any] struct {
	*Server
	newClient func(opts ...providerhttp.Option) C
	key       string
}

// NewFake starts a Fake answering with h (see NewServer); its clients come
// from newClient, the package's NewClient, with key as their API key.
func NewFake[C any](t testing.TB, newClient func(opts ...providerhttp.Option) C, key string, h http.Handler) *Fake[C] {
	t.Helper()
	return &Fake[C]{Server: NewServer(t, h), newClient: newClient, key: key}
}

// Client returns a client for the fake with its key, then opts.
func (f *Fake[C]) Client(opts ...providerhttp.Option) C {
	return f.newClient(append([]providerhttp.Option{providerhttp.WithAPIKey(f.key), providerhttp.WithBaseURL(f.URL)}, opts...)...)
}

// Answer writes a provider-style response: the headers, then status and
// body, with a JSON Content-Type unless the headers name another.
func Answer(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// Recorder keeps a console client's calls for inspection.
type Recorder struct {
	mu    sync.Mutex
	calls []providerhttp.Call
}

// Record keeps call; it never fails.
func (r *Recorder) Record(_ context.Context, call providerhttp.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	return nil
}

// Calls returns the calls recorded so far, oldest first.
func (r *Recorder) Calls() []providerhttp.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]providerhttp.Call(nil), r.calls...)
}

// RecorderFunc is a providerhttp.Recorder made of a function, for recorders
// that fail.
type RecorderFunc func(ctx context.Context, call providerhttp.Call) error

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, call providerhttp.Call) error { return f(ctx, call) }
