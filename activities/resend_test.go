package activities_test

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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
)

// rsAdminToken is the full-access key the fake starts with, the one the
// credential store would hold as active before a rotation.
const (
	rsAdminToken = "re_admin_Tok3n_1"
	rsAdminID    = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"
)

// rsRequest is one request the fake Resend received.
type rsRequest struct {
	method string
	path   string
	query  url.Values
	auth   string
	body   map[string]any
	// idempotencyKey is the request's Idempotency-Key header.
	idempotencyKey string
}

// route is "METHOD /path".
func (r rsRequest) route() string { return r.method + " " + r.path }

// rsCanned is a canned answer that replaces one route's normal answer.
type rsCanned struct {
	status int
	header map[string]string
	body   string
}

// rsKey is an API key held by the fake.
type rsKey struct {
	id, name, token, permission string
}

// fakeResend is a small stateful Resend: it keeps API keys and answers list
// (with limit and after), create, delete and GET /domains in Resend's
// shapes. It authenticates like Resend: no key 401 missing_api_key, unknown
// key 403 invalid_api_key, a sending_access key 401 restricted_api_key on
// anything but sending. Canned answers in fail override a route ("POST
// /api-keys", "DELETE /api-keys/{id}", ...), once each, in order. When
// CRMFLOW_SPECS_DIR is set, every request and every 2xx answer is checked
// against Resend's OpenAPI spec.
type fakeResend struct {
	t    *testing.T
	srv  *httptest.Server
	spec *resendSpec

	mu     sync.Mutex
	reqs   []rsRequest
	keys   []*rsKey
	nextID int
	fail   map[string][]rsCanned
	// loseCreateAnswers makes that many creations create the key and then
	// hang up without answering, as a lost response looks to the client.
	loseCreateAnswers int
	// outbox holds the emails sent (email_test.go).
	outbox rsOutbox
}

func newFakeResend(t *testing.T) *fakeResend {
	t.Helper()
	f := &fakeResend{t: t, spec: loadResendSpec(t), fail: map[string][]rsCanned{}}
	f.keys = []*rsKey{{id: rsAdminID, name: "Onboarding", token: rsAdminToken, permission: activities.ResendFullAccess}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// addKey adds a key as if made earlier, in the dashboard or by an attempt.
func (f *fakeResend) addKey(name, permission string) *rsKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newKeyLocked(name, permission)
}

func (f *fakeResend) newKeyLocked(name, permission string) *rsKey {
	f.nextID++
	k := &rsKey{
		id:         fmt.Sprintf("b6d24b8e-af0b-4c3c-be0c-%012d", f.nextID),
		name:       name,
		token:      fmt.Sprintf("re_%d_S3cretT0ken", f.nextID),
		permission: permission,
	}
	f.keys = append(f.keys, k)
	return k
}

func (f *fakeResend) failNext(route string, c rsCanned) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[route] = append(f.fail[route], c)
}

func (f *fakeResend) requests() []rsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rsRequest(nil), f.reqs...)
}

func (f *fakeResend) routes() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.route())
	}
	return out
}

// keysNamed returns the fake's keys called name.
func (f *fakeResend) keysNamed(name string) []rsKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rsKey
	for _, k := range f.keys {
		if k.name == name {
			out = append(out, *k)
		}
	}
	return out
}

func (f *fakeResend) keyByID(id string) (rsKey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.id == id {
			return *k, true
		}
	}
	return rsKey{}, false
}

func (f *fakeResend) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := rsRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.Query(), auth: r.Header.Get("Authorization"),
		idempotencyKey: r.Header.Get("Idempotency-Key")}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &req.body); err != nil {
			f.t.Errorf("fake resend: %s %s: body is not a JSON object: %v", r.Method, r.URL, err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("fake resend: %s %s: Content-Type %q, want application/json", r.Method, r.URL, ct)
		}
	}
	if f.spec != nil {
		if err := f.spec.validateRequest(r, raw); err != nil {
			f.t.Errorf("fake resend: %s %s does not match Resend's OpenAPI spec: %v", r.Method, r.URL, err)
		}
	}

	route := r.Method + " " + r.URL.Path
	if strings.HasPrefix(r.URL.Path, "/api-keys/") {
		route = r.Method + " /api-keys/{id}"
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	canned, hasCanned := f.fail[route]
	if hasCanned && len(canned) > 0 {
		f.fail[route] = canned[1:]
	}
	f.mu.Unlock()
	if hasCanned && len(canned) > 0 {
		f.write(w, r, raw, canned[0].status, canned[0].header, canned[0].body)
		return
	}

	status, body := f.answer(w, r, route, req)
	if status == 0 {
		return // the connection was hijacked and closed
	}
	f.write(w, r, raw, status, nil, body)
}

// answer computes Resend's answer; status 0 means it hung up instead.
func (f *fakeResend) answer(w http.ResponseWriter, r *http.Request, route string, req rsRequest) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()

	token, ok := strings.CutPrefix(req.auth, "Bearer ")
	if !ok || token == "" {
		return 401, rsError(401, "missing_api_key", "Missing API key in the authorization header.")
	}
	var caller *rsKey
	for _, k := range f.keys {
		if k.token == token {
			caller = k
		}
	}
	if caller == nil {
		return 403, rsError(403, "invalid_api_key", "API key is invalid")
	}
	if caller.permission != activities.ResendFullAccess && route != "POST /emails" {
		return 401, rsError(401, "restricted_api_key", "This API key is restricted to only send emails")
	}

	switch route {
	case "GET /domains":
		return 200, `{"object":"list","has_more":false,"data":[{"id":"d91cd9bd-1176-453e-8fc1-35364d380206","name":"example.com","status":"verified","created_at":"2023-04-26 20:21:26.347412+00","region":"us-east-1"}]}`
	case "GET /api-keys":
		return 200, f.listLocked(req.query)
	case "POST /api-keys":
		name, _ := req.body["name"].(string)
		perm, _ := req.body["permission"].(string)
		if name == "" {
			return 422, rsError(422, "validation_error", "Missing `name` field.")
		}
		if perm == "" {
			perm = activities.ResendFullAccess
		}
		k := f.newKeyLocked(name, perm)
		if f.loseCreateAnswers > 0 {
			f.loseCreateAnswers--
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				f.t.Errorf("fake resend: hijack: %v", err)
				return 500, rsError(500, "internal_server_error", "hijack")
			}
			_ = conn.Close()
			return 0, ""
		}
		return 201, fmt.Sprintf(`{"id":%q,"token":%q}`, k.id, k.token)
	case "POST /emails":
		return f.outbox.send(req)
	case "DELETE /api-keys/{id}":
		id := strings.TrimPrefix(r.URL.Path, "/api-keys/")
		for i, k := range f.keys {
			if k.id == id {
				f.keys = append(f.keys[:i], f.keys[i+1:]...)
				return 200, fmt.Sprintf(`{"object":"api_key","id":%q,"deleted":true}`, id)
			}
		}
		return 404, rsError(404, "not_found", "API key not found")
	default:
		return 405, rsError(405, "method_not_allowed", "Method not allowed")
	}
}

// listLocked serves GET /api-keys: newest first like Resend, limit 1..100
// (default 20), after=<id> for the next page.
func (f *fakeResend) listLocked(q url.Values) string {
	limit := 20
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	ordered := make([]*rsKey, 0, len(f.keys))
	for i := len(f.keys) - 1; i >= 0; i-- {
		ordered = append(ordered, f.keys[i])
	}
	start := 0
	if after := q.Get("after"); after != "" {
		for i, k := range ordered {
			if k.id == after {
				start = i + 1
			}
		}
	}
	end := min(start+limit, len(ordered))
	data := []map[string]any{}
	for _, k := range ordered[start:end] {
		data = append(data, map[string]any{"id": k.id, "name": k.name, "created_at": "2026-08-01 10:00:00.000+00", "last_used_at": nil})
	}
	out, _ := json.Marshal(map[string]any{"object": "list", "has_more": end < len(ordered), "data": data})
	return string(out)
}

func (f *fakeResend) write(w http.ResponseWriter, r *http.Request, reqBody []byte, status int, header map[string]string, body string) {
	if f.spec != nil && status >= 200 && status < 300 {
		h := http.Header{"Content-Type": {"application/json"}}
		if err := f.spec.validateResponse(r, reqBody, status, h, []byte(body)); err != nil {
			f.t.Errorf("fake resend: answer to %s %s does not match Resend's OpenAPI spec: %v", r.Method, r.URL, err)
		}
	}
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// rsError is Resend's error body.
func rsError(status int, name, message string) string {
	return fmt.Sprintf(`{"statusCode":%d,"name":%q,"message":%q}`, status, name, message)
}

// rsKeys is a KeySource holding one key, which a test can swap to activate
// a new key.
type rsKeys struct {
	t   *testing.T
	mu  sync.Mutex
	key string
	err error
}

func (k *rsKeys) ActiveKey(_ context.Context, provider, name string) (string, error) {
	assert.Equal(k.t, activities.ResendCredentialProvider, provider)
	assert.Equal(k.t, activities.ResendCredentialName, name)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.key, k.err
}

func (k *rsKeys) set(key string) {
	k.mu.Lock()
	k.key = key
	k.mu.Unlock()
}

// rsLogs is a Temporal logger that keeps every line, so tests can look for
// a leaked token in what the activities logged.
type rsLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *rsLogs) line(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s %s %v\n", level, msg, kv)
}

func (l *rsLogs) Debug(msg string, kv ...any) { l.line("DEBUG", msg, kv) }
func (l *rsLogs) Info(msg string, kv ...any)  { l.line("INFO", msg, kv) }
func (l *rsLogs) Warn(msg string, kv ...any)  { l.line("WARN", msg, kv) }
func (l *rsLogs) Error(msg string, kv ...any) { l.line("ERROR", msg, kv) }

func (l *rsLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var _ log.Logger = (*rsLogs)(nil)

// rsRun executes one Resend activity in Temporal's test activity environment
// and decodes its result into out (nil for none).
func rsRun(t *testing.T, a *activities.ResendActivities, logs *rsLogs, fn, in, out any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	if logs != nil {
		s.SetLogger(logs)
	}
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return err
	}
	if out != nil {
		require.NoError(t, val.Get(out))
	}
	return nil
}

func (f *fakeResend) activities(keys activities.KeySource) *activities.ResendActivities {
	return &activities.ResendActivities{Keys: keys, BaseURL: f.srv.URL, HTTPClient: &http.Client{Timeout: 5 * time.Second}}
}

func rsCreate(t *testing.T, a *activities.ResendActivities, logs *rsLogs, in activities.CreateAPIKeyInput) (*activities.CreateAPIKeyOutput, error) {
	t.Helper()
	var out activities.CreateAPIKeyOutput
	if err := rsRun(t, a, logs, a.CreateAPIKey, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func rsVerify(t *testing.T, a *activities.ResendActivities, logs *rsLogs, token string) (*activities.VerifyAPIKeyOutput, error) {
	t.Helper()
	var out activities.VerifyAPIKeyOutput
	if err := rsRun(t, a, logs, a.VerifyAPIKey, activities.VerifyAPIKeyInput{Token: activities.ResendToken(token)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func rsDelete(t *testing.T, a *activities.ResendActivities, logs *rsLogs, id string) error {
	t.Helper()
	return rsRun(t, a, logs, a.DeleteAPIKey, activities.DeleteAPIKeyInput{KeyID: id}, nil)
}

// TestResendRotationFlow is the Resend part of a rotation: create a key with
// the active one, verify the new key, activate it, delete the old key with
// the new one, and see the old key refused afterwards.
func TestResendRotationFlow(t *testing.T) {
	f := newFakeResend(t)
	keys := &rsKeys{t: t, key: rsAdminToken}
	a := f.activities(keys)
	logs := &rsLogs{}
	name := activities.ResendKeyName("rot-2026-08-21")
	assert.Equal(t, "crmflow-rot-2026-08-21", name)

	created, err := rsCreate(t, a, logs, activities.CreateAPIKeyInput{Name: name, Permission: activities.ResendFullAccess})
	require.NoError(t, err)
	stored, ok := f.keyByID(created.KeyID)
	require.True(t, ok, "the key id returned must be the key Resend created")
	assert.Equal(t, rsKey{id: created.KeyID, name: name, token: stored.token, permission: activities.ResendFullAccess}, stored)
	assert.Equal(t, stored.token, created.Token.Reveal(), "the token returned must be the created key's")
	assert.False(t, created.Console)

	reqs := f.requests()
	require.Equal(t, []string{"GET /api-keys", "POST /api-keys"}, f.routes())
	assert.Equal(t, url.Values{"limit": {"100"}}, reqs[0].query, "one page of the largest size")
	assert.Equal(t, "Bearer "+rsAdminToken, reqs[1].auth)
	assert.Equal(t, map[string]any{"name": name, "permission": "full_access"}, reqs[1].body)

	v, err := rsVerify(t, a, logs, created.Token.Reveal())
	require.NoError(t, err)
	assert.Equal(t, &activities.VerifyAPIKeyOutput{Valid: true}, v)
	last := f.requests()[2]
	assert.Equal(t, "GET /domains", last.route())
	assert.Equal(t, url.Values{"limit": {"1"}}, last.query)
	assert.Equal(t, "Bearer "+created.Token.Reveal(), last.auth, "verification authenticates with the new key")

	keys.set(created.Token.Reveal()) // the store activates the new key
	require.NoError(t, rsDelete(t, a, logs, rsAdminID))
	last = f.requests()[3]
	assert.Equal(t, "DELETE /api-keys/"+rsAdminID, last.route())
	assert.Equal(t, "Bearer "+created.Token.Reveal(), last.auth, "the old key is deleted with the new one")
	_, stillThere := f.keyByID(rsAdminID)
	assert.False(t, stillThere)

	v, err = rsVerify(t, a, logs, rsAdminToken)
	require.NoError(t, err)
	assert.Equal(t, &activities.VerifyAPIKeyOutput{Valid: false, Reason: "invalid_api_key"}, v)

	out := logs.String()
	assert.Contains(t, out, "API key created", "the logger must capture the activities' lines for the check below to mean anything")
	assert.NotContains(t, out, rsAdminToken)
	assert.NotContains(t, out, created.Token.Reveal())
}

func TestResendVerifySemantics(t *testing.T) {
	f := newFakeResend(t)
	a := f.activities(&rsKeys{t: t, key: rsAdminToken})
	sending := f.addKey("crmflow-sending", activities.ResendSendingAccess)

	cases := []struct {
		name   string
		token  string
		canned *rsCanned
		want   activities.VerifyAPIKeyOutput
	}{
		{"200 full access", rsAdminToken, nil, activities.VerifyAPIKeyOutput{Valid: true}},
		{"401 restricted_api_key", sending.token, nil, activities.VerifyAPIKeyOutput{Valid: true, Restricted: true}},
		{"403 invalid_api_key", "re_unknown_key", nil, activities.VerifyAPIKeyOutput{Reason: "invalid_api_key"}},
		{"401 missing_api_key", "re_whatever", &rsCanned{status: 401, body: rsError(401, "missing_api_key", "Missing API key")},
			activities.VerifyAPIKeyOutput{Reason: "missing_api_key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.requests())
			if tc.canned != nil {
				f.failNext("GET /domains", *tc.canned)
			}
			got, err := rsVerify(t, a, nil, tc.token)
			require.NoError(t, err)
			assert.Equal(t, tc.want, *got)
			reqs := f.requests()
			require.Len(t, reqs, before+1)
			assert.Equal(t, "Bearer "+tc.token, reqs[before].auth)
		})
	}

	t.Run("malformed token is invalid without a request", func(t *testing.T) {
		before := len(f.requests())
		got, err := rsVerify(t, a, nil, "re_with space")
		require.NoError(t, err)
		assert.False(t, got.Valid)
		assert.Len(t, f.requests(), before)
	})
}

func TestResendVerifyErrorsStayErrors(t *testing.T) {
	cases := []struct {
		name         string
		canned       rsCanned
		wantType     string
		nonRetryable bool
		wantDelay    time.Duration
	}{
		{"429 retry-after", rsCanned{429, map[string]string{"retry-after": "3", "ratelimit-remaining": "0"}, rsError(429, "rate_limit_exceeded", "Too many requests")},
			"ResendRateLimited", false, 3 * time.Second},
		{"500", rsCanned{500, nil, rsError(500, "internal_server_error", "boom")}, "ResendUnavailable", false, 0},
		{"401 other name", rsCanned{401, nil, rsError(401, "unauthorized", "nope")}, "ResendAuthFailed", true, 0},
		{"403 validation_error", rsCanned{403, nil, rsError(403, "validation_error", "testing address only")}, "ResendAuthFailed", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeResend(t)
			f.failNext("GET /domains", tc.canned)
			_, err := rsVerify(t, f.activities(&rsKeys{t: t, key: rsAdminToken}), nil, rsAdminToken)
			appErr := requireAppError(t, err)
			assert.Equal(t, tc.wantType, appErr.Type())
			assert.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			assert.Equal(t, tc.wantDelay, appErr.NextRetryDelay())
		})
	}
}

func TestResendCreateClassifiesErrors(t *testing.T) {
	cases := []struct {
		name         string
		route        string
		canned       rsCanned
		wantType     string
		nonRetryable bool
		wantDelay    time.Duration
	}{
		{"429 retry-after", "POST /api-keys", rsCanned{429, map[string]string{"retry-after": "7"}, rsError(429, "rate_limit_exceeded", "Too many requests")},
			"ResendRateLimited", false, 7 * time.Second},
		{"429 ratelimit-reset only", "GET /api-keys", rsCanned{429, map[string]string{"ratelimit-reset": "2"}, rsError(429, "rate_limit_exceeded", "Too many requests")},
			"ResendRateLimited", false, 2 * time.Second},
		{"429 daily quota", "POST /api-keys", rsCanned{429, map[string]string{"retry-after": "7"}, rsError(429, "daily_quota_exceeded", "quota")},
			"ResendQuotaExceeded", true, 0},
		{"500", "POST /api-keys", rsCanned{500, nil, rsError(500, "internal_server_error", "boom")}, "ResendUnavailable", false, 0},
		{"502 not JSON", "GET /api-keys", rsCanned{502, nil, "bad gateway"}, "ResendUnavailable", false, 0},
		{"409 concurrent_idempotent_requests", "POST /api-keys", rsCanned{409, nil, rsError(409, "concurrent_idempotent_requests", "in progress")},
			"ResendUnavailable", false, 0},
		{"409 invalid_idempotent_request", "POST /api-keys", rsCanned{409, nil, rsError(409, "invalid_idempotent_request", "different payload")},
			"ResendConflict", true, 0},
		{"401 missing_api_key", "GET /api-keys", rsCanned{401, nil, rsError(401, "missing_api_key", "Missing API key")}, "ResendAuthFailed", true, 0},
		{"403 invalid_api_key", "POST /api-keys", rsCanned{403, nil, rsError(403, "invalid_api_key", "API key is invalid")}, "ResendAuthFailed", true, 0},
		{"404", "POST /api-keys", rsCanned{404, nil, rsError(404, "not_found", "nope")}, "ResendNotFound", true, 0},
		{"422", "POST /api-keys", rsCanned{422, nil, rsError(422, "validation_error", "name too long")}, "ResendInvalidRequest", true, 0},
		{"400", "POST /api-keys", rsCanned{400, nil, rsError(400, "validation_error", "bad")}, "ResendInvalidRequest", true, 0},
		{"201 without token", "POST /api-keys", rsCanned{201, nil, `{"id":"b6d24b8e-af0b-4c3c-be0c-000000000999"}`}, "ResendUnavailable", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeResend(t)
			f.failNext(tc.route, tc.canned)
			_, err := rsCreate(t, f.activities(&rsKeys{t: t, key: rsAdminToken}), nil,
				activities.CreateAPIKeyInput{Name: "crmflow-rot-e", Permission: activities.ResendFullAccess})
			appErr := requireAppError(t, err)
			assert.Equal(t, tc.wantType, appErr.Type())
			assert.Equal(t, tc.nonRetryable, appErr.NonRetryable(), "NonRetryable()")
			assert.Equal(t, tc.wantDelay, appErr.NextRetryDelay(), "NextRetryDelay()")
			assert.NotContains(t, err.Error(), rsAdminToken)
			assert.Equal(t, tc.route, f.routes()[len(f.requests())-1], "the failing call is the last one made")
		})
	}
}

func TestResendCreateWithRestrictedActiveKeyFailsAuth(t *testing.T) {
	f := newFakeResend(t)
	sending := f.addKey("crmflow-old", activities.ResendSendingAccess)
	_, err := rsCreate(t, f.activities(&rsKeys{t: t, key: sending.token}), nil,
		activities.CreateAPIKeyInput{Name: "crmflow-rot-r", Permission: activities.ResendFullAccess})
	appErr := requireAppError(t, err)
	assert.Equal(t, "ResendAuthFailed", appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, err.Error(), "restricted_api_key", "the error names Resend's reason")
	assert.Empty(t, f.keysNamed("crmflow-rot-r"))
}

func TestResendNetworkErrorsAreTransient(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		a := &activities.ResendActivities{Keys: &rsKeys{t: t, key: rsAdminToken}, BaseURL: base}
		err := rsDelete(t, a, nil, rsAdminID)
		appErr := requireAppError(t, err)
		assert.Equal(t, "ResendUnavailable", appErr.Type())
		assert.False(t, appErr.NonRetryable())
	})
	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		t.Cleanup(srv.Close)
		a := &activities.ResendActivities{Keys: &rsKeys{t: t, key: rsAdminToken}, BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}}
		_, err := rsVerify(t, a, nil, rsAdminToken)
		appErr := requireAppError(t, err)
		assert.Equal(t, "ResendUnavailable", appErr.Type())
		assert.False(t, appErr.NonRetryable())
	})
}

func TestResendDeleteMissingKeyIsSuccess(t *testing.T) {
	f := newFakeResend(t)
	a := f.activities(&rsKeys{t: t, key: rsAdminToken})
	const gone = "0c9b2a7e-5d1f-4c8e-9a3b-000000000404"
	require.NoError(t, rsDelete(t, a, nil, gone))
	reqs := f.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "DELETE /api-keys/"+gone, reqs[0].route())
	assert.Equal(t, "Bearer "+rsAdminToken, reqs[0].auth)

	// Only 404 is success: another error still fails the delete.
	f.failNext("DELETE /api-keys/{id}", rsCanned{403, nil, rsError(403, "invalid_api_key", "API key is invalid")})
	appErr := requireAppError(t, rsDelete(t, a, nil, gone))
	assert.Equal(t, "ResendAuthFailed", appErr.Type())
}

// TestResendCreateRetryReplacesLostKey is a retry after a lost answer: the
// first attempt created the key but never saw its token. The retry finds the
// key by name (on the second page of the list), deletes it, and creates a
// new one, so exactly one key of that name exists and its token is known.
func TestResendCreateRetryReplacesLostKey(t *testing.T) {
	f := newFakeResend(t)
	a := f.activities(&rsKeys{t: t, key: rsAdminToken})
	name := activities.ResendKeyName("rot-lost")
	dashboard := f.addKey("crmflow-rot-lost-not-this-one", activities.ResendFullAccess)
	for i := range 120 { // pushes the leftover past the first page of 100
		f.addKey(fmt.Sprintf("dashboard-%d", i), activities.ResendSendingAccess)
	}
	f.loseCreateAnswers = 1

	_, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: name, Permission: activities.ResendSendingAccess})
	appErr := requireAppError(t, err)
	assert.Equal(t, "ResendUnavailable", appErr.Type(), "a lost answer is retried")
	assert.False(t, appErr.NonRetryable())
	leftover := f.keysNamed(name)
	require.Len(t, leftover, 1, "the lost attempt did create a key")

	// Move the leftover behind 120 newer keys, as later dashboard activity
	// would, so the retry must page to find it.
	for i := range 120 {
		f.addKey(fmt.Sprintf("later-%d", i), activities.ResendSendingAccess)
	}
	before := len(f.requests())
	out, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: name, Permission: activities.ResendSendingAccess})
	require.NoError(t, err)

	assert.Equal(t, []string{"GET /api-keys", "GET /api-keys", "GET /api-keys", "DELETE /api-keys/{id}", "POST /api-keys"},
		routePatterns(f.requests()[before:]))
	retry := f.requests()[before:]
	assert.Empty(t, retry[0].query.Get("after"))
	assert.NotEmpty(t, retry[1].query.Get("after"), "the second page continues after the first")
	assert.Equal(t, "/api-keys/"+leftover[0].id, retry[3].path, "the leftover is deleted")

	now := f.keysNamed(name)
	require.Len(t, now, 1, "exactly one key of the rotation's name")
	assert.Equal(t, out.KeyID, now[0].id)
	assert.Equal(t, now[0].token, out.Token.Reveal())
	assert.NotEqual(t, leftover[0].id, out.KeyID)
	_, kept := f.keyByID(dashboard.id)
	assert.True(t, kept, "a key whose name merely starts the same is not touched")
	_, kept = f.keyByID(rsAdminID)
	assert.True(t, kept)
}

// routePatterns names requests by route with key ids replaced by {id}.
func routePatterns(reqs []rsRequest) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		if strings.HasPrefix(r.path, "/api-keys/") {
			out = append(out, r.method+" /api-keys/{id}")
			continue
		}
		out = append(out, r.route())
	}
	return out
}

// rsCalls is a ResendRecorder that keeps console mode's calls.
type rsCalls struct {
	mu    sync.Mutex
	calls []activities.ResendCall
}

func (c *rsCalls) Record(_ context.Context, call activities.ResendCall) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
	return nil
}

// TestResendConsoleModeSendsNothing: console mode is decided at start
// (Console), so it records whether or not a key source is given and
// whatever key it holds; a key source holding no key outside console mode
// is ResendCredentialMissing (TestResendWithoutActiveKeyIsCredentialMissing).
func TestResendConsoleModeSendsNothing(t *testing.T) {
	sources := map[string]activities.KeySource{
		"no key source":            nil,
		"key source holding a key": &rsKeys{t: t, key: rsAdminToken},
	}
	for name, keys := range sources {
		t.Run(name, func(t *testing.T) {
			var hits int
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				w.WriteHeader(500)
			}))
			t.Cleanup(srv.Close)
			rec := &rsCalls{}
			a := &activities.ResendActivities{Console: true, Keys: keys, BaseURL: srv.URL, Recorder: rec}

			created, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: "crmflow-rot-c", Permission: activities.ResendFullAccess})
			require.NoError(t, err)
			assert.Equal(t, &activities.CreateAPIKeyOutput{KeyID: "console:crmflow-rot-c", Token: "console:crmflow-rot-c:token", Console: true}, created)
			v, err := rsVerify(t, a, nil, created.Token.Reveal())
			require.NoError(t, err)
			assert.Equal(t, &activities.VerifyAPIKeyOutput{Valid: true, Console: true}, v)
			require.NoError(t, rsDelete(t, a, nil, created.KeyID))

			mu.Lock()
			assert.Zero(t, hits, "console mode must not call Resend")
			mu.Unlock()
			require.Len(t, rec.calls, 3)
			assert.Equal(t, activities.ResendCall{Method: "POST", Path: "/api-keys", Body: json.RawMessage(`{"name":"crmflow-rot-c","permission":"full_access"}`)}, rec.calls[0])
			assert.Equal(t, activities.ResendCall{Method: "GET", Path: "/domains?limit=1"}, rec.calls[1])
			assert.Equal(t, activities.ResendCall{Method: "DELETE", Path: "/api-keys/console:crmflow-rot-c"}, rec.calls[2])
		})
	}
}

func TestResendRejectsInvalidInputWithoutCalling(t *testing.T) {
	f := newFakeResend(t)
	a := f.activities(&rsKeys{t: t, key: rsAdminToken})
	creates := map[string]activities.CreateAPIKeyInput{
		"dashboard key name":  {Name: "Production", Permission: activities.ResendFullAccess},
		"prefix only":         {Name: "crmflow- ", Permission: activities.ResendFullAccess},
		"no permission":       {Name: "crmflow-rot-1"},
		"unknown permission":  {Name: "crmflow-rot-1", Permission: "admin"},
		"prefix not at start": {Name: "x-crmflow-rot-1", Permission: activities.ResendFullAccess},
	}
	for name, in := range creates {
		t.Run(name, func(t *testing.T) {
			_, err := rsCreate(t, a, nil, in)
			appErr := requireAppError(t, err)
			assert.Equal(t, "ResendInvalidRequest", appErr.Type())
			assert.True(t, appErr.NonRetryable())
		})
	}
	t.Run("empty key id", func(t *testing.T) {
		appErr := requireAppError(t, rsDelete(t, a, nil, " "))
		assert.Equal(t, "ResendInvalidRequest", appErr.Type())
	})
	assert.Empty(t, f.requests())
}

func TestResendKeySourceErrors(t *testing.T) {
	f := newFakeResend(t)

	a := f.activities(&rsKeys{t: t, err: errors.New("connection refused")})
	appErr := requireAppError(t, rsDelete(t, a, nil, rsAdminID))
	assert.Equal(t, "StoreUnavailable", appErr.Type(), "a store outage is not Resend's fault")
	assert.False(t, appErr.NonRetryable())

	classified := temporal.NewNonRetryableApplicationError("tampered", "StoreTampered", nil)
	a = f.activities(&rsKeys{t: t, err: classified})
	_, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: "crmflow-rot-k", Permission: activities.ResendFullAccess})
	appErr = requireAppError(t, err)
	assert.Equal(t, "StoreTampered", appErr.Type(), "an error the store classified passes through")
	assert.True(t, appErr.NonRetryable())

	a = f.activities(&rsKeys{t: t, key: "re_bad\nkey"})
	appErr = requireAppError(t, rsDelete(t, a, nil, rsAdminID))
	assert.Equal(t, "ResendAuthFailed", appErr.Type())
	assert.NotContains(t, appErr.Error(), "re_bad")

	assert.Empty(t, f.requests())
}

func TestResendTokenNeverPrints(t *testing.T) {
	const secret = "re_S3cret_value"
	tok := activities.ResendToken(secret)
	out := activities.CreateAPIKeyOutput{KeyID: "k1", Token: tok}
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%s %v %q %x %X %d %+v %#v", tok, tok, tok, tok, tok, tok, tok, tok),
		fmt.Sprintf("%v %+v %#v", out, out, &out),
	} {
		assert.NotContains(t, s, secret)
		assert.NotContains(t, s, fmt.Sprintf("%x", secret))
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("created", "token", tok, "out", out)
	assert.NotContains(t, buf.String(), secret)
	assert.Contains(t, buf.String(), "[redacted]")

	// The payload converter must carry the value to the store activity.
	raw, err := json.Marshal(out)
	require.NoError(t, err)
	assert.Contains(t, string(raw), secret)
	var back activities.CreateAPIKeyOutput
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, secret, back.Token.Reveal())
	assert.Equal(t, "", activities.ResendToken("").String())
}

// TestResendWithoutActiveKeyIsCredentialMissing: Resend configured (a key
// source, not console mode) with no active key fails the calls that
// authenticate with it with a non-retryable ResendCredentialMissing before
// anything is sent, instead of recording them and handing back a made-up
// key. (VerifyAPIKey authenticates with the candidate key, not the active
// one, so a rotation can still replace a revoked key.)
func TestResendWithoutActiveKeyIsCredentialMissing(t *testing.T) {
	f := newFakeResend(t)
	a := f.activities(&rsKeys{t: t})
	_, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: "crmflow-rot-m", Permission: activities.ResendFullAccess})
	appErr := requireAppError(t, err)
	assert.Equal(t, "ResendCredentialMissing", appErr.Type())
	assert.True(t, appErr.NonRetryable())
	appErr = requireAppError(t, rsDelete(t, a, nil, rsAdminID))
	assert.Equal(t, "ResendCredentialMissing", appErr.Type())
	assert.Empty(t, f.requests(), "nothing is sent without a key")
}
