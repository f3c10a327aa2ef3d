package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

const slTestKey = "sl_test_key_x"

// slRequest is one request the fake SimpleLogin received.
type slRequest struct {
	route string // "METHOD /path"
	query string
	body  map[string]any
}

// slCanned is a canned answer for one route.
type slCanned struct {
	status int
	header map[string]string
	body   string
}

// slFakeAlias is an alias held by the fake.
type slFakeAlias struct {
	id      int64
	email   string
	enabled bool
	note    string
}

// fakeSimpleLogin is a small stateful SimpleLogin: it keeps aliases, answers
// list (with the note search), create, options, mailboxes, get, toggle and
// delete the way simple-login/app does, checks the Authentication header, and
// counts what it received. Canned answers in fail override a route, once
// each, in order.
type fakeSimpleLogin struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []slRequest
	aliases map[int64]*slFakeAlias
	nextID  int64
	fail    map[string][]slCanned
	// reuseOnHostname makes a random creation with a hostname answer with
	// this existing alias, as SimpleLogin does when the user's "include
	// website in one-click alias" setting finds one.
	reuseOnHostname int64
	// mailboxes are the account's mailboxes, in id order; aliasMailboxes
	// what each alias forwards to once changed.
	mailboxes      []map[string]any
	aliasMailboxes map[int64][]int64
}

func newFakeSimpleLogin(t *testing.T) *fakeSimpleLogin {
	t.Helper()
	f := &fakeSimpleLogin{t: t, aliases: map[int64]*slFakeAlias{}, nextID: 100, fail: map[string][]slCanned{},
		aliasMailboxes: map[int64][]int64{}, mailboxes: []map[string]any{
			{"id": int64(3), "email": "unverified@example.com", "default": false, "verified": false},
			{"id": int64(4), "email": "other@example.com", "default": false, "verified": true},
			{"id": int64(5), "email": "me@example.com", "default": true, "verified": true},
		}}
	f.srv = httptest.NewServer(openapicheck.Load(t, openapicheck.SimpleLogin).Middleware(t, false, http.HandlerFunc(f.serve)))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSimpleLogin) client() *simplelogin.Client {
	return simplelogin.NewClient(simplelogin.WithAPIKey(slTestKey), simplelogin.WithBaseURL(f.srv.URL))
}

// add stores an alias as if it had been created earlier.
func (f *fakeSimpleLogin) add(id int64, email string, enabled bool, note string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aliases[id] = &slFakeAlias{id: id, email: email, enabled: enabled, note: note}
}

// failNext makes the next request to route get the canned answer.
func (f *fakeSimpleLogin) failNext(route string, c slCanned) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[route] = append(f.fail[route], c)
}

// verify marks the account's mailbox for email verified, as its owner's
// click on SimpleLogin's link does.
func (f *fakeSimpleLogin) verify(email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, mb := range f.mailboxes {
		if mb["email"] == email {
			mb["verified"] = true
		}
	}
}

// forwardsTo is what alias id forwards to, once changed.
func (f *fakeSimpleLogin) forwardsTo(id int64) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.aliasMailboxes[id])
}

func (f *fakeSimpleLogin) requests() []slRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// routes lists the routes received, in order.
func (f *fakeSimpleLogin) routes() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.route)
	}
	return out
}

// count returns how many requests hit route.
func (f *fakeSimpleLogin) count(route string) int {
	n := 0
	for _, r := range f.requests() {
		if r.route == route {
			n++
		}
	}
	return n
}

func (f *fakeSimpleLogin) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			f.t.Errorf("fake simplelogin: body is not a JSON object: %v", err)
		}
	}
	// Collapse ids so routes read "GET /api/aliases/{id}".
	path := r.URL.Path
	var id int64
	if rest, ok := strings.CutPrefix(path, "/api/aliases/"); ok {
		idStr, tail, _ := strings.Cut(rest, "/")
		id, _ = strconv.ParseInt(idStr, 10, 64)
		path = "/api/aliases/{id}"
		if tail != "" {
			path += "/" + tail
		}
	}
	if rest, ok := strings.CutPrefix(path, "/api/mailboxes/"); ok {
		id, _ = strconv.ParseInt(rest, 10, 64)
		path = "/api/mailboxes/{id}"
	}
	route := r.Method + " " + path

	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, slRequest{route: route, query: r.URL.RawQuery, body: body})

	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.Header.Get("Authentication") != slTestKey || r.Header.Get("Authorization") != "" {
		reply(http.StatusUnauthorized, map[string]any{"error": "Wrong api key"})
		return
	}
	if queue := f.fail[route]; len(queue) > 0 {
		c := queue[0]
		f.fail[route] = queue[1:]
		for k, v := range c.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.status)
		_, _ = io.WriteString(w, c.body)
		return
	}

	aliasJSON := func(a *slFakeAlias) map[string]any {
		return map[string]any{"id": a.id, "email": a.email, "alias": a.email, "enabled": a.enabled, "note": a.note, "name": nil}
	}
	create := func(email string) {
		note, _ := body["note"].(string)
		f.nextID++
		a := &slFakeAlias{id: f.nextID, email: strings.ReplaceAll(email, "{id}", strconv.FormatInt(f.nextID, 10)), enabled: true, note: note}
		f.aliases[a.id] = a
		reply(http.StatusCreated, aliasJSON(a))
	}

	switch route {
	case "GET /api/v2/aliases", "POST /api/v2/aliases":
		page, err := strconv.Atoi(r.URL.Query().Get("page_id"))
		if err != nil {
			reply(http.StatusBadRequest, map[string]any{"error": "page_id must be provided in request query"})
			return
		}
		query, _ := body["query"].(string)
		var ids []int64
		for id, a := range f.aliases {
			if query == "" || strings.Contains(strings.ToLower(a.note+" "+a.email), strings.ToLower(query)) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		out := []any{}
		for i := page * simplelogin.PageSize; i < len(ids) && i < (page+1)*simplelogin.PageSize; i++ {
			out = append(out, aliasJSON(f.aliases[ids[i]]))
		}
		reply(http.StatusOK, map[string]any{"aliases": out})
	case "POST /api/alias/random/new":
		if f.reuseOnHostname != 0 && r.URL.Query().Get("hostname") != "" {
			reply(http.StatusCreated, aliasJSON(f.aliases[f.reuseOnHostname]))
			return
		}
		create("random-{id}@sl.test")
	case "GET /api/v5/alias/options":
		reply(http.StatusOK, map[string]any{"can_create": true, "prefix_suggestion": "", "suffixes": []any{
			map[string]any{"suffix": ".cat@sl.test", "signed_suffix": ".cat@sl.test.sig" + strconv.Itoa(len(f.reqs)), "is_custom": false, "is_premium": false},
			map[string]any{"suffix": ".dog@sl.test", "signed_suffix": ".dog@sl.test.sig", "is_custom": false, "is_premium": false},
		}})
	case "GET /api/v2/mailboxes":
		reply(http.StatusOK, map[string]any{"mailboxes": f.mailboxes})
	case "POST /api/mailboxes":
		email, _ := body["email"].(string)
		for _, mb := range f.mailboxes {
			if mb["email"] == strings.ToLower(email) {
				reply(http.StatusBadRequest, map[string]any{"error": email + " already used"})
				return
			}
		}
		f.nextID++
		mb := map[string]any{"id": f.nextID, "email": strings.ToLower(email), "default": false, "verified": false}
		f.mailboxes = append(f.mailboxes, mb)
		reply(http.StatusCreated, mb)
	case "DELETE /api/mailboxes/{id}":
		i := slices.IndexFunc(f.mailboxes, func(mb map[string]any) bool { return mb["id"] == id })
		switch {
		case i < 0:
			reply(http.StatusForbidden, map[string]any{"error": "Forbidden"})
		case f.mailboxes[i]["default"] == true:
			reply(http.StatusBadRequest, map[string]any{"error": "You cannot delete the default mailbox"})
		default:
			f.mailboxes = slices.Delete(f.mailboxes, i, i+1)
			reply(http.StatusOK, map[string]any{"deleted": true})
		}
	case "PATCH /api/aliases/{id}":
		if _, ok := f.aliases[id]; !ok {
			reply(http.StatusForbidden, map[string]any{"error": "Forbidden"})
			return
		}
		var ids []int64
		for _, v := range body["mailbox_ids"].([]any) {
			mid := int64(v.(float64))
			i := slices.IndexFunc(f.mailboxes, func(mb map[string]any) bool { return mb["id"] == mid })
			if i < 0 || f.mailboxes[i]["verified"] != true {
				reply(http.StatusBadRequest, map[string]any{"error": "Forbidden"})
				return
			}
			ids = append(ids, mid)
		}
		f.aliasMailboxes[id] = ids
		reply(http.StatusOK, map[string]any{"ok": true})
	case "POST /api/v3/alias/custom/new":
		prefix, _ := body["alias_prefix"].(string)
		create(prefix + ".cat@sl.test")
	case "GET /api/aliases/{id}":
		a, ok := f.aliases[id]
		if !ok {
			reply(http.StatusBadRequest, map[string]any{"error": "Unknown error"})
			return
		}
		reply(http.StatusOK, aliasJSON(a))
	case "POST /api/aliases/{id}/toggle":
		a, ok := f.aliases[id]
		if !ok {
			reply(http.StatusForbidden, map[string]any{"error": "Forbidden"})
			return
		}
		a.enabled = !a.enabled
		reply(http.StatusOK, map[string]any{"enabled": a.enabled})
	case "DELETE /api/aliases/{id}":
		if _, ok := f.aliases[id]; !ok {
			reply(http.StatusForbidden, map[string]any{"error": "Forbidden"})
			return
		}
		delete(f.aliases, id)
		reply(http.StatusOK, map[string]any{"deleted": true})
	default:
		reply(http.StatusNotFound, map[string]any{"error": "No such endpoint"})
	}
}

// slEnv returns a test activity environment with the SimpleLogin activities
// registered on client.
func slEnv(client *simplelogin.Client) (*testsuite.TestActivityEnvironment, *activities.SimpleLoginActivities) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &activities.SimpleLoginActivities{SL: client}
	env.RegisterActivity(a)
	return env, a
}

func runCreateAlias(t *testing.T, client *simplelogin.Client, in activities.CreateAliasInput) (*activities.AliasOutput, error) {
	t.Helper()
	env, a := slEnv(client)
	val, err := env.ExecuteActivity(a.CreateAlias, in)
	if err != nil {
		return nil, err
	}
	var out activities.AliasOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

func runSetAliasEnabled(t *testing.T, client *simplelogin.Client, in activities.SetAliasEnabledInput) (*activities.AliasOutput, error) {
	t.Helper()
	env, a := slEnv(client)
	val, err := env.ExecuteActivity(a.SetAliasEnabled, in)
	if err != nil {
		return nil, err
	}
	var out activities.AliasOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

func runDeleteAlias(t *testing.T, client *simplelogin.Client, in activities.DeleteAliasInput) error {
	t.Helper()
	env, a := slEnv(client)
	_, err := env.ExecuteActivity(a.DeleteAlias, in)
	return err
}

// requireSimpleLoginAppError unwraps the classified error and checks its
// type, retryability and next retry delay.
func requireSimpleLoginAppError(t *testing.T, err error, wantType string, nonRetryable bool, delay time.Duration) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want a *temporal.ApplicationError, got %T: %v", err, err)
	assert.Equal(t, wantType, appErr.Type())
	assert.Equal(t, nonRetryable, appErr.NonRetryable(), "NonRetryable()")
	assert.Equal(t, delay, appErr.NextRetryDelay(), "NextRetryDelay()")
	assert.NotContains(t, err.Error(), slTestKey)
}

func TestSimpleLoginCreateAliasLooksBeforeItCreates(t *testing.T) {
	for _, mode := range []string{contract.AliasModeRandom, contract.AliasModeCustom} {
		t.Run(mode, func(t *testing.T) {
			f := newFakeSimpleLogin(t)
			// A near miss, and the alias an earlier attempt created.
			f.add(7, "other@sl.test", true, "crmflow:alias/a10")
			f.add(8, "mine@sl.test", false, "welcome\ncrmflow:alias/a1")
			in := activities.CreateAliasInput{AliasID: "a1", Mode: mode}
			if mode == contract.AliasModeCustom {
				in.Prefix = "news"
			}
			out, err := runCreateAlias(t, f.client(), in)
			require.NoError(t, err)
			assert.Equal(t, &activities.AliasOutput{SimpleLoginID: 8, Email: "mine@sl.test", Enabled: false}, out)
			assert.Equal(t, []string{"POST /api/v2/aliases"}, f.routes(), "an existing marker means no creation")
			assert.Equal(t, map[string]any{"query": "crmflow:alias/a1"}, f.requests()[0].body)
		})
	}
}

func TestSimpleLoginCreateRandomAliasWhenAbsent(t *testing.T) {
	f := newFakeSimpleLogin(t)
	out, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{
		AliasID: "a1", Mode: contract.AliasModeRandom, Hostname: "shop.example", Note: "  for Ada  ",
	})
	require.NoError(t, err)
	assert.Equal(t, &activities.AliasOutput{SimpleLoginID: 101, Email: "random-101@sl.test", Enabled: true}, out)

	reqs := f.requests()
	require.Equal(t, []string{"POST /api/v2/aliases", "POST /api/alias/random/new"}, f.routes())
	assert.Equal(t, "hostname=shop.example", reqs[1].query)
	assert.Equal(t, map[string]any{"note": "for Ada\ncrmflow:alias/a1"}, reqs[1].body)

	// The retry of a step whose answer was lost finds the alias and creates
	// nothing more.
	again, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom, Hostname: "shop.example"})
	require.NoError(t, err)
	assert.Equal(t, out, again)
	assert.Equal(t, 1, f.count("POST /api/alias/random/new"))
}

func TestSimpleLoginCreateRandomAliasRefusesAnAliasSimpleLoginReused(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.add(50, "shop@sl.test", true, "crmflow:alias/other")
	f.reuseOnHostname = 50
	out, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom, Hostname: "shop.example"})
	require.NoError(t, err)
	assert.NotEqual(t, int64(50), out.SimpleLoginID, "another crmflow alias's SimpleLogin alias must not be taken")
	reqs := f.requests()
	require.Equal(t, []string{"POST /api/v2/aliases", "POST /api/alias/random/new", "POST /api/alias/random/new"}, f.routes())
	assert.Equal(t, "hostname=shop.example", reqs[1].query)
	assert.Empty(t, reqs[2].query, "the second creation goes without the hostname")
}

func TestSimpleLoginCreateCustomAlias(t *testing.T) {
	f := newFakeSimpleLogin(t)
	out, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{
		AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news", Hostname: "shop.example",
	})
	require.NoError(t, err)
	assert.Equal(t, &activities.AliasOutput{SimpleLoginID: 101, Email: "news.cat@sl.test", Enabled: true}, out)

	reqs := f.requests()
	require.Equal(t, []string{"POST /api/v2/aliases", "GET /api/v2/mailboxes", "GET /api/v5/alias/options", "POST /api/v3/alias/custom/new"}, f.routes())
	assert.Equal(t, "hostname=shop.example", reqs[2].query)
	assert.Equal(t, "hostname=shop.example", reqs[3].query)
	assert.Equal(t, map[string]any{
		"alias_prefix":  "news",
		"signed_suffix": ".cat@sl.test.sig3", // the first suffix, fetched right before
		"mailbox_ids":   []any{float64(5)},   // the default verified mailbox
		"note":          "crmflow:alias/a2",
	}, reqs[3].body)
}

func TestSimpleLoginCreateCustomAliasWithMailboxesSkipsTheLookup(t *testing.T) {
	f := newFakeSimpleLogin(t)
	_, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{
		AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news", MailboxIDs: []int64{4, 5},
	})
	require.NoError(t, err)
	assert.Equal(t, 0, f.count("GET /api/v2/mailboxes"))
	reqs := f.requests()
	assert.Equal(t, []any{float64(4), float64(5)}, reqs[len(reqs)-1].body["mailbox_ids"])
}

func TestSimpleLoginCreateCustomAliasRefreshesAnExpiredSuffixOnce(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.failNext("POST /api/v3/alias/custom/new", slCanned{status: 412, body: `{"error":"Alias creation time is expired, please retry"}`})
	out, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news"})
	require.NoError(t, err)
	assert.Equal(t, "news.cat@sl.test", out.Email)
	assert.Equal(t, 2, f.count("GET /api/v5/alias/options"))
	assert.Equal(t, 2, f.count("POST /api/v3/alias/custom/new"))

	// A second 412 in a row is not retried.
	f = newFakeSimpleLogin(t)
	for range 2 {
		f.failNext("POST /api/v3/alias/custom/new", slCanned{status: 412, body: `{"error":"Alias creation time is expired, please retry"}`})
	}
	_, err = runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news"})
	requireSimpleLoginAppError(t, err, "SimpleLoginInvalidRequest", true, 0)
	assert.Equal(t, 2, f.count("POST /api/v3/alias/custom/new"))
}

func TestSimpleLoginCreateCustomAliasTakenAddressIsConflict(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.failNext("POST /api/v3/alias/custom/new", slCanned{status: 409, body: `{"error":"alias news.cat@sl.test already exists"}`})
	_, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news"})
	requireSimpleLoginAppError(t, err, "SimpleLoginConflict", true, 0)
	assert.Equal(t, 2, f.count("POST /api/v2/aliases"), "a 409 looks for the marker once more before giving up")
}

func TestSimpleLoginCreateAliasClassifiesErrors(t *testing.T) {
	cases := []struct {
		name         string
		canned       slCanned
		wantType     string
		nonRetryable bool
		wantDelay    time.Duration
	}{
		{"429 with Retry-After", slCanned{429, map[string]string{"Retry-After": "7"}, `{"error":"Rate limit exceeded"}`},
			"SimpleLoginRateLimited", false, 7 * time.Second},
		// What SimpleLogin sends: no Retry-After. The 5-a-minute creation
		// limit sets the default wait.
		{"429 without Retry-After waits the default backoff", slCanned{429, nil, `{"error":"Rate limit exceeded"}`},
			"SimpleLoginRateLimited", false, simplelogin.DefaultRateLimitBackoff},
		{"500", slCanned{500, nil, `{"error":"Internal error"}`}, "SimpleLoginUnavailable", false, 0},
		{"502 non-JSON", slCanned{502, nil, `bad gateway`}, "SimpleLoginUnavailable", false, 0},
		{"401", slCanned{401, nil, `{"error":"Wrong api key"}`}, "SimpleLoginAuthFailed", true, 0},
		{"403", slCanned{403, nil, `{"error":"Disabled account"}`}, "SimpleLoginAuthFailed", true, 0},
		{"400 quota", slCanned{400, nil, `{"error":"You have reached the limitation of a free account"}`}, "SimpleLoginInvalidRequest", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSimpleLogin(t)
			f.failNext("POST /api/alias/random/new", tc.canned)
			_, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
			requireSimpleLoginAppError(t, err, tc.wantType, tc.nonRetryable, tc.wantDelay)
			assert.Equal(t, 1, f.count("POST /api/alias/random/new"))
		})
	}
}

func TestSimpleLoginLookupFailureIsClassifiedAndCreatesNothing(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.failNext("POST /api/v2/aliases", slCanned{status: 503, body: `{"error":"maintenance"}`})
	_, err := runCreateAlias(t, f.client(), activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
	requireSimpleLoginAppError(t, err, "SimpleLoginUnavailable", false, 0)
	assert.Equal(t, []string{"POST /api/v2/aliases"}, f.routes(), "no creation without knowing whether the alias exists")
}

func TestSimpleLoginCreateAliasRejectsInvalidInputWithoutCalling(t *testing.T) {
	cases := map[string]activities.CreateAliasInput{
		"no alias id":              {Mode: contract.AliasModeRandom},
		"alias id with space":      {AliasID: "a 1", Mode: contract.AliasModeRandom},
		"alias id with backslash":  {AliasID: `a\1`, Mode: contract.AliasModeRandom},
		"unknown mode":             {AliasID: "a1", Mode: "uuid"},
		"custom without prefix":    {AliasID: "a1", Mode: contract.AliasModeCustom, Prefix: " "},
		"random with a prefix":     {AliasID: "a1", Mode: contract.AliasModeRandom, Prefix: "news"},
		"random with mailbox ids":  {AliasID: "a1", Mode: contract.AliasModeRandom, MailboxIDs: []int64{1}},
		"empty mode":               {AliasID: "a1"},
		"custom with empty prefix": {AliasID: "a1", Mode: contract.AliasModeCustom},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeSimpleLogin(t)
			_, err := runCreateAlias(t, f.client(), in)
			requireSimpleLoginAppError(t, err, "SimpleLoginInvalidRequest", true, 0)
			assert.Empty(t, f.requests(), "an invalid input must not reach SimpleLogin")
		})
	}
}

func TestSimpleLoginSetAliasEnabled(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.add(42, "a@sl.test", true, "")

	out, err := runSetAliasEnabled(t, f.client(), activities.SetAliasEnabledInput{SimpleLoginID: 42, Enabled: true})
	require.NoError(t, err)
	assert.Equal(t, &activities.AliasOutput{SimpleLoginID: 42, Email: "a@sl.test", Enabled: true}, out)
	assert.Equal(t, 0, f.count("POST /api/aliases/{id}/toggle"), "already enabled: no toggle")

	for range 2 { // the second run is a retry: it must not flip the alias back
		out, err = runSetAliasEnabled(t, f.client(), activities.SetAliasEnabledInput{SimpleLoginID: 42, Enabled: false})
		require.NoError(t, err)
		assert.False(t, out.Enabled)
	}
	assert.Equal(t, 1, f.count("POST /api/aliases/{id}/toggle"))
	f.mu.Lock()
	assert.False(t, f.aliases[42].enabled)
	f.mu.Unlock()
}

func TestSimpleLoginSetAliasEnabledClassifiesErrors(t *testing.T) {
	cases := []struct {
		name         string
		canned       *slCanned
		wantType     string
		nonRetryable bool
		wantDelay    time.Duration
	}{
		// SimpleLogin's answer for an unknown id is 400 "Unknown error".
		{"unknown alias", nil, "SimpleLoginNotFound", true, 0},
		{"404 about the alias", &slCanned{404, nil, `{"error":"Alias not found"}`}, "SimpleLoginNotFound", true, 0},
		{"another account's alias", &slCanned{403, nil, `{"error":"Forbidden"}`}, "SimpleLoginAuthFailed", true, 0},
		{"401", &slCanned{401, nil, `{"error":"Wrong api key"}`}, "SimpleLoginAuthFailed", true, 0},
		{"429", &slCanned{429, nil, `{"error":"Rate limit exceeded"}`}, "SimpleLoginRateLimited", false, simplelogin.DefaultRateLimitBackoff},
		{"503", &slCanned{503, nil, `{"error":"down"}`}, "SimpleLoginUnavailable", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSimpleLogin(t)
			if tc.canned != nil {
				f.add(42, "a@sl.test", true, "")
				f.failNext("GET /api/aliases/{id}", *tc.canned)
			}
			_, err := runSetAliasEnabled(t, f.client(), activities.SetAliasEnabledInput{SimpleLoginID: 42, Enabled: false})
			requireSimpleLoginAppError(t, err, tc.wantType, tc.nonRetryable, tc.wantDelay)
			assert.Equal(t, 0, f.count("POST /api/aliases/{id}/toggle"))
		})
	}
}

func TestSimpleLoginDeleteAlias(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.add(42, "a@sl.test", true, "")
	require.NoError(t, runDeleteAlias(t, f.client(), activities.DeleteAliasInput{SimpleLoginID: 42}))
	// The retry after a lost answer: SimpleLogin says 403, the read says
	// unknown, and the alias counts as deleted.
	require.NoError(t, runDeleteAlias(t, f.client(), activities.DeleteAliasInput{SimpleLoginID: 42}))
	assert.Equal(t, []string{"DELETE /api/aliases/{id}", "DELETE /api/aliases/{id}", "GET /api/aliases/{id}"}, f.routes())
}

func TestSimpleLoginDeleteAliasClassifiesErrors(t *testing.T) {
	cases := []struct {
		name         string
		canned       []slCanned // for DELETE, then GET
		wantErr      bool
		wantType     string
		nonRetryable bool
	}{
		{"404 is already gone", []slCanned{{404, nil, `{"error":"Alias not found"}`}}, false, "", false},
		{"another account's alias", []slCanned{{403, nil, `{"error":"Forbidden"}`}, {403, nil, `{"error":"Forbidden"}`}}, true, "SimpleLoginAuthFailed", true},
		{"401", []slCanned{{401, nil, `{"error":"Wrong api key"}`}}, true, "SimpleLoginAuthFailed", true},
		{"500", []slCanned{{500, nil, `{"error":"boom"}`}}, true, "SimpleLoginUnavailable", false},
		{"403 then the check fails transiently", []slCanned{{403, nil, `{"error":"Forbidden"}`}, {503, nil, `{"error":"down"}`}}, true, "SimpleLoginUnavailable", false},
		{"router 404 is a wrong URL", []slCanned{{404, nil, `{"error":"No such endpoint"}`}}, true, "SimpleLoginNotFound", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSimpleLogin(t)
			f.add(42, "a@sl.test", true, "")
			f.failNext("DELETE /api/aliases/{id}", tc.canned[0])
			if len(tc.canned) > 1 {
				f.failNext("GET /api/aliases/{id}", tc.canned[1])
			}
			err := runDeleteAlias(t, f.client(), activities.DeleteAliasInput{SimpleLoginID: 42})
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			requireSimpleLoginAppError(t, err, tc.wantType, tc.nonRetryable, 0)
		})
	}
}

func TestSimpleLoginRejectsNonPositiveIDsWithoutCalling(t *testing.T) {
	f := newFakeSimpleLogin(t)
	_, err := runSetAliasEnabled(t, f.client(), activities.SetAliasEnabledInput{SimpleLoginID: 0, Enabled: true})
	requireSimpleLoginAppError(t, err, "SimpleLoginInvalidRequest", true, 0)
	err = runDeleteAlias(t, f.client(), activities.DeleteAliasInput{SimpleLoginID: -3})
	requireSimpleLoginAppError(t, err, "SimpleLoginInvalidRequest", true, 0)
	assert.Empty(t, f.requests())
}

func TestSimpleLoginNetworkFailureIsTransient(t *testing.T) {
	c := simplelogin.NewClient(simplelogin.WithAPIKey(slTestKey), simplelogin.WithBaseURL(refusingURL(t)))
	_, err := runCreateAlias(t, c, activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
	requireSimpleLoginAppError(t, err, "SimpleLoginUnavailable", false, 0)
}

func TestSimpleLoginWithoutAPIKeyIsAuthFailure(t *testing.T) {
	f := newFakeSimpleLogin(t)
	_, err := runCreateAlias(t, simplelogin.NewClient(simplelogin.WithBaseURL(f.srv.URL)), activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
	requireSimpleLoginAppError(t, err, "SimpleLoginAuthFailed", true, 0)
	assert.Empty(t, f.requests())
}

func TestSimpleLoginConsoleModeSendsNothing(t *testing.T) {
	rec := &providerhttptest.Recorder{}
	c := simplelogin.NewConsole(rec)
	// One client across runs, as the worker holds it: the console account
	// remembers what it created.
	out, err := runCreateAlias(t, c, activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
	require.NoError(t, err)
	// Console ids are unique across restarts, not 1, 2, ... (see
	// providerhttp.UniqueConsoleID): the address is made from the id.
	require.Positive(t, out.SimpleLoginID)
	assert.Equal(t, &activities.AliasOutput{SimpleLoginID: out.SimpleLoginID,
		Email: fmt.Sprintf("console-%d@simplelogin.invalid", out.SimpleLoginID), Enabled: true, Console: true}, out)

	again, err := runCreateAlias(t, c, activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
	require.NoError(t, err)
	assert.Equal(t, out, again, "look-before-create works in console mode too")

	custom, err := runCreateAlias(t, c, activities.CreateAliasInput{AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news"})
	require.NoError(t, err)
	assert.Greater(t, custom.SimpleLoginID, out.SimpleLoginID, "console ids increase")
	assert.Equal(t, fmt.Sprintf("news.console-%d@simplelogin.invalid", custom.SimpleLoginID), custom.Email)

	disabled, err := runSetAliasEnabled(t, c, activities.SetAliasEnabledInput{SimpleLoginID: out.SimpleLoginID, Enabled: false})
	require.NoError(t, err)
	assert.False(t, disabled.Enabled)
	assert.True(t, disabled.Console)
	require.NoError(t, runDeleteAlias(t, c, activities.DeleteAliasInput{SimpleLoginID: out.SimpleLoginID}))

	var creates []string
	for _, call := range rec.Calls() {
		if strings.HasSuffix(strings.SplitN(call.Path, "?", 2)[0], "/new") {
			creates = append(creates, fmt.Sprintf("%s %s %s", call.Method, call.Path, call.Body))
		}
	}
	assert.Equal(t, []string{
		`POST /api/alias/random/new {"note":"crmflow:alias/a1"}`,
		`POST /api/v3/alias/custom/new {"alias_prefix":"news","signed_suffix":".console@simplelogin.invalid.console-signature","mailbox_ids":[1],"note":"crmflow:alias/a2"}`,
	}, creates, "each alias is created once")
}

// TestSimpleLoginWithoutActiveKeyIsCredentialMissing: SimpleLogin's client
// as the worker builds it for a configured SimpleLogin whose key source
// holds no active key fails with a non-retryable
// SimpleLoginCredentialMissing and sends nothing, instead of creating a
// console alias nobody can receive mail at.
func TestSimpleLoginWithoutActiveKeyIsCredentialMissing(t *testing.T) {
	f := newFakeSimpleLogin(t)
	c := providers.NewSimpleLoginClient(providers.ClientOptions{BaseURL: f.srv.URL,
		Key:    func(context.Context) (string, error) { return "", nil },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	out, err := runCreateAlias(t, c, activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
	require.Error(t, err, "got %+v", out)
	requireSimpleLoginAppError(t, err, "SimpleLoginCredentialMissing", true, 0)
	assert.Empty(t, f.requests())
}
