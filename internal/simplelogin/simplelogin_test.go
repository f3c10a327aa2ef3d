package simplelogin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/openapicheck"
	"github.com/crmflow/crmflow/internal/providerhttp/providerhttptest"
	"github.com/crmflow/crmflow/internal/simplelogin"
)

const testKey = "sl_test_key_x"

// fakeSL stands in for SimpleLogin: it records every request, checks it
// against the (unofficial) OpenAPI spec when CRMFLOW_SPECS_DIR is set, and
// answers with the test's handler. Answers are not checked: see
// TestSimpleLoginRequestsMatchOpenAPI for why.
type fakeSL struct{ *providerhttptest.Server }

func newFake(t *testing.T, respond http.HandlerFunc) *fakeSL {
	t.Helper()
	return &fakeSL{providerhttptest.NewServer(t, openapicheck.Load(t, openapicheck.SimpleLogin).Middleware(t, false, respond))}
}

// client returns a client for the fake with the test key.
func (f *fakeSL) client(opts ...simplelogin.ClientOption) *simplelogin.Client {
	return simplelogin.NewClient(append([]simplelogin.ClientOption{simplelogin.WithAPIKey(testKey), simplelogin.WithBaseURL(f.URL)}, opts...)...)
}

// answer writes a SimpleLogin-style response.
var answer = providerhttptest.Answer

// aliasJSON is an alias object as serialize_alias_info_v2 renders it.
func aliasJSON(id int64, email string, enabled bool, note string) string {
	b, _ := json.Marshal(map[string]any{
		"id": id, "email": email, "name": nil, "enabled": enabled, "note": note,
		"creation_date": "2026-08-01 10:00:00+00:00", "creation_timestamp": 1785578400,
		"nb_forward": 1, "nb_block": 0, "nb_reply": 2, "pinned": false,
		"support_pgp": false, "disable_pgp": false, "latest_activity": nil,
		"mailbox":   map[string]any{"id": 1, "email": "me@example.com"},
		"mailboxes": []any{map[string]any{"id": 1, "email": "me@example.com"}},
	})
	return string(b)
}

// assertHeaders checks the headers every request carries: the key in
// Authentication (what SimpleLogin reads), never in Authorization.
func assertHeaders(t *testing.T, req providerhttptest.Request, withBody bool) {
	t.Helper()
	assert.Equal(t, testKey, req.Header.Get("Authentication"))
	assert.NotContains(t, req.Header, "Authorization")
	assert.Equal(t, "application/json", req.Header.Get("Accept"))
	assert.Equal(t, "crmflow", req.Header.Get("User-Agent"))
	if withBody {
		assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	} else {
		assert.Empty(t, req.Body)
		assert.NotContains(t, req.Header, "Content-Type")
	}
}

func TestSimpleLoginUserInfoSendsAuthenticationHeader(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{
		"name": "Ada", "is_premium": true, "email": "ada@example.com", "in_trial": false,
		"trial_end_timestamp": null, "max_alias_free_plan": 10, "connected_proton_address": null,
		"can_create_reverse_alias": true, "profile_picture_url": null
	}`))
	info, err := f.client().UserInfo(context.Background())
	require.NoError(t, err)
	assert.Equal(t, &simplelogin.UserInfo{Name: "Ada", Email: "ada@example.com", IsPremium: true, MaxAliasFreePlan: 10, CanCreateReverseAlias: true}, info)

	req := f.Only(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/user_info", req.Path)
	assert.Empty(t, req.Query)
	assertHeaders(t, req, false)
}

func TestSimpleLoginAliasOptionsSendsHostnameAndDecodesSignedSuffixes(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{
		"can_create": true, "prefix_suggestion": "shop",
		"suffixes": [
			{"suffix": "@my.example", "signed_suffix": "@my.example.X6_7OQ.sig1", "is_custom": true, "is_premium": false},
			{"suffix": ".cat@sl.test", "signed_suffix": ".cat@sl.test.X6_7OQ.sig2", "is_custom": false, "is_premium": true}
		],
		"recommendation": {"alias": "shop@my.example", "hostname": "www.shop.example"}
	}`))
	opts, err := f.client().AliasOptions(context.Background(), "www.shop.example")
	require.NoError(t, err)
	assert.Equal(t, &simplelogin.AliasOptions{
		CanCreate:        true,
		PrefixSuggestion: "shop",
		Suffixes: []simplelogin.Suffix{
			{Suffix: "@my.example", SignedSuffix: "@my.example.X6_7OQ.sig1", IsCustom: true},
			{Suffix: ".cat@sl.test", SignedSuffix: ".cat@sl.test.X6_7OQ.sig2", IsPremium: true},
		},
		Recommendation: &simplelogin.Recommendation{Alias: "shop@my.example", Hostname: "www.shop.example"},
	}, opts)

	req := f.Only(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v5/alias/options", req.Path)
	assert.Equal(t, "hostname=www.shop.example", req.Query)
	assertHeaders(t, req, false)
}

func TestSimpleLoginMailboxes(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"mailboxes":[
		{"id": 1, "email": "me@example.com", "default": true, "verified": true, "creation_timestamp": 1, "nb_alias": 3},
		{"id": 2, "email": "new@example.com", "default": false, "verified": false, "creation_timestamp": 2, "nb_alias": 0}
	]}`))
	got, err := f.client().Mailboxes(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []simplelogin.Mailbox{
		{ID: 1, Email: "me@example.com", Default: true, Verified: true},
		{ID: 2, Email: "new@example.com"},
	}, got)
	req := f.Only(t)
	assert.Equal(t, "GET /api/v2/mailboxes", req.Method+" "+req.Path)
	assertHeaders(t, req, false)
}

func TestSimpleLoginCreateRandomAliasSendsModeAndHostnameInQueryAndNoteInBody(t *testing.T) {
	body := strings.Replace(aliasJSON(42, "happy_cat@sl.test", true, "crmflow:alias/a1"), "{", `{"alias":"happy_cat@sl.test",`, 1)
	f := newFake(t, answer(http.StatusCreated, nil, body))
	a, err := f.client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{
		Hostname: "www.shop.example", Mode: simplelogin.ModeWord, Note: "crmflow:alias/a1",
	})
	require.NoError(t, err)
	assert.Equal(t, int64(42), a.ID)
	assert.Equal(t, "happy_cat@sl.test", a.Email)
	assert.True(t, a.Enabled)
	assert.Equal(t, "crmflow:alias/a1", a.Note)
	assert.Equal(t, int64(1785578400), a.CreationTimestamp)
	assert.Equal(t, []simplelogin.MailboxRef{{ID: 1, Email: "me@example.com"}}, a.Mailboxes)

	req := f.Only(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/alias/random/new", req.Path)
	assert.Equal(t, "hostname=www.shop.example&mode=word", req.Query)
	assertHeaders(t, req, true)
	assert.JSONEq(t, `{"note":"crmflow:alias/a1"}`, string(req.Body))
}

func TestSimpleLoginCreateRandomAliasWithoutOptionsSendsEmptyObject(t *testing.T) {
	// The answer carries only "alias" and id: the address is taken from it.
	f := newFake(t, answer(http.StatusCreated, nil, `{"alias":"x1@sl.test","id":5,"enabled":true,"note":null,"name":null}`))
	a, err := f.client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{})
	require.NoError(t, err)
	assert.Equal(t, &simplelogin.Alias{ID: 5, Email: "x1@sl.test", Enabled: true}, a)
	req := f.Only(t)
	assert.Empty(t, req.Query)
	assert.JSONEq(t, `{}`, string(req.Body))
}

func TestSimpleLoginCreateRandomAliasRejectsAnswerWithoutAlias(t *testing.T) {
	f := newFake(t, answer(http.StatusCreated, nil, `{}`))
	_, err := f.client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{})
	require.ErrorContains(t, err, "no alias id or address")
}

func TestSimpleLoginCreateCustomAliasSendsSignedSuffixAndMailboxes(t *testing.T) {
	f := newFake(t, answer(http.StatusCreated, nil, aliasJSON(43, "news.cat@sl.test", true, "hello")))
	a, err := f.client().CreateCustomAlias(context.Background(), simplelogin.CustomAliasParams{
		Hostname: "shop.example", Prefix: "news", SignedSuffix: ".cat@sl.test.X6_7OQ.sig",
		MailboxIDs: []int64{1, 3}, Note: "hello", Name: "Shop news",
	})
	require.NoError(t, err)
	assert.Equal(t, int64(43), a.ID)
	assert.Equal(t, "news.cat@sl.test", a.Email)

	req := f.Only(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v3/alias/custom/new", req.Path)
	assert.Equal(t, "hostname=shop.example", req.Query)
	assertHeaders(t, req, true)
	assert.JSONEq(t, `{"alias_prefix":"news","signed_suffix":".cat@sl.test.X6_7OQ.sig","mailbox_ids":[1,3],"note":"hello","name":"Shop news"}`, string(req.Body))
}

func TestSimpleLoginCreateCustomAliasOmitsOptionalFields(t *testing.T) {
	f := newFake(t, answer(http.StatusCreated, nil, aliasJSON(43, "news.cat@sl.test", true, "")))
	_, err := f.client().CreateCustomAlias(context.Background(), simplelogin.CustomAliasParams{
		Prefix: "news", SignedSuffix: ".cat@sl.test.sig", MailboxIDs: []int64{1},
	})
	require.NoError(t, err)
	req := f.Only(t)
	assert.Empty(t, req.Query)
	assert.JSONEq(t, `{"alias_prefix":"news","signed_suffix":".cat@sl.test.sig","mailbox_ids":[1]}`, string(req.Body))
}

func TestSimpleLoginCreateCustomAliasConflictAndExpiredSuffixAreErrors(t *testing.T) {
	for _, status := range []int{http.StatusConflict, http.StatusPreconditionFailed} {
		f := newFake(t, answer(status, nil, `{"error":"alias news.cat@sl.test already exists"}`))
		_, err := f.client().CreateCustomAlias(context.Background(), simplelogin.CustomAliasParams{
			Prefix: "news", SignedSuffix: "s", MailboxIDs: []int64{1},
		})
		var slErr *simplelogin.Error
		require.ErrorAs(t, err, &slErr)
		assert.Equal(t, status, slErr.StatusCode)
		assert.False(t, slErr.Temporary())
	}
}

func TestSimpleLoginGetAlias(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, aliasJSON(42, "a@sl.test", false, "n")))
	a, err := f.client().GetAlias(context.Background(), 42)
	require.NoError(t, err)
	assert.Equal(t, int64(42), a.ID)
	assert.False(t, a.Enabled)
	req := f.Only(t)
	assert.Equal(t, "GET /api/aliases/42", req.Method+" "+req.Path)
	assertHeaders(t, req, false)
}

func TestSimpleLoginGetAliasNotFoundShapes(t *testing.T) {
	cases := []struct {
		name     string
		respond  http.HandlerFunc
		notFound bool
	}{
		// What SimpleLogin answers for an unknown id (app/api/views/alias.py).
		{"400 Unknown error", answer(400, nil, `{"error":"Unknown error"}`), true},
		// What the unofficial spec documents, and other servers may answer.
		{"404 about the alias", answer(404, nil, `{"error":"Alias not found"}`), true},
		// The router's answer for a path it does not know: a wrong base URL.
		{"404 no such endpoint", answer(404, nil, `{"error":"No such endpoint"}`), false},
		{"404 from a proxy", answer(404, map[string]string{"Content-Type": "text/html"}, "<html>not found</html>"), false},
		// Another account's alias.
		{"403 Forbidden", answer(403, nil, `{"error":"Forbidden"}`), false},
		{"401 Wrong api key", answer(401, nil, `{"error":"Wrong api key"}`), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.respond)
			_, err := f.client().GetAlias(context.Background(), 9)
			require.Error(t, err)
			assert.Equal(t, tc.notFound, errors.Is(err, simplelogin.ErrAliasNotFound), "ErrAliasNotFound: %v", err)
			var slErr *simplelogin.Error
			assert.ErrorAs(t, err, &slErr, "the API error stays in the chain")
		})
	}
}

func TestSimpleLoginListAliasesWithoutQueryIsAGet(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"aliases":[`+aliasJSON(2, "b@sl.test", true, "")+`,`+aliasJSON(1, "a@sl.test", false, "x")+`]}`))
	got, err := f.client().ListAliases(context.Background(), simplelogin.ListParams{PageID: 2})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, int64(2), got[0].ID)
	assert.Equal(t, "x", got[1].Note)
	req := f.Only(t)
	assert.Equal(t, "GET /api/v2/aliases", req.Method+" "+req.Path)
	assert.Equal(t, "page_id=2", req.Query)
	assertHeaders(t, req, false)
}

func TestSimpleLoginListAliasesWithQueryPostsIt(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"aliases":[]}`))
	got, err := f.client().ListAliases(context.Background(), simplelogin.ListParams{Query: "crmflow:alias/a1", Filter: simplelogin.FilterEnabled})
	require.NoError(t, err)
	assert.Empty(t, got)
	req := f.Only(t)
	assert.Equal(t, "POST /api/v2/aliases", req.Method+" "+req.Path)
	assert.Equal(t, "enabled=true&page_id=0", req.Query)
	assertHeaders(t, req, true)
	assert.JSONEq(t, `{"query":"crmflow:alias/a1"}`, string(req.Body))
}

func TestSimpleLoginToggleAlias(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"enabled":false}`))
	enabled, err := f.client().ToggleAlias(context.Background(), 42)
	require.NoError(t, err)
	assert.False(t, enabled)
	req := f.Only(t)
	assert.Equal(t, "POST /api/aliases/42/toggle", req.Method+" "+req.Path)
	assertHeaders(t, req, false)
}

func TestSimpleLoginToggleAliasRejectsAnswerWithoutState(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{}`))
	_, err := f.client().ToggleAlias(context.Background(), 42)
	require.ErrorContains(t, err, "no enabled field")
}

func TestSimpleLoginDeleteAlias(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"deleted":true}`))
	require.NoError(t, f.client().DeleteAlias(context.Background(), 42))
	req := f.Only(t)
	assert.Equal(t, "DELETE /api/aliases/42", req.Method+" "+req.Path)
	assertHeaders(t, req, false)
}

func TestSimpleLoginErrorsAreDecoded(t *testing.T) {
	retryAt := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name      string
		respond   http.HandlerFunc
		status    int
		message   string
		retry     time.Duration
		temporary bool
		// retryWithin, when set, replaces the exact RetryAfter check.
		retryWithin [2]time.Duration
	}{
		{"429 with Retry-After seconds", answer(429, map[string]string{"Retry-After": "7"}, `{"error":"Rate limit exceeded"}`),
			429, "Rate limit exceeded", 7 * time.Second, true, [2]time.Duration{}},
		{"429 with Retry-After date", answer(429, map[string]string{"Retry-After": retryAt}, `{"error":"Rate limit exceeded"}`),
			429, "Rate limit exceeded", 0, true, [2]time.Duration{25 * time.Second, 31 * time.Second}},
		// SimpleLogin's own 429s carry no Retry-After.
		{"429 without Retry-After gets the default backoff", answer(429, nil, `{"error":"Rate limit exceeded"}`),
			429, "Rate limit exceeded", simplelogin.DefaultRateLimitBackoff, true, [2]time.Duration{}},
		{"401 wrong key", answer(401, nil, `{"error":"Wrong api key"}`), 401, "Wrong api key", 0, false, [2]time.Duration{}},
		{"403 disabled account", answer(403, nil, `{"error":"Disabled account"}`), 403, "Disabled account", 0, false, [2]time.Duration{}},
		{"500", answer(500, nil, `{"error":"Internal error"}`), 500, "Internal error", 0, true, [2]time.Duration{}},
		{"503 with Retry-After", answer(503, map[string]string{"Retry-After": "3"}, ``), 503, "Service Unavailable", 3 * time.Second, true, [2]time.Duration{}},
		{"502 non-JSON", answer(502, map[string]string{"Content-Type": "text/html"}, "<html>502 Bad Gateway</html>\n"),
			502, "<html>502 Bad Gateway</html>", 0, true, [2]time.Duration{}},
		{"400 quota", answer(400, nil, `{"error":"You have reached the limitation of a free account"}`),
			400, "You have reached the limitation of a free account", 0, false, [2]time.Duration{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.respond)
			_, err := f.client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{Note: "n"})
			var slErr *simplelogin.Error
			require.ErrorAs(t, err, &slErr)
			assert.Equal(t, tc.status, slErr.StatusCode)
			assert.Equal(t, tc.message, slErr.Message)
			if lo, hi := tc.retryWithin[0], tc.retryWithin[1]; hi > 0 {
				assert.True(t, slErr.RetryAfter >= lo && slErr.RetryAfter <= hi, "RetryAfter %s not in [%s, %s]", slErr.RetryAfter, lo, hi)
			} else {
				assert.Equal(t, tc.retry, slErr.RetryAfter)
			}
			assert.Equal(t, tc.temporary, slErr.Temporary(), "Temporary()")
			assert.NotContains(t, err.Error(), testKey)
			assert.Len(t, f.Requests(), 1, "the client must not retry on its own; Temporal does")
		})
	}
}

func TestSimpleLoginDefaultRateLimitBackoffCoversFivePerMinute(t *testing.T) {
	// Alias creation is limited to 5 a minute: waiting less than a fifth of
	// a minute would only spend the next attempt on another 429.
	assert.GreaterOrEqual(t, simplelogin.DefaultRateLimitBackoff, time.Minute/5)
}

func TestSimpleLoginInvalidParamsAreRefusedBeforeSending(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{}`))
	c := f.client()
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"unknown random mode": func() error {
			_, err := c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Mode: "emoji"})
			return err
		},
		"custom without prefix": func() error {
			_, err := c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{SignedSuffix: "s", MailboxIDs: []int64{1}})
			return err
		},
		"custom without suffix": func() error {
			_, err := c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{Prefix: "p", MailboxIDs: []int64{1}})
			return err
		},
		"custom without mailbox": func() error {
			_, err := c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{Prefix: "p", SignedSuffix: "s"})
			return err
		},
		"get id 0":       func() error { _, err := c.GetAlias(ctx, 0); return err },
		"toggle id -1":   func() error { _, err := c.ToggleAlias(ctx, -1); return err },
		"delete id 0":    func() error { return c.DeleteAlias(ctx, 0) },
		"negative page":  func() error { _, err := c.ListAliases(ctx, simplelogin.ListParams{PageID: -1}); return err },
		"unknown filter": func() error { _, err := c.ListAliases(ctx, simplelogin.ListParams{Filter: "hibp"}); return err },
		"empty marker":   func() error { _, err := c.FindByNote(ctx, ""); return err },
		"marker with space": func() error {
			_, err := c.FindByNote(ctx, "crmflow:alias/a 1")
			return err
		},
		"marker with backslash": func() error {
			_, err := c.FindByNote(ctx, `crmflow:alias/a\1`)
			return err
		},
	} {
		assert.ErrorIs(t, call(), simplelogin.ErrInvalidParams, name)
	}
	assert.Empty(t, f.Requests())
}

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
	a, err := f.client().FindByNote(context.Background(), marker)
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
	a, err := f.client().FindByNote(context.Background(), marker)
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
	_, err := f.client().FindByNote(context.Background(), "crmflow:alias/a1")
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)
	assert.Len(t, f.Requests(), 2, "a full page is followed by the next, the empty one ends it")
}

func TestSimpleLoginFindByNotePassesErrorsOn(t *testing.T) {
	f := newFake(t, answer(http.StatusTooManyRequests, nil, `{"error":"Rate limit exceeded"}`))
	_, err := f.client().FindByNote(context.Background(), "crmflow:alias/a1")
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
		a, err := f.client().SetEnabled(context.Background(), 42, want)
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
		a, err := f.client().SetEnabled(context.Background(), 42, want)
		require.NoError(t, err)
		assert.Equal(t, want, a.Enabled)
		assert.Equal(t, want, s.enabled)
		assert.Equal(t, 1, s.toggles)
		// Repeating the call, as a retried activity does, changes nothing.
		_, err = f.client().SetEnabled(context.Background(), 42, want)
		require.NoError(t, err)
		assert.Equal(t, 1, s.toggles, "a repeated SetEnabled must not flip the alias back")
		assert.Equal(t, want, s.enabled)
	}
}

func TestSimpleLoginSetEnabledRereadsWhenSomeoneElseFlippedInBetween(t *testing.T) {
	s := &statefulAlias{enabled: true, beforeToggle: func(s *statefulAlias) { s.enabled = !s.enabled }}
	f := newFake(t, s.handler(t))
	a, err := f.client().SetEnabled(context.Background(), 42, false)
	require.NoError(t, err)
	assert.False(t, a.Enabled)
	assert.False(t, s.enabled)
	assert.Equal(t, 2, s.toggles, "our first toggle undid the other flip; the second reaches the state")
}

func TestSimpleLoginSetEnabledUnknownAliasIsNotFound(t *testing.T) {
	f := newFake(t, answer(http.StatusBadRequest, nil, `{"error":"Unknown error"}`))
	_, err := f.client().SetEnabled(context.Background(), 42, true)
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
	_, err := f.client().SetEnabled(context.Background(), 42, false)
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
			err := f.client().DeleteIfExists(context.Background(), 42)
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

func TestSimpleLoginConsoleModeSendsNothingAndAnswersFromMemory(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{}`))
	rec := &providerhttptest.Recorder{}
	// Key and URL are set on purpose: console mode must win over both.
	c := f.client(simplelogin.WithConsole(rec))
	require.True(t, c.Console())
	ctx := context.Background()

	info, err := c.UserInfo(ctx)
	require.NoError(t, err)
	assert.Equal(t, "console@simplelogin.invalid", info.Email)

	_, err = c.FindByNote(ctx, "crmflow:alias/a1")
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)

	a1, err := c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Mode: simplelogin.ModeUUID, Note: "crmflow:alias/a1"})
	require.NoError(t, err)
	assert.Equal(t, "console-1@simplelogin.invalid", a1.Email)
	assert.True(t, a1.Enabled)

	opts, err := c.AliasOptions(ctx, "shop.example")
	require.NoError(t, err)
	require.NotEmpty(t, opts.Suffixes)
	mbs, err := c.Mailboxes(ctx)
	require.NoError(t, err)
	a2, err := c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{
		Prefix: "News", SignedSuffix: opts.Suffixes[0].SignedSuffix, MailboxIDs: []int64{mbs[0].ID}, Note: "crmflow:alias/a2",
	})
	require.NoError(t, err)
	assert.Equal(t, "news.console-2@simplelogin.invalid", a2.Email)

	found, err := c.FindByNote(ctx, "crmflow:alias/a1")
	require.NoError(t, err)
	assert.Equal(t, a1.ID, found.ID, "console creations are found again, so look-before-create works in dev")

	got, err := c.SetEnabled(ctx, a1.ID, false)
	require.NoError(t, err)
	assert.False(t, got.Enabled)
	got, err = c.GetAlias(ctx, a1.ID)
	require.NoError(t, err)
	assert.False(t, got.Enabled)

	require.NoError(t, c.DeleteIfExists(ctx, a1.ID))
	require.NoError(t, c.DeleteIfExists(ctx, a1.ID))
	_, err = c.GetAlias(ctx, a1.ID)
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)

	// An id from before a restart reads as an enabled alias.
	old, err := c.GetAlias(ctx, 9001)
	require.NoError(t, err)
	assert.Equal(t, "console-9001@simplelogin.invalid", old.Email)

	// Validation still applies, so console runs catch what SimpleLogin would refuse.
	_, err = c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Mode: "emoji"})
	require.ErrorIs(t, err, simplelogin.ErrInvalidParams)

	assert.Empty(t, f.Requests(), "console mode must not send anything")
	require.NotEmpty(t, rec.Calls())
	var creates []simplelogin.Call
	for _, call := range rec.Calls() {
		if call.Method == http.MethodPost && strings.Contains(call.Path, "/new") {
			creates = append(creates, call)
		}
	}
	require.Len(t, creates, 2)
	assert.Equal(t, "/api/alias/random/new?mode=uuid", creates[0].Path)
	assert.JSONEq(t, `{"note":"crmflow:alias/a1"}`, string(creates[0].Body))
	assert.Equal(t, "/api/v3/alias/custom/new", creates[1].Path)
	assert.Equal(t, "GET", rec.Calls()[0].Method)
	assert.Equal(t, "/api/user_info", rec.Calls()[0].Path)
	assert.Nil(t, rec.Calls()[0].Body)
}

func TestSimpleLoginLogRecorderLogsTheCall(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	c := simplelogin.NewClient(simplelogin.WithAPIKey(testKey), simplelogin.WithConsole(simplelogin.LogRecorder{Logger: logger}))
	_, err := c.CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{Hostname: "a.example", Note: "crmflow:alias/a1 <x&y>"})
	require.NoError(t, err)

	var entry map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &entry), "log: %s", buf.String())
	assert.Equal(t, "INFO", entry["level"])
	assert.Equal(t, "CONSOLE MODE simplelogin: would send", entry["msg"])
	assert.Equal(t, "POST", entry["method"])
	assert.Equal(t, "/api/alias/random/new?hostname=a.example", entry["path"])
	assert.JSONEq(t, `{"note":"crmflow:alias/a1 <x&y>"}`, entry["body"].(string))
	assert.NotContains(t, buf.String(), testKey)
}
