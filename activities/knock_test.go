package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

const knockTestKey = "sk_test_x"

// knockRequest is one request the fake Knock received.
type knockRequest struct {
	path           string
	idempotencyKey string
	body           map[string]any
}

// fakeKnockAPI answers every request with one canned response and counts
// what it received.
type fakeKnockAPI struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []knockRequest
}

func newFakeKnockAPI(t *testing.T, status int, header map[string]string, body string) *fakeKnockAPI {
	t.Helper()
	f := &fakeKnockAPI{}
	f.srv = httptest.NewServer(openapicheck.Load(t, openapicheck.Knock).Middleware(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var decoded map[string]any
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Errorf("fake knock: body is not a JSON object: %v", err)
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, knockRequest{path: r.URL.EscapedPath(), idempotencyKey: r.Header.Get("Idempotency-Key"), body: decoded})
		f.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKnockAPI) requests() []knockRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]knockRequest(nil), f.reqs...)
}

func (f *fakeKnockAPI) client(opts ...knock.ClientOption) *knock.Client {
	return knock.NewClient(append([]knock.ClientOption{knock.WithAPIKey(knockTestKey), knock.WithBaseURL(f.srv.URL)}, opts...)...)
}

// runNotify executes Notify once in Temporal's test activity environment.
func runNotify(t *testing.T, client *knock.Client, in activities.NotifyInput) (*activities.NotifyOutput, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &activities.KnockActivities{Knock: client}
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.Notify, in)
	if err != nil {
		return nil, err
	}
	var out activities.NotifyOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

func validNotify() activities.NotifyInput {
	return activities.NotifyInput{
		Workflow:       "order-confirmation",
		Recipients:     []string{"cus_1"},
		ActorID:        "staff_1",
		Data:           map[string]any{"order_id": "o1", "amount_cents": 4200},
		IdempotencyKey: "order-confirmation/o1/notify-confirmation",
	}
}

// requireAppError unwraps the classified error, wherever the test
// environment put it in the chain.
func requireAppError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want a *temporal.ApplicationError, got %T: %v", err, err)
	return appErr
}

func TestNotifyTriggersOnceWithIdempotencyKey(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}`)
	out, err := runNotify(t, f.client(), validNotify())
	require.NoError(t, err)
	assert.Equal(t, &activities.NotifyOutput{WorkflowRunID: "0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}, out)

	reqs := f.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/v1/workflows/order-confirmation/trigger", reqs[0].path)
	assert.Equal(t, "order-confirmation/o1/notify-confirmation", reqs[0].idempotencyKey)
	assert.Equal(t, map[string]any{
		"recipients": []any{"cus_1"},
		"actor":      "staff_1",
		"data":       map[string]any{"order_id": "o1", "amount_cents": float64(4200)},
	}, reqs[0].body)
}

func TestNotifyClassifiesKnockErrors(t *testing.T) {
	cases := []struct {
		name         string
		status       int
		header       map[string]string
		body         string
		wantType     string
		nonRetryable bool
		wantDelay    time.Duration
	}{
		{"429 with Retry-After", 429, map[string]string{"Retry-After": "7"}, `{"code":"rate_limit_exceeded","message":"slow down","status":429}`,
			"KnockRateLimited", false, 7 * time.Second},
		{"429 without Retry-After leaves the delay to the policy", 429, nil, `{"code":"rate_limit_exceeded","message":"slow down","status":429}`,
			"KnockRateLimited", false, 0},
		{"500", 500, nil, `{"code":"internal_error","message":"boom","status":500}`, "KnockUnavailable", false, 0},
		{"503 non-JSON", 503, nil, `upstream connect error`, "KnockUnavailable", false, 0},
		{"408", 408, nil, ``, "KnockUnavailable", false, 0},
		{"401", 401, nil, `{"code":"api_key_missing","message":"missing key","status":401,"type":"authentication_error"}`, "KnockAuthFailed", true, 0},
		{"403", 403, nil, `{"code":"authentication_required","message":"no","status":403}`, "KnockAuthFailed", true, 0},
		{"404 router shape", 404, nil, `{"errors":{"detail":"404 Not Found"}}`, "KnockNotFound", true, 0},
		{"422", 422, nil, `{"code":"invalid_params","message":"bad","status":422,"type":"invalid_request_error"}`, "KnockInvalidRequest", true, 0},
		{"400", 400, nil, `{"code":"workflow_inactive","message":"inactive","status":400}`, "KnockInvalidRequest", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKnockAPI(t, tc.status, tc.header, tc.body)
			_, err := runNotify(t, f.client(), validNotify())
			appErr := requireAppError(t, err)
			assert.Equal(t, tc.wantType, appErr.Type())
			assert.Equal(t, tc.nonRetryable, appErr.NonRetryable(), "NonRetryable()")
			assert.Equal(t, tc.wantDelay, appErr.NextRetryDelay(), "NextRetryDelay()")
			assert.NotContains(t, err.Error(), knockTestKey)
			assert.Len(t, f.requests(), 1)
		})
	}
}

func TestNotifyTimeoutIsTransient(t *testing.T) {
	f := &fakeKnockAPI{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(f.srv.Close)
	_, err := runNotify(t, f.client(knock.WithTimeout(100*time.Millisecond)), validNotify())
	appErr := requireAppError(t, err)
	assert.Equal(t, "KnockUnavailable", appErr.Type())
	assert.False(t, appErr.NonRetryable())
}

func TestNotifyConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, err := runNotify(t, knock.NewClient(knock.WithAPIKey(knockTestKey), knock.WithBaseURL(url)), validNotify())
	appErr := requireAppError(t, err)
	assert.Equal(t, "KnockUnavailable", appErr.Type())
	assert.False(t, appErr.NonRetryable())
}

func TestNotifyRejectsInvalidInputWithoutCallingKnock(t *testing.T) {
	cases := map[string]func(*activities.NotifyInput){
		"no workflow key":            func(in *activities.NotifyInput) { in.Workflow = " " },
		"no recipients":              func(in *activities.NotifyInput) { in.Recipients = nil },
		"empty recipient":            func(in *activities.NotifyInput) { in.Recipients = []string{"cus_1", ""} },
		"no idempotency key":         func(in *activities.NotifyInput) { in.IdempotencyKey = "" },
		"idempotency key too long":   func(in *activities.NotifyInput) { in.IdempotencyKey = strings.Repeat("k", 256) },
		"newline in idempotency key": func(in *activities.NotifyInput) { in.IdempotencyKey = "a\nb" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"r"}`)
			in := validNotify()
			mutate(&in)
			_, err := runNotify(t, f.client(), in)
			appErr := requireAppError(t, err)
			assert.Equal(t, "KnockInvalidRequest", appErr.Type())
			assert.True(t, appErr.NonRetryable())
			assert.Empty(t, f.requests(), "an invalid input must not reach Knock")
		})
	}
}

func TestNotifyWithoutAPIKeyIsAuthFailure(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"r"}`)
	_, err := runNotify(t, knock.NewClient(knock.WithBaseURL(f.srv.URL)), validNotify())
	appErr := requireAppError(t, err)
	assert.Equal(t, "KnockAuthFailed", appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Empty(t, f.requests())
}

type callsRecorder struct {
	mu    sync.Mutex
	calls []knock.Call
}

func (r *callsRecorder) Record(_ context.Context, c knock.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	return nil
}

func TestNotifyInConsoleModeSendsNothing(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"r"}`)
	rec := &callsRecorder{}
	out, err := runNotify(t, f.client(knock.WithConsole(rec)), validNotify())
	require.NoError(t, err)
	assert.Equal(t, &activities.NotifyOutput{WorkflowRunID: "console-1", Console: true}, out)
	assert.Empty(t, f.requests())
	require.Len(t, rec.calls, 1)
	assert.Equal(t, "order-confirmation/o1/notify-confirmation", rec.calls[0].IdempotencyKey)
}

// TestNotifyReportsWhatThisCallDid: a client that reads its key per call and
// records when there is none says, per call, whether it sent or recorded.
func TestNotifyReportsWhatThisCallDid(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}`)
	key := knockTestKey
	c := knock.NewClient(knock.WithBaseURL(f.srv.URL),
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { return key, nil }),
		knock.WithConsole(knock.LogRecorder{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	out, err := runNotify(t, c, validNotify())
	require.NoError(t, err)
	assert.False(t, out.Console, "sent to Knock")
	assert.Len(t, f.requests(), 1)

	key = ""
	out, err = runNotify(t, c, validNotify())
	require.NoError(t, err)
	assert.True(t, out.Console, "recorded without a key")
	assert.Len(t, f.requests(), 1, "nothing more reached Knock")
}
