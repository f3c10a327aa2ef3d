package providerhttptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// conformanceKey is the static key the conformance tests configure.
const conformanceKey = "sk_conformance_x"

// Target is a provider client under TestClient. C is the client's type.
type Target[C any] struct {
	// Name is the provider's name in console logs, such as "knock".
	Name string
	// New is the package's NewClient.
	New func(opts ...providerhttp.Option) C
	// NewConsole is the package's NewConsole.
	NewConsole func(rec providerhttp.Recorder) C
	// Call makes one cheap request with c, such as reading the account.
	Call func(ctx context.Context, c C) (any, error)
	// OK is a 2xx answer body that Call decodes.
	OK string
	// Path is the path Call sends, and records in console mode.
	Path string
	// BasePath is the prefix the client drops from a base URL, such as "/v1".
	BasePath string
	// AuthHeader is the header the key travels in, such as Authorization.
	AuthHeader string
	// AuthPrefix stands before the key in AuthHeader, such as "Bearer ".
	AuthPrefix string
	// Check wraps the stand-in's handler, typically with openapicheck's
	// Middleware so that every request is checked against the provider's
	// spec; nil checks nothing.
	Check func(t testing.TB, h http.Handler) http.Handler
	// CheckRecorded checks the result a console client made up for Call.
	CheckRecorded func(t *testing.T, result any)
	// ErrNoAPIKey is the client's sentinel for a missing key.
	ErrNoAPIKey error
	// ErrInvalidParams is the client's sentinel for a call it refused.
	ErrInvalidParams error
	// Logged is a call whose console log line is checked, and what the line
	// must say.
	Logged Logged[C]
}

// Logged is a call a console client with a LogRecorder logs, and the
// attributes its log line must carry.
type Logged[C any] struct {
	// Call makes the call with c.
	Call func(ctx context.Context, c C) error
	// Method and Path are the request's, Path with its query string.
	Method, Path string
	// IdempotencyKey is logged when not empty, and must be absent otherwise.
	IdempotencyKey string
	// Body is the JSON body, logged exactly as it would be sent (no HTML
	// escaping).
	Body string
}

// server starts the stand-in for target's provider.
func (target Target[C]) server(t *testing.T, h http.Handler) *Server {
	if target.Check != nil {
		h = target.Check(t, h)
	}
	return NewServer(t, h)
}

// stall answers 504 only after the request is cancelled, or 5 s.
func stall(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
	w.WriteHeader(http.StatusGatewayTimeout)
}

// TestClient checks what a provider client gets from providerhttp, through
// the client's own constructors: the API key (static or from
// WithAPIKeyFunc, and never in an error), console mode and its log line, the
// base URL, and timeouts that are network errors rather than answers.
func TestClient[C any](t *testing.T, target Target[C]) {
	ok := Answer(http.StatusOK, nil, target.OK)
	t.Run("APIKeyFunc", func(t *testing.T) { testAPIKeyFunc(t, target) })

	t.Run("NoAPIKeyIsRefusedBeforeSending", func(t *testing.T) {
		srv := target.server(t, ok)
		_, err := target.Call(context.Background(), target.New(providerhttp.WithBaseURL(srv.URL)))
		require.ErrorIs(t, err, target.ErrNoAPIKey)
		assert.Empty(t, srv.Requests())
	})

	t.Run("BaseURLWithBasePathIsAccepted", func(t *testing.T) {
		srv := target.server(t, ok)
		c := target.New(providerhttp.WithAPIKey(conformanceKey), providerhttp.WithBaseURL(srv.URL+target.BasePath+"/"),
			providerhttp.WithHTTPClient(&http.Client{}), providerhttp.WithTimeout(time.Second))
		_, err := target.Call(context.Background(), c)
		require.NoError(t, err)
		assert.Equal(t, target.Path, srv.Only(t).Path)
	})

	t.Run("ErrorNeverContainsAPIKey", func(t *testing.T) {
		// A misbehaving proxy echoing the key's header back.
		srv := target.server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "forbidden: "+r.Header.Get(target.AuthHeader))
		}))
		_, err := target.Call(context.Background(), target.New(providerhttp.WithAPIKey(conformanceKey), providerhttp.WithBaseURL(srv.URL)))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), conformanceKey)
		assert.Contains(t, err.Error(), "forbidden: "+target.AuthPrefix+"[redacted]")
	})

	t.Run("ContextDeadlineIsANetworkErrorNotAnAPIError", func(t *testing.T) {
		srv := target.server(t, http.HandlerFunc(stall))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := target.Call(ctx, target.New(providerhttp.WithAPIKey(conformanceKey), providerhttp.WithBaseURL(srv.URL)))
		require.Error(t, err)
		assert.Less(t, time.Since(start), 3*time.Second, "the context's deadline must cut the call short")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var apiErr providerhttp.StatusError
		assert.False(t, errors.As(err, &apiErr), "a timeout is not an answer from the provider: %v", err)
	})

	t.Run("ClientTimeoutApplies", func(t *testing.T) {
		srv := target.server(t, http.HandlerFunc(stall))
		c := target.New(providerhttp.WithAPIKey(conformanceKey), providerhttp.WithBaseURL(srv.URL),
			providerhttp.WithHTTPClient(&http.Client{}), providerhttp.WithTimeout(100*time.Millisecond))
		_, err := target.Call(context.Background(), c)
		var netErr net.Error
		require.ErrorAs(t, err, &netErr)
		assert.True(t, netErr.Timeout(), "want a timeout, got %v", err)
		var apiErr providerhttp.StatusError
		assert.False(t, errors.As(err, &apiErr))
	})

	t.Run("LogRecorderLogsTheCall", func(t *testing.T) { testLogRecorder(t, target) })

	t.Run("ConsoleRecorderErrorFailsTheCall", func(t *testing.T) {
		c := target.NewConsole(RecorderFunc(func(context.Context, providerhttp.Call) error { return errors.New("disk full") }))
		_, err := target.Call(context.Background(), c)
		require.ErrorContains(t, err, "disk full")
	})
}

// testLogRecorder checks the line providerhttp.LogRecorder logs for
// target.Logged, with a key configured that must not show in it.
func testLogRecorder[C any](t *testing.T, target Target[C]) {
	want := target.Logged
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	c := target.New(providerhttp.WithAPIKey(conformanceKey), providerhttp.WithConsole(providerhttp.LogRecorder{Logger: logger}))
	require.NoError(t, want.Call(context.Background(), c))

	var entry map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &entry), "log: %s", buf.String())
	assert.Equal(t, "INFO", entry["level"])
	assert.Equal(t, "CONSOLE MODE "+target.Name+": would send", entry["msg"])
	assert.Equal(t, want.Method, entry["method"])
	assert.Equal(t, want.Path, entry["path"])
	if want.IdempotencyKey != "" {
		assert.Equal(t, want.IdempotencyKey, entry["idempotencyKey"])
	} else {
		assert.NotContains(t, entry, "idempotencyKey")
	}
	assert.JSONEq(t, want.Body, entry["body"].(string))
	assert.NotContains(t, buf.String(), conformanceKey)
}

// testAPIKeyFunc checks providerhttp.WithAPIKeyFunc: the key is read on
// every request, "" means console mode or the client's ErrNoAPIKey, an error
// from the func sends and records nothing, and the key sent never shows in an
// error.
func testAPIKeyFunc[C any](t *testing.T, target Target[C]) {
	keyFunc := func(key string, err error) providerhttp.Option {
		return providerhttp.WithAPIKeyFunc(func(context.Context) (string, error) { return key, err })
	}
	// authServer answers every request with target.OK; got lists the keys
	// it saw, in target.AuthHeader.
	authServer := func(t *testing.T) (srv *Server, got func() []string) {
		srv = target.server(t, Answer(http.StatusOK, nil, target.OK))
		return srv, func() []string {
			var keys []string
			for _, r := range srv.Requests() {
				keys = append(keys, r.Header.Get(target.AuthHeader))
			}
			return keys
		}
	}

	t.Run("IsReadOnEveryRequest", func(t *testing.T) {
		srv, got := authServer(t)
		keys := []string{"k1", "k2"}
		n := 0
		c := target.New(
			providerhttp.WithAPIKey("static"),
			providerhttp.WithAPIKeyFunc(func(context.Context) (string, error) { k := keys[n]; n++; return k, nil }),
			providerhttp.WithBaseURL(srv.URL),
			providerhttp.WithConsole(&Recorder{}),
		)
		for range 2 {
			_, err := target.Call(context.Background(), c)
			require.NoError(t, err)
		}
		assert.Equal(t, []string{target.AuthPrefix + "k1", target.AuthPrefix + "k2"}, got())
	})

	t.Run("EmptyRecordsWithConsole", func(t *testing.T) {
		srv, got := authServer(t)
		rec := &Recorder{}
		result, err := target.Call(context.Background(), target.New(keyFunc("", nil), providerhttp.WithBaseURL(srv.URL), providerhttp.WithConsole(rec)))
		require.NoError(t, err)
		target.CheckRecorded(t, result)
		assert.Empty(t, got(), "nothing sent")
		require.Len(t, rec.Calls(), 1)
		assert.Equal(t, target.Path, rec.Calls()[0].Path)
	})

	t.Run("EmptyWithoutConsoleIsNoAPIKey", func(t *testing.T) {
		srv, got := authServer(t)
		_, err := target.Call(context.Background(), target.New(keyFunc("", nil), providerhttp.WithBaseURL(srv.URL)))
		require.ErrorIs(t, err, target.ErrNoAPIKey)
		assert.Empty(t, got())
	})

	t.Run("ErrorFailsWithoutSending", func(t *testing.T) {
		srv, got := authServer(t)
		rec := &Recorder{}
		boom := errors.New("store down")
		_, err := target.Call(context.Background(), target.New(keyFunc("", boom), providerhttp.WithBaseURL(srv.URL), providerhttp.WithConsole(rec)))
		require.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, target.ErrNoAPIKey)
		assert.NotErrorIs(t, err, target.ErrInvalidParams)
		assert.Empty(t, got(), "nothing sent")
		assert.Empty(t, rec.Calls(), "nothing recorded")
	})

	t.Run("KeyRedactedFromErrors", func(t *testing.T) {
		srv := target.server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "proxy saw "+r.Header.Get(target.AuthHeader))
		}))
		_, err := target.Call(context.Background(), target.New(keyFunc("sk_rotated", nil), providerhttp.WithBaseURL(srv.URL)))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "sk_rotated")
	})
}
