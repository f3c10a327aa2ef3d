package providerhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// acmeError is the error a test provider decodes its answers into.
type acmeError struct {
	status  int
	message string
	delay   time.Duration
}

func (e *acmeError) Error() string             { return fmt.Sprintf("acme: HTTP %d: %s", e.status, e.message) }
func (e *acmeError) HTTPStatus() int           { return e.status }
func (e *acmeError) RetryDelay() time.Duration { return e.delay }

var (
	errAcmeNoKey   = fmt.Errorf("acme: %w", ErrNoAPIKey)
	errAcmeInvalid = fmt.Errorf("acme: %w", ErrInvalidParams)
)

// acme is a provider whose errors look like {"error": "..."}.
var acme = Provider{
	Name:     "acme",
	BaseURL:  "https://api.acme.invalid",
	BasePath: "/v2",
	Auth:     HeaderAuth("X-Acme-Key"),
	DecodeError: func(r *ErrorResponse) error {
		var body struct {
			Error *string `json:"error"`
		}
		var msg string
		ok := json.Unmarshal(r.Body, &body) == nil && body.Error != nil
		if ok {
			msg = *body.Error
		}
		return &acmeError{status: r.StatusCode, message: r.Message(msg, ok), delay: r.RetryAfter}
	},
	ErrNoAPIKey:      errAcmeNoKey,
	ErrInvalidParams: errAcmeInvalid,
}

// received is one request as the test server saw it.
type received struct {
	method string
	uri    string
	header http.Header
	body   string
}

// server starts a test server answering with respond and recording every
// request.
func server(t *testing.T, respond http.HandlerFunc) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Method, r.URL.RequestURI(), r.Header.Clone(), string(b)})
		mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func ok(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
}

// memRecorder keeps console calls.
type memRecorder struct {
	mu    sync.Mutex
	calls []Call
	err   error
}

func (m *memRecorder) Record(_ context.Context, c Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, c)
	return m.err
}

func TestDoSendsHeadersAndDecodesTheAnswer(t *testing.T) {
	srv, got := server(t, ok(`{"id":"a1"}`))
	c := New(acme, WithAPIKey("k1"), WithBaseURL(srv.URL+"/v2/"))
	var out struct{ ID string }
	recorded, err := c.Do(context.Background(), Request{
		Method: http.MethodPost, Path: "/v2/things?x=1", Body: map[string]string{"url": "https://a.test/?a=1&b=2"}, IdempotencyKey: "idem-1",
	}, &out)
	if err != nil || recorded {
		t.Fatalf("Do = %t, %v", recorded, err)
	}
	if out.ID != "a1" {
		t.Errorf("decoded %+v", out)
	}
	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	for name, want := range map[string]string{
		"X-Acme-Key": "k1", "Accept": "application/json", "User-Agent": UserAgent,
		"Content-Type": "application/json", "Idempotency-Key": "idem-1",
	} {
		if v := r.header.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if r.uri != "/v2/things?x=1" {
		t.Errorf("URI %q: a base URL given with the base path must not double it", r.uri)
	}
	if want := `{"url":"https://a.test/?a=1&b=2"}`; r.body != want {
		t.Errorf("body %s, want %s (exact JSON, no HTML escaping)", r.body, want)
	}
}

func TestDoWithoutBodySendsNoContentType(t *testing.T) {
	srv, got := server(t, ok(`{}`))
	c := New(acme, WithAPIKey("k1"), WithBaseURL(srv.URL))
	if _, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil); err != nil {
		t.Fatal(err)
	}
	r := got()[0]
	if r.body != "" || r.header.Get("Content-Type") != "" || r.header.Get("Idempotency-Key") != "" {
		t.Errorf("a GET without body sent body %q, Content-Type %q, Idempotency-Key %q",
			r.body, r.header.Get("Content-Type"), r.header.Get("Idempotency-Key"))
	}
}

func TestBearerAuth(t *testing.T) {
	h := http.Header{}
	BearerAuth(h, "sk_1")
	if got := h.Get("Authorization"); got != "Bearer sk_1" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestNoAPIKeyIsTheProvidersErrorAndSendsNothing(t *testing.T) {
	srv, got := server(t, ok(`{}`))
	for name, c := range map[string]*Client{
		"no key at all":      New(acme, WithBaseURL(srv.URL)),
		"key func without":   New(acme, WithBaseURL(srv.URL), WithAPIKeyFunc(func(context.Context) (string, error) { return "", nil })),
		"default sentinel":   New(Provider{DecodeError: acme.DecodeError}, WithBaseURL(srv.URL)),
		"func wins over key": New(acme, WithBaseURL(srv.URL), WithAPIKey("k"), WithAPIKeyFunc(func(context.Context) (string, error) { return "", nil })),
	} {
		_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil)
		if !errors.Is(err, ErrNoAPIKey) {
			t.Errorf("%s: err = %v, want ErrNoAPIKey", name, err)
		}
		if name != "default sentinel" && !errors.Is(err, errAcmeNoKey) {
			t.Errorf("%s: err = %v, want the provider's sentinel", name, err)
		}
	}
	if n := len(got()); n != 0 {
		t.Errorf("%d requests sent without a key", n)
	}
}

// TestNoActiveKeyIsCredentialMissing: a key func that finds no key, on a
// client with no recorder (a configured provider), fails the call as
// CredentialMissing; a client built with no key at all stays AuthFailed.
func TestNoActiveKeyIsCredentialMissing(t *testing.T) {
	srv, got := server(t, ok(`{}`))
	noKey := func(context.Context) (string, error) { return "", nil }
	_, err := New(acme, WithBaseURL(srv.URL), WithAPIKeyFunc(noKey)).Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil)
	if !errors.Is(err, ErrNoActiveKey) || !errors.Is(err, errAcmeNoKey) {
		t.Errorf("err = %v, want ErrNoActiveKey and the provider's ErrNoAPIKey", err)
	}
	if cl := Classify(err); cl != (Class{Kind: KindCredentialMissing}) {
		t.Errorf("Classify = %+v, want CredentialMissing, permanent", cl)
	}
	_, err = New(acme, WithBaseURL(srv.URL)).Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil)
	if errors.Is(err, ErrNoActiveKey) || Classify(err).Kind != KindAuth {
		t.Errorf("a client with no key at all: err = %v, Classify = %+v", err, Classify(err))
	}
	if n := len(got()); n != 0 {
		t.Errorf("%d requests sent without a key", n)
	}
}

func TestKeyFuncErrorIsWrappedAndRetryable(t *testing.T) {
	boom := errors.New("store down")
	c := New(acme, WithAPIKeyFunc(func(context.Context) (string, error) { return "", boom }), WithConsole(&memRecorder{}))
	_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "acme: read API key: ") {
		t.Fatalf("err = %v", err)
	}
	if cl := Classify(err); !cl.Retryable {
		t.Errorf("a key store failure must be retryable, got %+v", cl)
	}
}

func TestErrorsAreDecodedByTheProviderWithKeysRedacted(t *testing.T) {
	srv, got := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "proxy saw "+r.Header.Get("X-Acme-Key")+" and sk_static")
	})
	c := New(acme, WithAPIKey("sk_static"), WithAPIKeyFunc(func(context.Context) (string, error) { return "sk_rotated", nil }), WithBaseURL(srv.URL))
	_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil)
	var e *acmeError
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want the provider's error", err)
	}
	if want := "proxy saw [redacted] and [redacted]"; e.message != want {
		t.Errorf("message %q, want %q", e.message, want)
	}
	if e.delay != 7*time.Second {
		t.Errorf("delay %s, want 7s", e.delay)
	}
	if cl := Classify(err); cl != (Class{Kind: KindRateLimited, Retryable: true, RetryAfter: 7 * time.Second}) {
		t.Errorf("Classify = %+v", cl)
	}
	if n := len(got()); n != 1 {
		t.Errorf("%d requests, want 1: the client must not retry on its own", n)
	}
}

func TestUnencodableBodyIsInvalidParams(t *testing.T) {
	c := New(acme, WithAPIKey("k"))
	_, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v2/x", Body: map[string]any{"f": func() {}}}, nil)
	if !errors.Is(err, errAcmeInvalid) || !errors.Is(err, ErrInvalidParams) {
		t.Errorf("err = %v, want the provider's ErrInvalidParams", err)
	}
}

func TestConsoleRecordsInsteadOfSending(t *testing.T) {
	srv, got := server(t, ok(`{}`))
	rec := &memRecorder{}
	// A key and a URL are set on purpose: console mode wins over both.
	c := New(acme, WithAPIKey("k1"), WithBaseURL(srv.URL), WithConsole(rec))
	if !c.Console() {
		t.Fatal("Console() = false")
	}
	ctx := context.Background()
	for _, r := range []Request{
		{Method: http.MethodPost, Path: "/v2/things", Body: map[string]int{"n": 1}, IdempotencyKey: "idem"},
		{Method: http.MethodGet, Path: "/v2/me"},
	} {
		recorded, err := c.Do(ctx, r, nil)
		if err != nil || !recorded {
			t.Fatalf("Do = %t, %v", recorded, err)
		}
	}
	if n := len(got()); n != 0 {
		t.Errorf("console mode sent %d requests", n)
	}
	want := []Call{
		{Provider: "acme", Method: "POST", Path: "/v2/things", Body: json.RawMessage(`{"n":1}`), IdempotencyKey: "idem"},
		{Provider: "acme", Method: "GET", Path: "/v2/me"},
	}
	if fmt.Sprint(rec.calls) != fmt.Sprint(want) {
		t.Errorf("recorded %+v, want %+v", rec.calls, want)
	}
	if rec.calls[1].Body != nil {
		t.Errorf("a call without body recorded body %q", rec.calls[1].Body)
	}
	if a, b := c.NextConsoleID(), c.NextConsoleID(); a != 1 || b != 2 {
		t.Errorf("console ids %d, %d, want 1, 2", a, b)
	}
}

func TestConsoleWithKeyFuncSendsWhenAKeyIsThere(t *testing.T) {
	srv, got := server(t, ok(`{}`))
	rec := &memRecorder{}
	key := ""
	c := New(acme, WithBaseURL(srv.URL), WithConsole(rec), WithAPIKeyFunc(func(context.Context) (string, error) { return key, nil }))
	ctx := context.Background()
	if recorded, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v2/me"}, nil); err != nil || !recorded {
		t.Fatalf("without a key: Do = %t, %v", recorded, err)
	}
	key = "k2"
	if recorded, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v2/me"}, nil); err != nil || recorded {
		t.Fatalf("with a key: Do = %t, %v", recorded, err)
	}
	if len(rec.calls) != 1 || len(got()) != 1 || got()[0].header.Get("X-Acme-Key") != "k2" {
		t.Errorf("recorded %d, sent %d", len(rec.calls), len(got()))
	}
}

func TestRecorderErrorFailsTheCall(t *testing.T) {
	c := New(acme, WithConsole(&memRecorder{err: errors.New("disk full")}))
	recorded, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v2/me"}, nil)
	if !recorded || err == nil || !strings.Contains(err.Error(), "record console call: disk full") {
		t.Errorf("Do = %t, %v", recorded, err)
	}
}

func TestLogRecorder(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	c := New(acme, WithAPIKey("sk_secret"), WithConsole(LogRecorder{Logger: logger}))
	ctx := context.Background()
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v2/x", Body: map[string]string{"a": "<b>"}, IdempotencyKey: "i1"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v2/me"}, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log: %s", buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"level": "INFO", "msg": "CONSOLE MODE acme: would send", "method": "POST", "path": "/v2/x",
		"body": `{"a":"<b>"}`, "idempotencyKey": "i1",
	} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := second["body"]; ok {
		t.Errorf("a call without body logged one: %v", second)
	}
	if _, ok := second["idempotencyKey"]; ok {
		t.Errorf("a call without idempotency key logged one: %v", second)
	}
	if strings.Contains(buf.String(), "sk_secret") {
		t.Error("the key was logged")
	}
}

func TestHTTPClientIsCopiedNotMutated(t *testing.T) {
	shared := &http.Client{Timeout: time.Minute}
	c := New(acme, WithHTTPClient(shared), WithTimeout(time.Second))
	if shared.Timeout != time.Minute {
		t.Errorf("the caller's client was changed: Timeout %s", shared.Timeout)
	}
	if c.httpClient == shared || c.httpClient.Timeout != time.Second {
		t.Errorf("want a copy with Timeout 1s, got %s", c.httpClient.Timeout)
	}
	if c := New(acme, WithHTTPClient(shared)); c.httpClient != shared {
		t.Error("without WithTimeout the caller's client is used as it is")
	}
	if c := New(acme); c.httpClient.Timeout != DefaultTimeout {
		t.Errorf("default Timeout %s, want %s", c.httpClient.Timeout, DefaultTimeout)
	}
}

func TestNewWithoutDecodeErrorPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted a Provider without DecodeError")
		}
	}()
	New(Provider{Name: "broken"})
}
