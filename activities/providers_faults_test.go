package activities_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// Provider faults (reliability scenario 9): every provider's activity,
// against a test server that misbehaves the way real ones do, returns an
// error classified as activities/errors.go says: retryable (network,
// timeouts, stalled bodies, 5xx, 429 with its Retry-After as the next
// delay) or non-retryable (bad credentials). The per-provider tables in
// knock_test.go, simplelogin_test.go, resend_test.go and stripe_test.go
// cover the status codes; these add what they do not (stalled bodies,
// dropped connections, Retry-After for every provider) and, through a real
// Temporal run, that the retry waits as long as the provider asked.

// fault is one misbehaviour of a provider's test server.
type fault struct {
	name string
	// serve answers one request; release is closed when the test ends, so
	// a stalled handler can return.
	serve func(w http.ResponseWriter, r *http.Request, release <-chan struct{})
}

func status(code int, header map[string]string, body string) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
	return func(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// stallMidBody sends the status line, headers and the start of a body,
// then stops sending until the client gives up.
func stallMidBody(code int, start string) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
	return func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(code)
		fmt.Fprint(w, start)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// stallHeaders answers nothing at all until the client gives up.
func stallHeaders(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-release:
	}
}

// hangUp drops the connection without an answer, as a crashed proxy does.
func hangUp(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// faultServer answers every request with its fault and records the time
// each arrived; with a spec, each request is also checked against the
// provider's OpenAPI description.
type faultServer struct {
	mu    sync.Mutex
	times []time.Time
	srv   *httptest.Server
}

func newFaultServer(t *testing.T, spec *openapicheck.Spec, answer func(n int) func(http.ResponseWriter, *http.Request, <-chan struct{})) *faultServer {
	t.Helper()
	release := make(chan struct{})
	fs := &faultServer{}
	fs.srv = httptest.NewServer(spec.Middleware(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.times = append(fs.times, time.Now())
		n := len(fs.times)
		fs.mu.Unlock()
		answer(n)(w, r, release)
	})))
	t.Cleanup(func() { close(release); fs.srv.Close() })
	return fs
}

func (fs *faultServer) requests() []time.Time {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]time.Time(nil), fs.times...)
}

// faultClientTimeout bounds each HTTP exchange in these tests, so a stalled
// server fails the attempt quickly, as the clients' own timeouts do in
// production (10 to 30 seconds).
const faultClientTimeout = 300 * time.Millisecond

// provider runs one activity call of a provider against a server URL.
type provider struct {
	name string
	spec openapicheck.Provider
	// check is nil for Stripe, whose requests stripe-mock checks elsewhere.
	check bool
	run   func(t *testing.T, url string) error
	// unauthorized is the provider's answer to a bad key.
	unauthorized func(http.ResponseWriter, *http.Request, <-chan struct{})
	// rateLimited is a 429 answer in the provider's shape.
	rateLimited func(header map[string]string) func(http.ResponseWriter, *http.Request, <-chan struct{})
	// noRetryAfterDelay is the next delay of a 429 that names none.
	noRetryAfterDelay time.Duration
	// okStart is the start of a success body, cut off by a stall.
	okStart string
}

// staticKey is a KeySource with one key.
type staticKey string

func (k staticKey) ActiveKey(context.Context, string, string) (string, error) { return string(k), nil }

func activityEnv() *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(&captureLogger{})
	return s.NewTestActivityEnvironment()
}

var faultProviders = []provider{
	{
		name: "Knock", spec: openapicheck.Knock, check: true,
		run: func(t *testing.T, url string) error {
			c := knock.NewClient(knock.WithAPIKey(knockTestKey), knock.WithBaseURL(url), knock.WithTimeout(faultClientTimeout))
			_, err := runNotify(t, c, validNotify())
			return err
		},
		unauthorized: status(401, nil, `{"code":"api_key_missing","message":"The API key provided is missing","status":401,"type":"authentication_error"}`),
		rateLimited: func(h map[string]string) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
			return status(429, h, `{"code":"rate_limit_exceeded","message":"Too many requests","status":429,"type":"api_error"}`)
		},
		okStart: `{"workflow_run_id":"0b6d`,
	},
	{
		name: "SimpleLogin", spec: openapicheck.SimpleLogin, check: true,
		run: func(t *testing.T, url string) error {
			c := simplelogin.NewClient(simplelogin.WithAPIKey(slTestKey), simplelogin.WithBaseURL(url), simplelogin.WithTimeout(faultClientTimeout))
			// SetAliasEnabled reads the alias first, so a stalled body is read.
			_, err := runSetAliasEnabled(t, c, activities.SetAliasEnabledInput{SimpleLoginID: 7, Enabled: true})
			return err
		},
		unauthorized: status(401, nil, `{"error":"Wrong api key"}`),
		rateLimited: func(h map[string]string) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
			return status(429, h, `{"error":"Rate limit exceeded"}`)
		},
		noRetryAfterDelay: simplelogin.DefaultRateLimitBackoff,
		okStart:           `{"id":7,"email":"a@sl.test","enabled":`,
	},
	{
		name: "Resend", spec: openapicheck.Resend, check: true,
		run: func(t *testing.T, url string) error {
			a := &activities.ResendActivities{Keys: staticKey(rsAdminToken), BaseURL: url, HTTPClient: &http.Client{Timeout: faultClientTimeout}}
			env := activityEnv()
			env.RegisterActivity(a)
			_, err := env.ExecuteActivity(a.CreateAPIKey, activities.CreateAPIKeyInput{Name: "crmflow-rot-faults", Permission: activities.ResendFullAccess})
			return err
		},
		unauthorized: status(401, nil, rsError(401, "missing_api_key", "Missing API key")),
		rateLimited: func(h map[string]string) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
			return status(429, h, rsError(429, "rate_limit_exceeded", "Too many requests"))
		},
		okStart: `{"object":"list","has_more":false,"data":[`,
	},
	{
		name: "Stripe",
		run: func(t *testing.T, url string) error {
			acts := &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient(stripeTestKey, url, &http.Client{Timeout: faultClientTimeout})}
			env := activityEnv()
			env.RegisterActivity(acts)
			_, err := env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1"})
			return err
		},
		unauthorized: status(401, nil, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_***123"}}`),
		rateLimited: func(h map[string]string) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
			return status(429, h, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`)
		},
		okStart: `{"id":"pi_1","object":"payment_intent","amount":`,
	},
}

// TestProviderFaultsAreClassified: for each provider, each fault gives the
// classified error errors.go promises, after exactly one request (retries
// are Temporal's, never hidden in a client).
func TestProviderFaultsAreClassified(t *testing.T) {
	for _, p := range faultProviders {
		cases := []struct {
			fault        fault
			kind         string
			nonRetryable bool
			delay        time.Duration
		}{
			{fault{"429 with Retry-After seconds", p.rateLimited(map[string]string{"Retry-After": "7"})}, "RateLimited", false, 7 * time.Second},
			{fault{"429 without Retry-After", p.rateLimited(nil)}, "RateLimited", false, p.noRetryAfterDelay},
			{fault{"500", status(500, nil, `{}`)}, "Unavailable", false, 0},
			{fault{"503 from a proxy", status(503, map[string]string{"Content-Type": "text/html"}, `<html>Service Unavailable</html>`)}, "Unavailable", false, 0},
			{fault{"no answer (timeout)", stallHeaders}, "Unavailable", false, 0},
			{fault{"success body stalls midway", stallMidBody(200, p.okStart)}, "Unavailable", false, 0},
			{fault{"error body stalls midway", stallMidBody(503, `{"error":`)}, "Unavailable", false, 0},
			{fault{"connection dropped", hangUp}, "Unavailable", false, 0},
			{fault{"bad credentials", p.unauthorized}, "AuthFailed", true, 0},
		}
		for _, c := range cases {
			t.Run(p.name+"/"+c.fault.name, func(t *testing.T) {
				var spec *openapicheck.Spec
				if p.check {
					spec = openapicheck.Load(t, p.spec)
				}
				fs := newFaultServer(t, spec, func(int) func(http.ResponseWriter, *http.Request, <-chan struct{}) { return c.fault.serve })
				err := p.run(t, fs.srv.URL)
				var appErr *temporal.ApplicationError
				require.True(t, errors.As(err, &appErr), "want a classified *temporal.ApplicationError, got %T: %v", err, err)
				assert.Equal(t, p.name+c.kind, appErr.Type(), "error: %v", err)
				assert.Equal(t, c.nonRetryable, appErr.NonRetryable(), "NonRetryable(); error: %v", err)
				assert.Equal(t, c.delay, appErr.NextRetryDelay(), "NextRetryDelay(); error: %v", err)
				assert.Len(t, fs.requests(), 1, "one request per attempt")
			})
		}
	}
}

// faultsNotifyWorkflow runs Knock's Notify with a fast retry policy, so a
// retry that ignored Retry-After would come after about 100 ms.
func faultsNotifyWorkflow(ctx workflow.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 10,
		},
	})
	var a *activities.KnockActivities
	var out activities.NotifyOutput
	err := workflow.ExecuteActivity(ctx, a.Notify, in).Get(ctx, &out)
	return &out, err
}

// TestRetryAfterIsHonouredByARealTemporalRun: Knock answers a burst of 5xx,
// then a 429 asking for two seconds, then accepts. Through the test binary's
// Temporal server the run completes with one trigger accepted, every fault
// retried, and the request after the 429 arrived at least two seconds after
// it, as the server's own clock measured.
func TestRetryAfterIsHonouredByARealTemporalRun(t *testing.T) {
	const retryAfter = 2 * time.Second
	spec := openapicheck.Load(t, openapicheck.Knock)
	fs := newFaultServer(t, spec, func(n int) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
		switch n {
		case 1, 2:
			return status(503, nil, `{"code":"internal_error","message":"try later","status":503}`)
		case 3:
			return status(429, map[string]string{"Retry-After": "2"}, `{"code":"rate_limit_exceeded","message":"slow down","status":429}`)
		default:
			return status(200, nil, `{"workflow_run_id":"0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}`)
		}
	})
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(faultsNotifyWorkflow, workflow.RegisterOptions{Name: "FaultsNotify"})
	w.RegisterActivity(&activities.KnockActivities{Knock: knock.NewClient(knock.WithAPIKey(knockTestKey), knock.WithBaseURL(fs.srv.URL))})
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "faults-" + queue, TaskQueue: queue}, "FaultsNotify", validNotify())
	require.NoError(t, err)
	var out activities.NotifyOutput
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e", out.WorkflowRunID)

	times := fs.requests()
	require.Len(t, times, 4, "two 5xx and a 429 retried, then accepted once")
	assert.GreaterOrEqual(t, times[3].Sub(times[2]), retryAfter, "the retry after the 429 waited for its Retry-After")
}
