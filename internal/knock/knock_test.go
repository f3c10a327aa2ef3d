package knock_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

const testKey = "sk_test_x"

// fakeKnock stands in for Knock: it records every request, checks it
// against Knock's OpenAPI spec when CRMFLOW_SPECS_DIR is set, and answers
// with the test's handler; f.Client() is a client for it.
type fakeKnock = providerhttptest.Fake[*knock.Client]

func newFakeKnock(t *testing.T, respond http.HandlerFunc) *fakeKnock {
	t.Helper()
	// Success answers are checked too, which keeps the fixtures honest.
	return providerhttptest.NewFake(t, knock.NewClient, testKey, openapicheck.Load(t, openapicheck.Knock).Middleware(t, true, respond))
}

// newOffSpecFake is newFakeKnock for tests whose success answers deliberately
// break Knock's contract; requests are still checked.
func newOffSpecFake(t *testing.T, respond http.HandlerFunc) *fakeKnock {
	t.Helper()
	return providerhttptest.NewFake(t, knock.NewClient, testKey, openapicheck.Load(t, openapicheck.Knock).Middleware(t, false, respond))
}

// answer writes a Knock-style response.
var answer = providerhttptest.Answer

const runID = "0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"

var triggerOK = answer(http.StatusOK, nil, `{"workflow_run_id":"`+runID+`"}`)

// assertHeaders checks the headers every request carries, and the
// idempotency key only where expected.
func assertHeaders(t *testing.T, req providerhttptest.Request, idempotencyKey string) {
	t.Helper()
	assert.Equal(t, "Bearer "+testKey, req.Header.Get("Authorization"))
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	assert.Equal(t, "application/json", req.Header.Get("Accept"))
	assert.Equal(t, "crmflow", req.Header.Get("User-Agent"))
	if idempotencyKey == "" {
		assert.NotContains(t, req.Header, "Idempotency-Key")
	} else {
		assert.Equal(t, idempotencyKey, req.Header.Get("Idempotency-Key"))
	}
}

func TestTriggerSendsKnockRequestAndReturnsRunID(t *testing.T) {
	f := newFakeKnock(t, triggerOK)
	got, err := f.Client().Workflows.Trigger(context.Background(), "order-confirmation", knock.TriggerParams{
		Recipients:      []knock.Recipient{knock.UserID("cus_1"), knock.UserID("cus_2")},
		Actor:           knock.UserID("staff_9"),
		Data:            map[string]any{"order_id": "o1", "total": 1250, "url": "https://shop.test/o?id=1&x=2"},
		Tenant:          "acme",
		CancellationKey: "order-confirmation/o1",
	}, knock.WithIdempotencyKey("order-confirmation/o1/notify"))
	require.NoError(t, err)
	assert.Equal(t, runID, got)

	req := f.Only(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/workflows/order-confirmation/trigger", req.Path)
	assertHeaders(t, req, "order-confirmation/o1/notify")
	assert.JSONEq(t, `{
		"recipients": ["cus_1", "cus_2"],
		"actor": "staff_9",
		"data": {"order_id": "o1", "total": 1250, "url": "https://shop.test/o?id=1&x=2"},
		"tenant": "acme",
		"cancellation_key": "order-confirmation/o1"
	}`, string(req.Body))
}

func TestTriggerOmitsUnsetFieldsAndEscapesKey(t *testing.T) {
	f := newFakeKnock(t, triggerOK)
	_, err := f.Client().Workflows.Trigger(context.Background(), "low stock/é", knock.TriggerParams{
		Recipients: []knock.Recipient{knock.UserID("ops_1")},
	}, knock.WithIdempotencyKey("k1"))
	require.NoError(t, err)

	req := f.Only(t)
	assert.Equal(t, "/v1/workflows/low%20stock%2F%C3%A9/trigger", req.Path)
	assert.JSONEq(t, `{"recipients":["ops_1"]}`, string(req.Body))
}

func TestTriggerRejectsResponseWithoutRunID(t *testing.T) {
	f := newOffSpecFake(t, answer(http.StatusOK, nil, `{}`))
	_, err := f.Client().Workflows.Trigger(context.Background(), "wf", knock.TriggerParams{
		Recipients: []knock.Recipient{knock.UserID("u")},
	})
	require.ErrorContains(t, err, "no workflow_run_id")
}

func TestIdentifyMergesPropertiesIntoOneObject(t *testing.T) {
	f := newFakeKnock(t, answer(http.StatusOK, nil, `{
		"__typename": "User", "id": "user 1/a", "email": "ada@example.com", "name": "Ada",
		"created_at": null, "updated_at": "2026-08-01T10:00:00Z", "plan": "pro", "seats": 3
	}`))
	user, err := f.Client().Users.Identify(context.Background(), "user 1/a", knock.IdentifyParams{
		Email: "ada@example.com",
		Name:  "Ada",
		// "name" here must lose to Name: explicit fields win.
		Properties: map[string]any{"plan": "pro", "seats": 3, "name": "ignored", "timezone": "Europe/Paris"},
	})
	require.NoError(t, err)

	req := f.Only(t)
	assert.Equal(t, http.MethodPut, req.Method)
	assert.Equal(t, "/v1/users/user%201%2Fa", req.Path)
	assertHeaders(t, req, "")
	assert.JSONEq(t, `{"email":"ada@example.com","name":"Ada","plan":"pro","seats":3,"timezone":"Europe/Paris"}`, string(req.Body))

	assert.Equal(t, "user 1/a", user.ID)
	assert.Equal(t, "ada@example.com", user.Email)
	assert.Equal(t, "Ada", user.Name)
	assert.Nil(t, user.CreatedAt)
	assert.Equal(t, time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC), user.UpdatedAt)
	assert.Equal(t, map[string]any{"plan": "pro", "seats": float64(3)}, user.Properties)
}

func TestCancelSendsKeyAndRecipients(t *testing.T) {
	f := newFakeKnock(t, answer(http.StatusNoContent, nil, ""))
	err := f.Client().Workflows.Cancel(context.Background(), "order-confirmation", knock.CancelParams{
		CancellationKey: "order-confirmation/o1",
		Recipients:      []knock.Recipient{knock.UserID("cus_1"), knock.Object("projects", "p1")},
	})
	require.NoError(t, err)

	req := f.Only(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/workflows/order-confirmation/cancel", req.Path)
	assertHeaders(t, req, "")
	assert.JSONEq(t, `{"cancellation_key":"order-confirmation/o1","recipients":["cus_1",{"id":"p1","collection":"projects"}]}`, string(req.Body))
}

func TestCancelWithoutRecipientsCancelsForAll(t *testing.T) {
	f := newFakeKnock(t, answer(http.StatusNoContent, nil, ""))
	err := f.Client().Workflows.Cancel(context.Background(), "wf", knock.CancelParams{CancellationKey: "c1"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"cancellation_key":"c1"}`, string(f.Only(t).Body))
}

func TestErrorsAreDecoded(t *testing.T) {
	retryAt := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name      string
		respond   http.HandlerFunc
		want      knock.Error
		temporary bool
		// retryAfterWithin, when set, replaces an exact RetryAfter check.
		retryAfterWithin [2]time.Duration
	}{
		{
			name: "429 with Retry-After seconds",
			respond: answer(429, map[string]string{"Retry-After": "7", "X-Request-Id": "req_429"},
				`{"code":"rate_limit_exceeded","message":"Too many requests","status":429,"type":"api_error"}`),
			want:      knock.Error{StatusCode: 429, Code: "rate_limit_exceeded", Type: "api_error", Message: "Too many requests", RetryAfter: 7 * time.Second, RequestID: "req_429"},
			temporary: true,
		},
		{
			name:      "429 with Retry-After-Ms wins",
			respond:   answer(429, map[string]string{"Retry-After": "7", "Retry-After-Ms": "1500"}, `{"code":"rate_limit_exceeded","message":"slow down"}`),
			want:      knock.Error{StatusCode: 429, Code: "rate_limit_exceeded", Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			temporary: true,
		},
		{
			name:             "429 with Retry-After as HTTP date",
			respond:          answer(429, map[string]string{"Retry-After": retryAt}, `{"code":"rate_limit_exceeded","message":"m"}`),
			want:             knock.Error{StatusCode: 429, Code: "rate_limit_exceeded", Message: "m"},
			temporary:        true,
			retryAfterWithin: [2]time.Duration{25 * time.Second, 31 * time.Second},
		},
		{
			name:      "429 without Retry-After",
			respond:   answer(429, nil, `{"code":"rate_limit_exceeded","message":"m"}`),
			want:      knock.Error{StatusCode: 429, Code: "rate_limit_exceeded", Message: "m"},
			temporary: true,
		},
		{
			name:      "500",
			respond:   answer(500, nil, `{"code":"internal_error","message":"boom","status":500,"type":"api_error"}`),
			want:      knock.Error{StatusCode: 500, Code: "internal_error", Type: "api_error", Message: "boom"},
			temporary: true,
		},
		{
			name:      "408",
			respond:   answer(408, nil, ""),
			want:      knock.Error{StatusCode: 408, Message: "Request Timeout"},
			temporary: true,
		},
		{
			name: "401 api_key_missing",
			respond: answer(401, map[string]string{"X-Request-Id": "req_401"},
				`{"code":"api_key_missing","message":"The API key provided is missing","status":401,"type":"authentication_error"}`),
			want: knock.Error{StatusCode: 401, Code: "api_key_missing", Type: "authentication_error", Message: "The API key provided is missing", RequestID: "req_401"},
		},
		{
			name:    "404 router shape",
			respond: answer(404, nil, `{"errors":{"detail":"404 Not Found"}}`),
			want:    knock.Error{StatusCode: 404, Message: "404 Not Found"},
		},
		{
			name:    "422 invalid params",
			respond: answer(422, nil, `{"code":"invalid_params","message":"recipients is invalid","status":422,"type":"invalid_request_error"}`),
			want:    knock.Error{StatusCode: 422, Code: "invalid_params", Type: "invalid_request_error", Message: "recipients is invalid"},
		},
		{
			name:      "502 non-JSON body",
			respond:   answer(502, map[string]string{"Content-Type": "text/html"}, "<html><body>502 Bad Gateway</body></html>\n"),
			want:      knock.Error{StatusCode: 502, Message: "<html><body>502 Bad Gateway</body></html>"},
			temporary: true,
		},
		{
			name:    "400 empty body",
			respond: answer(400, nil, ""),
			want:    knock.Error{StatusCode: 400, Message: "Bad Request"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKnock(t, tc.respond)
			_, err := f.Client().Workflows.Trigger(context.Background(), "wf", knock.TriggerParams{
				Recipients: []knock.Recipient{knock.UserID("u1")},
			}, knock.WithIdempotencyKey("k"))
			var kerr *knock.Error
			require.ErrorAs(t, err, &kerr)
			got := *kerr
			if lo, hi := tc.retryAfterWithin[0], tc.retryAfterWithin[1]; hi > 0 {
				assert.True(t, got.RetryAfter >= lo && got.RetryAfter <= hi, "RetryAfter %s not in [%s, %s]", got.RetryAfter, lo, hi)
				got.RetryAfter = 0
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.temporary, kerr.Temporary(), "Temporary()")
			assert.NotContains(t, err.Error(), testKey)
			assert.Len(t, f.Requests(), 1, "the client must not retry on its own; Temporal does")
		})
	}
}

func TestIdempotencyKeyLength(t *testing.T) {
	f := newFakeKnock(t, triggerOK)
	params := knock.TriggerParams{Recipients: []knock.Recipient{knock.UserID("u1")}}

	_, err := f.Client().Workflows.Trigger(context.Background(), "wf", params, knock.WithIdempotencyKey(strings.Repeat("k", 256)))
	require.ErrorIs(t, err, knock.ErrInvalidParams)
	assert.Empty(t, f.Requests(), "an over-long key must be refused before sending")

	longest := strings.Repeat("k", knock.MaxIdempotencyKeyLen)
	_, err = f.Client().Workflows.Trigger(context.Background(), "wf", params, knock.WithIdempotencyKey(longest))
	require.NoError(t, err)
	assert.Equal(t, longest, f.Only(t).Header.Get("Idempotency-Key"))
}

func TestInvalidParamsAreRefusedBeforeSending(t *testing.T) {
	f := newFakeKnock(t, triggerOK)
	c := f.Client()
	ctx := context.Background()
	one := []knock.Recipient{knock.UserID("u1")}
	for name, call := range map[string]func() error{
		"empty workflow key": func() error {
			_, err := c.Workflows.Trigger(ctx, " ", knock.TriggerParams{Recipients: one})
			return err
		},
		"empty recipient id": func() error {
			_, err := c.Workflows.Trigger(ctx, "wf", knock.TriggerParams{Recipients: []knock.Recipient{knock.UserID("")}})
			return err
		},
		"newline in idempotency key": func() error {
			_, err := c.Workflows.Trigger(ctx, "wf", knock.TriggerParams{Recipients: one}, knock.WithIdempotencyKey("a\nb"))
			return err
		},
		"unencodable data": func() error {
			_, err := c.Workflows.Trigger(ctx, "wf", knock.TriggerParams{Recipients: one, Data: map[string]any{"f": func() {}}})
			return err
		},
		"cancel without cancellation key": func() error {
			return c.Workflows.Cancel(ctx, "wf", knock.CancelParams{})
		},
		"identify without id": func() error {
			_, err := c.Users.Identify(ctx, "", knock.IdentifyParams{})
			return err
		},
	} {
		assert.ErrorIs(t, call(), knock.ErrInvalidParams, name)
	}
	assert.Empty(t, f.Requests())
}

func TestConsoleModeSendsNothingAndRecords(t *testing.T) {
	f := newFakeKnock(t, triggerOK)
	rec := &providerhttptest.Recorder{}
	// Key and URL are set on purpose: console mode must win over both.
	c := f.Client(knock.WithConsole(rec))
	require.True(t, c.Console())
	ctx := context.Background()

	id1, err := c.Workflows.Trigger(ctx, "order-confirmation", knock.TriggerParams{
		Recipients: []knock.Recipient{knock.UserID("cus_1")},
		Data:       map[string]any{"order_id": "o1"},
	}, knock.WithIdempotencyKey("order-confirmation/o1/notify"))
	require.NoError(t, err)
	id2, err := c.Workflows.Trigger(ctx, "order-confirmation", knock.TriggerParams{Recipients: []knock.Recipient{knock.UserID("cus_2")}})
	require.NoError(t, err)
	assert.Equal(t, "console-1", id1)
	assert.Equal(t, "console-2", id2)

	user, err := c.Users.Identify(ctx, "user_1", knock.IdentifyParams{Email: "a@example.com", Properties: map[string]any{"plan": "pro"}})
	require.NoError(t, err)
	assert.Equal(t, &knock.User{ID: "user_1", Email: "a@example.com", Properties: map[string]any{"plan": "pro"}}, user)
	require.NoError(t, c.Workflows.Cancel(ctx, "order-confirmation", knock.CancelParams{CancellationKey: "c1"}))

	// Validation still applies, so console runs catch what Knock would refuse.
	_, err = c.Workflows.Trigger(ctx, "wf", knock.TriggerParams{Recipients: []knock.Recipient{knock.UserID("u")}}, knock.WithIdempotencyKey(strings.Repeat("k", 300)))
	require.ErrorIs(t, err, knock.ErrInvalidParams)

	assert.Empty(t, f.Requests(), "console mode must not send anything")
	require.Len(t, rec.Calls(), 4)
	assert.Equal(t, "POST", rec.Calls()[0].Method)
	assert.Equal(t, "/v1/workflows/order-confirmation/trigger", rec.Calls()[0].Path)
	assert.Equal(t, "order-confirmation/o1/notify", rec.Calls()[0].IdempotencyKey)
	assert.JSONEq(t, `{"recipients":["cus_1"],"data":{"order_id":"o1"}}`, string(rec.Calls()[0].Body))
	assert.Equal(t, "", rec.Calls()[1].IdempotencyKey)
	assert.Equal(t, "PUT", rec.Calls()[2].Method)
	assert.Equal(t, "/v1/users/user_1", rec.Calls()[2].Path)
	assert.JSONEq(t, `{"email":"a@example.com","plan":"pro"}`, string(rec.Calls()[2].Body))
	assert.Equal(t, "/v1/workflows/order-confirmation/cancel", rec.Calls()[3].Path)
	assert.JSONEq(t, `{"cancellation_key":"c1"}`, string(rec.Calls()[3].Body))
}
