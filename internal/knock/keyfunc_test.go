package knock_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/knock"
)

// authServer answers every request with a user and records its Authorization
// header.
func authServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"u1"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

type callRecorder struct {
	mu    sync.Mutex
	calls []knock.Call
}

func (r *callRecorder) Record(_ context.Context, c knock.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	return nil
}

func TestAPIKeyFuncIsReadOnEveryRequest(t *testing.T) {
	srv, got := authServer(t)
	keys := []string{"k1", "k2"}
	n := 0
	c := knock.NewClient(
		knock.WithAPIKey("static"),
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { k := keys[n]; n++; return k, nil }),
		knock.WithBaseURL(srv.URL),
		knock.WithConsole(&callRecorder{}),
	)
	for range 2 {
		_, err := c.Users.Identify(context.Background(), "u1", knock.IdentifyParams{Email: "a@example.com"})
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"Bearer k1", "Bearer k2"}, got())
}

func TestAPIKeyFuncEmptyRecordsWithConsole(t *testing.T) {
	srv, got := authServer(t)
	rec := &callRecorder{}
	c := knock.NewClient(
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { return "", nil }),
		knock.WithBaseURL(srv.URL),
		knock.WithConsole(rec),
	)
	u, err := c.Users.Identify(context.Background(), "u1", knock.IdentifyParams{Email: "a@example.com"})
	require.NoError(t, err)
	assert.Equal(t, "u1", u.ID)
	assert.Empty(t, got(), "nothing sent")
	require.Len(t, rec.calls, 1)
	assert.Equal(t, "/v1/users/u1", rec.calls[0].Path)
}

func TestAPIKeyFuncEmptyWithoutConsoleIsNoAPIKey(t *testing.T) {
	srv, got := authServer(t)
	c := knock.NewClient(
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { return "", nil }),
		knock.WithBaseURL(srv.URL),
	)
	_, err := c.Users.Identify(context.Background(), "u1", knock.IdentifyParams{})
	require.ErrorIs(t, err, knock.ErrNoAPIKey)
	assert.Empty(t, got())
}

func TestAPIKeyFuncErrorFailsWithoutSending(t *testing.T) {
	srv, got := authServer(t)
	rec := &callRecorder{}
	boom := errors.New("store down")
	c := knock.NewClient(
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { return "", boom }),
		knock.WithBaseURL(srv.URL),
		knock.WithConsole(rec),
	)
	_, err := c.Users.Identify(context.Background(), "u1", knock.IdentifyParams{})
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, knock.ErrNoAPIKey)
	assert.NotErrorIs(t, err, knock.ErrInvalidParams)
	assert.Empty(t, got(), "nothing sent")
	assert.Empty(t, rec.calls, "nothing recorded")
}

func TestAPIKeyFuncKeyRedactedFromErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("proxy saw " + r.Header.Get("Authorization")))
	}))
	t.Cleanup(srv.Close)
	c := knock.NewClient(
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { return "sk_rotated", nil }),
		knock.WithBaseURL(srv.URL),
	)
	_, err := c.Users.Identify(context.Background(), "u1", knock.IdentifyParams{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "sk_rotated")
}
