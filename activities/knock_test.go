package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

const knockTestKey = "sk_test_x"

// fakeKnockAPI stands in for Knock, checking every request against Knock's
// OpenAPI spec and recording it.
type fakeKnockAPI = providerhttptest.Fake[*knock.Client]

// newFakeKnockAPI answers every request with one canned response.
func newFakeKnockAPI(t *testing.T, status int, header map[string]string, body string) *fakeKnockAPI {
	t.Helper()
	return providerhttptest.NewFake(t, knock.NewClient, knockTestKey,
		openapicheck.Load(t, openapicheck.Knock).Middleware(t, false, providerhttptest.Answer(status, header, body)))
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
	out, err := runNotify(t, f.Client(), validNotify())
	require.NoError(t, err)
	assert.Equal(t, &activities.NotifyOutput{WorkflowRunID: "0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}, out)

	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/v1/workflows/order-confirmation/trigger", reqs[0].Path)
	assert.Equal(t, "order-confirmation/o1/notify-confirmation", reqs[0].Header.Get("Idempotency-Key"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].Body, &body), "the body is a JSON object")
	assert.Equal(t, map[string]any{
		"recipients": []any{"cus_1"},
		"actor":      "staff_1",
		"data":       map[string]any{"order_id": "o1", "amount_cents": float64(4200)},
	}, body)
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
			_, err := runNotify(t, f.Client(), validNotify())
			appErr := requireAppError(t, err)
			assert.Equal(t, tc.wantType, appErr.Type())
			assert.Equal(t, tc.nonRetryable, appErr.NonRetryable(), "NonRetryable()")
			assert.Equal(t, tc.wantDelay, appErr.NextRetryDelay(), "NextRetryDelay()")
			assert.NotContains(t, err.Error(), knockTestKey)
			assert.Len(t, f.Requests(), 1)
		})
	}
}

func TestNotifyTimeoutIsTransient(t *testing.T) {
	f := providerhttptest.NewFake(t, knock.NewClient, knockTestKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	_, err := runNotify(t, f.Client(knock.WithTimeout(100*time.Millisecond)), validNotify())
	appErr := requireAppError(t, err)
	assert.Equal(t, "KnockUnavailable", appErr.Type())
	assert.False(t, appErr.NonRetryable())
}

func TestNotifyConnectionRefusedIsTransient(t *testing.T) {
	_, err := runNotify(t, knock.NewClient(knock.WithAPIKey(knockTestKey), knock.WithBaseURL(refusingURL(t))), validNotify())
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
			_, err := runNotify(t, f.Client(), in)
			appErr := requireAppError(t, err)
			assert.Equal(t, "KnockInvalidRequest", appErr.Type())
			assert.True(t, appErr.NonRetryable())
			assert.Empty(t, f.Requests(), "an invalid input must not reach Knock")
		})
	}
}

func TestNotifyWithoutAPIKeyIsAuthFailure(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"r"}`)
	_, err := runNotify(t, knock.NewClient(knock.WithBaseURL(f.URL)), validNotify())
	appErr := requireAppError(t, err)
	assert.Equal(t, "KnockAuthFailed", appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Empty(t, f.Requests())
}

func TestNotifyInConsoleModeSendsNothing(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"r"}`)
	rec := &providerhttptest.Recorder{}
	out, err := runNotify(t, f.Client(knock.WithConsole(rec)), validNotify())
	require.NoError(t, err)
	assert.Equal(t, &activities.NotifyOutput{WorkflowRunID: "console-1", Console: true}, out)
	assert.Empty(t, f.Requests())
	calls := rec.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, "order-confirmation/o1/notify-confirmation", calls[0].IdempotencyKey)
}

// TestNotifyReportsWhatThisCallDid: a client that reads its key per call and
// records when there is none says, per call, whether it sent or recorded.
func TestNotifyReportsWhatThisCallDid(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}`)
	key := knockTestKey
	c := knock.NewClient(knock.WithBaseURL(f.URL),
		knock.WithAPIKeyFunc(func(context.Context) (string, error) { return key, nil }),
		knock.WithConsole(knock.LogRecorder{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	out, err := runNotify(t, c, validNotify())
	require.NoError(t, err)
	assert.False(t, out.Console, "sent to Knock")
	assert.Len(t, f.Requests(), 1)

	key = ""
	out, err = runNotify(t, c, validNotify())
	require.NoError(t, err)
	assert.True(t, out.Console, "recorded without a key")
	assert.Len(t, f.Requests(), 1, "nothing more reached Knock")
}

// TestNotifyWithoutActiveKeyIsCredentialMissing: Knock's client as the
// worker builds it for a configured Knock (providers.NewKnockClient, not in
// console mode) whose key source holds no active key fails the trigger with
// a non-retryable KnockCredentialMissing and sends nothing; it does not
// record the call and report a console run as if it had been sent.
func TestNotifyWithoutActiveKeyIsCredentialMissing(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil, `{"workflow_run_id":"r"}`)
	c := providers.NewKnockClient(providers.ClientOptions{BaseURL: f.URL,
		Key:    func(context.Context) (string, error) { return "", nil },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	out, err := runNotify(t, c, validNotify())
	require.Error(t, err, "got %+v", out)
	appErr := requireAppError(t, err)
	assert.Equal(t, "KnockCredentialMissing", appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Empty(t, f.Requests())
}
