package simplelogin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
)

// listOf renders a list page.
func listOf(aliases ...string) string { return `{"aliases":[` + strings.Join(aliases, ",") + `]}` }

// pageOf returns n aliases with ids from first down, notes from note(id).
func pageOf(first int64, n int, note func(id int64) string) []string {
	out := make([]string, 0, n)
	for i := range n {
		id := first - int64(i)
		out = append(out, aliasJSON(id, fmt.Sprintf("a%d@sl.test", id), true, note(id)))
	}
	return out
}

func TestSimpleLoginFindByNotePagesThroughSearchResults(t *testing.T) {
	const marker = "crmflow:alias/a1"
	// The server's search is a superset (ILIKE and full text): pages 0 and 1
	// are full of near misses, and the marked alias comes on the short page 2.
	near := func(id int64) string {
		switch id % 3 {
		case 0:
			return "crmflow:alias/a10" // a longer id
		case 1:
			return "xcrmflow:alias/a1" // glued to a word
		}
		return "crmflow:alias/a1/x"
	}
	pages := map[string]string{
		"0": listOf(pageOf(100, simplelogin.PageSize, near)...),
		"1": listOf(pageOf(80, simplelogin.PageSize, near)...),
		"2": listOf(append(pageOf(60, 3, near), aliasJSON(7, "found@sl.test", false, "customer note\n"+marker))...),
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		answer(http.StatusOK, nil, pages[r.URL.Query().Get("page_id")])(w, r)
	})
	a, err := f.Client().FindByNote(context.Background(), marker)
	require.NoError(t, err)
	assert.Equal(t, int64(7), a.ID)
	assert.Equal(t, "found@sl.test", a.Email)
	assert.False(t, a.Enabled)

	reqs := f.Requests()
	require.Len(t, reqs, 3, "pages until a short page")
	for i, req := range reqs {
		assert.Equal(t, "POST /api/v2/aliases", req.Method+" "+req.Path)
		assert.Equal(t, "page_id="+strconv.Itoa(i), req.Query)
		assert.JSONEq(t, `{"query":"`+marker+`"}`, string(req.Body))
		assertHeaders(t, req, true)
	}
}

func TestSimpleLoginFindByNotePrefersTheOldestOfDuplicates(t *testing.T) {
	const marker = "crmflow:alias/a1"
	f := newFake(t, answer(http.StatusOK, nil, listOf(
		aliasJSON(30, "newer@sl.test", true, marker),
		aliasJSON(12, "older@sl.test", true, "note "+marker+" more"),
		aliasJSON(20, "mid@sl.test", true, marker),
	)))
	a, err := f.Client().FindByNote(context.Background(), marker)
	require.NoError(t, err)
	assert.Equal(t, int64(12), a.ID)
}

func TestSimpleLoginFindByNoteNotFound(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page_id") == "0" {
			answer(http.StatusOK, nil, listOf(pageOf(40, simplelogin.PageSize, func(int64) string { return "crmflow:alias/a10" })...))(w, r)
			return
		}
		answer(http.StatusOK, nil, listOf())(w, r)
	})
	_, err := f.Client().FindByNote(context.Background(), "crmflow:alias/a1")
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)
	assert.Len(t, f.Requests(), 2, "a full page is followed by the next, the empty one ends it")
}

func TestSimpleLoginFindByNotePassesErrorsOn(t *testing.T) {
	f := newFake(t, answer(http.StatusTooManyRequests, nil, `{"error":"Rate limit exceeded"}`))
	_, err := f.Client().FindByNote(context.Background(), "crmflow:alias/a1")
	var slErr *simplelogin.Error
	require.ErrorAs(t, err, &slErr)
	assert.Equal(t, http.StatusTooManyRequests, slErr.StatusCode)
	assert.False(t, errors.Is(err, simplelogin.ErrAliasNotFound))
}

// statefulAlias is one alias held by a fake that implements get and toggle,
// and counts the toggles.
type statefulAlias struct {
	mu      sync.Mutex
	enabled bool
	toggles int
	// beforeToggle, when set, runs under the lock before a toggle applies:
	// someone else acting on the alias between our read and our toggle.
	beforeToggle func(s *statefulAlias)
}

func (s *statefulAlias) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "GET /api/aliases/42":
			answer(http.StatusOK, nil, aliasJSON(42, "a@sl.test", s.enabled, ""))(w, r)
		case "POST /api/aliases/42/toggle":
			if s.beforeToggle != nil {
				s.beforeToggle(s)
				s.beforeToggle = nil
			}
			s.enabled = !s.enabled
			s.toggles++
			answer(http.StatusOK, nil, fmt.Sprintf(`{"enabled":%t}`, s.enabled))(w, r)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			answer(http.StatusNotFound, nil, `{"error":"No such endpoint"}`)(w, r)
		}
	}
}

func TestSimpleLoginSetEnabledDoesNotToggleWhenAlreadyInState(t *testing.T) {
	for _, want := range []bool{true, false} {
		s := &statefulAlias{enabled: want}
		f := newFake(t, s.handler(t))
		a, err := f.Client().SetEnabled(context.Background(), 42, want)
		require.NoError(t, err)
		assert.Equal(t, want, a.Enabled)
		assert.Equal(t, 0, s.toggles, "no toggle when the alias is already enabled=%t", want)
		assert.Equal(t, "GET", f.Only(t).Method)
	}
}

func TestSimpleLoginSetEnabledTogglesOnceWhenNeeded(t *testing.T) {
	for _, want := range []bool{true, false} {
		s := &statefulAlias{enabled: !want}
		f := newFake(t, s.handler(t))
		a, err := f.Client().SetEnabled(context.Background(), 42, want)
		require.NoError(t, err)
		assert.Equal(t, want, a.Enabled)
		assert.Equal(t, want, s.enabled)
		assert.Equal(t, 1, s.toggles)
		// Repeating the call, as a retried activity does, changes nothing.
		_, err = f.Client().SetEnabled(context.Background(), 42, want)
		require.NoError(t, err)
		assert.Equal(t, 1, s.toggles, "a repeated SetEnabled must not flip the alias back")
		assert.Equal(t, want, s.enabled)
	}
}

func TestSimpleLoginSetEnabledRereadsWhenSomeoneElseFlippedInBetween(t *testing.T) {
	s := &statefulAlias{enabled: true, beforeToggle: func(s *statefulAlias) { s.enabled = !s.enabled }}
	f := newFake(t, s.handler(t))
	a, err := f.Client().SetEnabled(context.Background(), 42, false)
	require.NoError(t, err)
	assert.False(t, a.Enabled)
	assert.False(t, s.enabled)
	assert.Equal(t, 2, s.toggles, "our first toggle undid the other flip; the second reaches the state")
}

func TestSimpleLoginSetEnabledUnknownAliasIsNotFound(t *testing.T) {
	f := newFake(t, answer(http.StatusBadRequest, nil, `{"error":"Unknown error"}`))
	_, err := f.Client().SetEnabled(context.Background(), 42, true)
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)
	assert.Equal(t, "GET", f.Only(t).Method, "no toggle of an alias that does not exist")
}

func TestSimpleLoginSetEnabledAliasDeletedBetweenReadAndToggleIsNotFound(t *testing.T) {
	gets := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			gets++
			if gets == 1 {
				answer(http.StatusOK, nil, aliasJSON(42, "a@sl.test", true, ""))(w, r)
				return
			}
			answer(http.StatusBadRequest, nil, `{"error":"Unknown error"}`)(w, r)
		default:
			answer(http.StatusForbidden, nil, `{"error":"Forbidden"}`)(w, r)
		}
	})
	_, err := f.Client().SetEnabled(context.Background(), 42, false)
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)
	assert.Len(t, f.Requests(), 3)
}

func TestSimpleLoginDeleteIfExists(t *testing.T) {
	type step struct {
		method string
		status int
		body   string
	}
	cases := []struct {
		name    string
		steps   []step
		wantErr int // status of the *Error expected in the chain; 0 means success
	}{
		{"deleted", []step{{"DELETE", 200, `{"deleted":true}`}}, 0},
		{"404 about the alias is already gone", []step{{"DELETE", 404, `{"error":"Alias not found"}`}}, 0},
		// SimpleLogin's answer for a deleted alias; the read confirms it.
		{"403 then unknown on read is already gone", []step{{"DELETE", 403, `{"error":"Forbidden"}`}, {"GET", 400, `{"error":"Unknown error"}`}}, 0},
		{"403 for another account's alias", []step{{"DELETE", 403, `{"error":"Forbidden"}`}, {"GET", 403, `{"error":"Forbidden"}`}}, 403},
		{"403 disabled account", []step{{"DELETE", 403, `{"error":"Disabled account"}`}, {"GET", 403, `{"error":"Disabled account"}`}}, 403},
		{"403 while the alias still reads", []step{{"DELETE", 403, `{"error":"Forbidden"}`}, {"GET", 200, aliasJSON(42, "a@sl.test", true, "")}}, 403},
		{"403 and the read fails transiently", []step{{"DELETE", 403, `{"error":"Forbidden"}`}, {"GET", 503, `{"error":"down"}`}}, 503},
		{"router 404 is a wrong URL, not a deletion", []step{{"DELETE", 404, `{"error":"No such endpoint"}`}}, 404},
		{"proxy 404 is not a deletion", []step{{"DELETE", 404, "<html>404</html>"}}, 404},
		{"401", []step{{"DELETE", 401, `{"error":"Wrong api key"}`}}, 401},
		{"500", []step{{"DELETE", 500, `{"error":"boom"}`}}, 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if n >= len(tc.steps) {
					t.Errorf("unexpected request %d: %s %s", n, r.Method, r.URL.Path)
					w.WriteHeader(http.StatusTeapot)
					return
				}
				s := tc.steps[n]
				n++
				assert.Equal(t, s.method, r.Method)
				assert.Equal(t, "/api/aliases/42", r.URL.Path)
				answer(s.status, nil, s.body)(w, r)
			})
			err := f.Client().DeleteIfExists(context.Background(), 42)
			assert.Len(t, f.Requests(), len(tc.steps))
			if tc.wantErr == 0 {
				require.NoError(t, err)
				return
			}
			var slErr *simplelogin.Error
			require.ErrorAs(t, err, &slErr)
			assert.Equal(t, tc.wantErr, slErr.StatusCode)
			assert.False(t, errors.Is(err, simplelogin.ErrAliasNotFound))
		})
	}
}
