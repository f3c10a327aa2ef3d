package simplelogin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
)

// authServer answers every request with user info and records its Authentication
// header.
func authServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authentication"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"name":"n","email":"e@example.com"}`))
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
	calls []simplelogin.Call
}

func (r *callRecorder) Record(_ context.Context, c simplelogin.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	return nil
}

func TestAPIKeyFuncIsReadOnEveryRequest(t *testing.T) {
	srv, got := authServer(t)
	keys := []string{"k1", "k2"}
	n := 0
	c := simplelogin.NewClient(
		simplelogin.WithAPIKey("static"),
		simplelogin.WithAPIKeyFunc(func(context.Context) (string, error) { k := keys[n]; n++; return k, nil }),
		simplelogin.WithBaseURL(srv.URL),
		simplelogin.WithConsole(&callRecorder{}),
	)
	for range 2 {
		_, err := c.UserInfo(context.Background())
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"k1", "k2"}, got())
}

func TestAPIKeyFuncEmptyRecordsWithConsole(t *testing.T) {
	srv, got := authServer(t)
	rec := &callRecorder{}
	c := simplelogin.NewClient(
		simplelogin.WithAPIKeyFunc(func(context.Context) (string, error) { return "", nil }),
		simplelogin.WithBaseURL(srv.URL),
		simplelogin.WithConsole(rec),
	)
	u, err := c.UserInfo(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "crmflow console", u.Name)
	assert.Empty(t, got(), "nothing sent")
	require.Len(t, rec.calls, 1)
	assert.Equal(t, "/api/user_info", rec.calls[0].Path)
}

func TestAPIKeyFuncEmptyWithoutConsoleIsNoAPIKey(t *testing.T) {
	srv, got := authServer(t)
	c := simplelogin.NewClient(
		simplelogin.WithAPIKeyFunc(func(context.Context) (string, error) { return "", nil }),
		simplelogin.WithBaseURL(srv.URL),
	)
	_, err := c.UserInfo(context.Background())
	require.ErrorIs(t, err, simplelogin.ErrNoAPIKey)
	assert.Empty(t, got())
}

func TestAPIKeyFuncErrorFailsWithoutSending(t *testing.T) {
	srv, got := authServer(t)
	rec := &callRecorder{}
	boom := errors.New("store down")
	c := simplelogin.NewClient(
		simplelogin.WithAPIKeyFunc(func(context.Context) (string, error) { return "", boom }),
		simplelogin.WithBaseURL(srv.URL),
		simplelogin.WithConsole(rec),
	)
	_, err := c.UserInfo(context.Background())
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, simplelogin.ErrNoAPIKey)
	assert.NotErrorIs(t, err, simplelogin.ErrInvalidParams)
	assert.Empty(t, got(), "nothing sent")
	assert.Empty(t, rec.calls, "nothing recorded")
}

func TestAPIKeyFuncKeyRedactedFromErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("proxy saw " + r.Header.Get("Authentication")))
	}))
	t.Cleanup(srv.Close)
	c := simplelogin.NewClient(
		simplelogin.WithAPIKeyFunc(func(context.Context) (string, error) { return "sk_rotated", nil }),
		simplelogin.WithBaseURL(srv.URL),
	)
	_, err := c.UserInfo(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "sk_rotated")
}
