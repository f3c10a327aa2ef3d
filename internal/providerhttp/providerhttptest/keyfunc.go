package providerhttptest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// KeyFuncTarget is a provider client under TestAPIKeyFunc.
type KeyFuncTarget struct {
	// AuthHeader is the header the key travels in, such as Authorization.
	AuthHeader string
	// AuthPrefix stands before the key in AuthHeader, such as "Bearer ".
	AuthPrefix string
	// OK is a 2xx answer body that Call decodes.
	OK string
	// New builds a client from opts and returns one cheap call on it.
	New func(opts ...providerhttp.Option) Call
	// RecordedPath is the path of that call as a console client records it.
	RecordedPath string
	// CheckRecorded checks the result a console client made up for that call.
	CheckRecorded func(t *testing.T, result any)
	// ErrNoAPIKey is the client's sentinel for a missing key.
	ErrNoAPIKey error
	// ErrInvalidParams is the client's sentinel for a call it refused.
	ErrInvalidParams error
}

// Call makes one request with a client and returns its result.
type Call func(ctx context.Context) (any, error)

// TestAPIKeyFunc checks what a client gets from providerhttp.WithAPIKeyFunc:
// the key is read on every request, "" means console mode or the client's
// ErrNoAPIKey, an error from the func sends and records nothing, and the key
// sent never shows in an error.
func TestAPIKeyFunc(t *testing.T, target KeyFuncTarget) {
	keyFunc := func(key string, err error) providerhttp.Option {
		return providerhttp.WithAPIKeyFunc(func(context.Context) (string, error) { return key, err })
	}
	// authServer answers every request with target.OK; got lists the keys
	// it saw, in target.AuthHeader.
	authServer := func(t *testing.T) (srv *Server, got func() []string) {
		srv = NewServer(t, Answer(http.StatusOK, nil, target.OK))
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
		call := target.New(
			providerhttp.WithAPIKey("static"),
			providerhttp.WithAPIKeyFunc(func(context.Context) (string, error) { k := keys[n]; n++; return k, nil }),
			providerhttp.WithBaseURL(srv.URL),
			providerhttp.WithConsole(&Recorder{}),
		)
		for range 2 {
			_, err := call(context.Background())
			require.NoError(t, err)
		}
		assert.Equal(t, []string{target.AuthPrefix + "k1", target.AuthPrefix + "k2"}, got())
	})

	t.Run("EmptyRecordsWithConsole", func(t *testing.T) {
		srv, got := authServer(t)
		rec := &Recorder{}
		call := target.New(keyFunc("", nil), providerhttp.WithBaseURL(srv.URL), providerhttp.WithConsole(rec))
		result, err := call(context.Background())
		require.NoError(t, err)
		target.CheckRecorded(t, result)
		assert.Empty(t, got(), "nothing sent")
		require.Len(t, rec.Calls(), 1)
		assert.Equal(t, target.RecordedPath, rec.Calls()[0].Path)
	})

	t.Run("EmptyWithoutConsoleIsNoAPIKey", func(t *testing.T) {
		srv, got := authServer(t)
		call := target.New(keyFunc("", nil), providerhttp.WithBaseURL(srv.URL))
		_, err := call(context.Background())
		require.ErrorIs(t, err, target.ErrNoAPIKey)
		assert.Empty(t, got())
	})

	t.Run("ErrorFailsWithoutSending", func(t *testing.T) {
		srv, got := authServer(t)
		rec := &Recorder{}
		boom := errors.New("store down")
		call := target.New(keyFunc("", boom), providerhttp.WithBaseURL(srv.URL), providerhttp.WithConsole(rec))
		_, err := call(context.Background())
		require.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, target.ErrNoAPIKey)
		assert.NotErrorIs(t, err, target.ErrInvalidParams)
		assert.Empty(t, got(), "nothing sent")
		assert.Empty(t, rec.Calls(), "nothing recorded")
	})

	t.Run("KeyRedactedFromErrors", func(t *testing.T) {
		srv := NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "proxy saw "+r.Header.Get(target.AuthHeader))
		}))
		call := target.New(keyFunc("sk_rotated", nil), providerhttp.WithBaseURL(srv.URL))
		_, err := call(context.Background())
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "sk_rotated")
	})
}
