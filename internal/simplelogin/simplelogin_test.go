package simplelogin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

const testKey = "sl_test_key_x"

// newFake starts a stand-in for SimpleLogin: it records every request,
// checks it against the (unofficial) OpenAPI spec when CRMFLOW_SPECS_DIR is
// set, and answers with respond; f.Client() is a client for it. Answers are
// not checked: see TestSimpleLoginRequestsMatchOpenAPI for why.
func newFake(t *testing.T, respond http.HandlerFunc) *providerhttptest.Fake[*simplelogin.Client] {
	t.Helper()
	return providerhttptest.NewFake(t, simplelogin.NewClient, testKey, openapicheck.Load(t, openapicheck.SimpleLogin).Middleware(t, false, respond))
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
	info, err := f.Client().UserInfo(context.Background())
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
	opts, err := f.Client().AliasOptions(context.Background(), "www.shop.example")
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
	got, err := f.Client().Mailboxes(context.Background())
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
	a, err := f.Client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{
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
	a, err := f.Client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{})
	require.NoError(t, err)
	assert.Equal(t, &simplelogin.Alias{ID: 5, Email: "x1@sl.test", Enabled: true}, a)
	req := f.Only(t)
	assert.Empty(t, req.Query)
	assert.JSONEq(t, `{}`, string(req.Body))
}

func TestSimpleLoginCreateRandomAliasRejectsAnswerWithoutAlias(t *testing.T) {
	f := newFake(t, answer(http.StatusCreated, nil, `{}`))
	_, err := f.Client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{})
	require.ErrorContains(t, err, "no alias id or address")
}

func TestSimpleLoginCreateCustomAliasSendsSignedSuffixAndMailboxes(t *testing.T) {
	f := newFake(t, answer(http.StatusCreated, nil, aliasJSON(43, "news.cat@sl.test", true, "hello")))
	a, err := f.Client().CreateCustomAlias(context.Background(), simplelogin.CustomAliasParams{
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
	_, err := f.Client().CreateCustomAlias(context.Background(), simplelogin.CustomAliasParams{
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
		_, err := f.Client().CreateCustomAlias(context.Background(), simplelogin.CustomAliasParams{
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
	a, err := f.Client().GetAlias(context.Background(), 42)
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
			_, err := f.Client().GetAlias(context.Background(), 9)
			require.Error(t, err)
			assert.Equal(t, tc.notFound, errors.Is(err, simplelogin.ErrAliasNotFound), "ErrAliasNotFound: %v", err)
			var slErr *simplelogin.Error
			assert.ErrorAs(t, err, &slErr, "the API error stays in the chain")
		})
	}
}

func TestSimpleLoginListAliasesWithoutQueryIsAGet(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"aliases":[`+aliasJSON(2, "b@sl.test", true, "")+`,`+aliasJSON(1, "a@sl.test", false, "x")+`]}`))
	got, err := f.Client().ListAliases(context.Background(), simplelogin.ListParams{PageID: 2})
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
	got, err := f.Client().ListAliases(context.Background(), simplelogin.ListParams{Query: "crmflow:alias/a1", Filter: simplelogin.FilterEnabled})
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
	enabled, err := f.Client().ToggleAlias(context.Background(), 42)
	require.NoError(t, err)
	assert.False(t, enabled)
	req := f.Only(t)
	assert.Equal(t, "POST /api/aliases/42/toggle", req.Method+" "+req.Path)
	assertHeaders(t, req, false)
}

func TestSimpleLoginToggleAliasRejectsAnswerWithoutState(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{}`))
	_, err := f.Client().ToggleAlias(context.Background(), 42)
	require.ErrorContains(t, err, "no enabled field")
}

func TestSimpleLoginDeleteAlias(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"deleted":true}`))
	require.NoError(t, f.Client().DeleteAlias(context.Background(), 42))
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
			_, err := f.Client().CreateRandomAlias(context.Background(), simplelogin.RandomAliasParams{Note: "n"})
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
	c := f.Client()
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
