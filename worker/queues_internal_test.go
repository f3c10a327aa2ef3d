package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// fanOutInput asks notifyFanOut for Count Knock triggers at once.
type fanOutInput struct {
	Count int
	Tag   string
}

// notifyFanOut triggers Count Knock notifications in parallel on the Knock
// activity queue, as crmflow's workflows do, and fails if any fails.
func notifyFanOut(ctx workflow.Context, in fanOutInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           contract.ProviderTaskQueue(workflow.GetInfo(ctx).TaskQueueName, contract.ProviderKnock),
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Second, MaximumAttempts: 8,
		},
	})
	var k *activities.KnockActivities
	futures := make([]workflow.Future, in.Count)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, k.Notify, activities.NotifyInput{
			Workflow: "fan-out", Recipients: []string{"u1"}, IdempotencyKey: fmt.Sprintf("%s/%d", in.Tag, i),
		})
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return fmt.Errorf("notification %d: %w", i, err)
		}
	}
	return nil
}

// knockServer answers trigger requests like Knock (method, path, bearer key,
// Idempotency-Key and a JSON body with recipients checked), or 503 while
// down, and records what it saw.
type knockServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	down     bool
	triggers []time.Time    // successful triggers, in arrival order
	byKey    map[string]int // successful triggers per idempotency key
	posts    int            // trigger requests, answered or refused
	probes   int            // probe GETs
	probed   chan struct{}  // receives after each probe
	failures map[string]int // 503s per idempotency key
}

func newKnockServer(t *testing.T) *knockServer {
	k := &knockServer{t: t, byKey: map[string]int{}, failures: map[string]int{}, probed: make(chan struct{}, 100)}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *knockServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer sk_test_knock" {
		http.Error(w, `{"code":"api_key_missing","status":401}`, http.StatusUnauthorized)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/v1/users/crmflow-key-check" {
		k.probes++
		k.probed <- struct{}{}
		if k.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/workflows/fan-out/trigger" {
		k.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || key == "" || body["recipients"] == nil {
		k.t.Errorf("bad trigger: key %q body %v err %v", key, body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	k.posts++
	if k.down {
		k.failures[key]++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	k.triggers = append(k.triggers, time.Now())
	k.byKey[key]++
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"workflow_run_id":"run-%d"}`, len(k.triggers))
}

func (k *knockServer) setDown(down bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.down = down
}

func (k *knockServer) snapshot() (posts, triggers int, byKey map[string]int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	byKey = map[string]int{}
	for key, n := range k.byKey {
		byKey[key] = n
	}
	return k.posts, len(k.triggers), byKey
}

// knockWorkers builds a Workers whose Knock activities call k, with the test
// workflow registered on its workflow queue.
func knockWorkers(t *testing.T, c client.Client, queue string, k *knockServer, opts Options) *Workers {
	opts.TaskQueue = queue
	opts.StopTimeout = 5 * time.Second
	opts.Activities = Activities{Knock: &activities.KnockActivities{Knock: knock.NewClient(
		knock.WithAPIKey("sk_test_knock"), knock.WithBaseURL(k.srv.URL))}}
	w := New(c, opts)
	w.main.RegisterWorkflow(notifyFanOut)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w
}

func runFanOut(t *testing.T, c client.Client, queue string, in fanOutInput) client.WorkflowRun {
	run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: "fan-out/" + in.Tag, TaskQueue: queue, WorkflowExecutionTimeout: 5 * time.Minute,
	}, notifyFanOut, in)
	require.NoError(t, err)
	return run
}

// TestProviderActivitiesRunOnTheirQueue: a provider's activities are
// scheduled on its own task queue, which the workflow worker does not poll.
func TestProviderActivitiesRunOnTheirQueue(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	k := newKnockServer(t)
	knockWorkers(t, c, queue, k, Options{})
	run := runFanOut(t, c, queue, fanOutInput{Count: 2, Tag: "queue"})
	require.NoError(t, run.Get(context.Background(), nil))

	it := c.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled++
			assert.Equal(t, queue+"-knock", a.GetTaskQueue().GetName())
		}
	}
	assert.Equal(t, 2, scheduled)
	_, triggers, _ := k.snapshot()
	assert.Equal(t, 2, triggers)
}

// TestProviderRateLimitHoldsAcrossWorkers: two worker replicas poll the
// Knock queue with a limit of 4 activities a second; Temporal enforces it at
// the task queue, so the provider sees that rate in total, not per replica.
func TestProviderRateLimitHoldsAcrossWorkers(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	k := newKnockServer(t)
	const perSecond, count = 4.0, 24
	limits := Options{Limits: map[string]QueueLimits{contract.ProviderKnock: {PerSecond: perSecond, Concurrency: 8}}}
	knockWorkers(t, c, queue, k, limits)
	knockWorkers(t, c, queue, k, limits)

	run := runFanOut(t, c, queue, fanOutInput{Count: count, Tag: "rate"})
	require.NoError(t, run.Get(context.Background(), nil))
	k.mu.Lock()
	times := append([]time.Time(nil), k.triggers...)
	k.mu.Unlock()
	require.Len(t, times, count)

	// Whatever burst the limiter allows up front, any 3 s window after the
	// first second holds no more than the limit's worth plus a second's
	// worth of jitter between dispatch and arrival. Without the limit all 24
	// land within a second.
	for i, start := range times {
		if start.Sub(times[0]) < time.Second {
			continue
		}
		in := 0
		for _, at := range times[i:] {
			if at.Sub(start) < 3*time.Second {
				in++
			}
		}
		assert.LessOrEqual(t, in, int(4*perSecond), "requests in the 3 s from %s", start.Sub(times[0]))
	}
	// And the whole run can be no faster than the rate allows after a burst
	// of at most a second's worth.
	assert.GreaterOrEqual(t, times[count-1].Sub(times[0]).Seconds(), (count-2*perSecond)/perSecond)
}

// TestFailingProviderQueuePausesAndResumes: Knock answers 503; after three
// outage failures in a row the worker stops polling the Knock queue, only
// probes reach Knock while it stays down, and once it answers again polling
// resumes and every notification goes out exactly once: nothing was parked
// or dropped, and the retries spent no attempts while paused.
func TestFailingProviderQueuePausesAndResumes(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	k := newKnockServer(t)
	k.setDown(true)
	reg := prometheus.NewRegistry()
	w := knockWorkers(t, c, queue, k, Options{Breaker: BreakerOptions{
		Threshold: 3,
		Cooldown:  500 * time.Millisecond,
		Probes: map[string]func(ctx context.Context) error{
			contract.ProviderKnock: probeURL(k.srv.URL + "/v1/users/crmflow-key-check"),
		},
		Metrics: reg,
	}})
	const count = 6
	run := runFanOut(t, c, queue, fanOutInput{Count: count, Tag: "breaker"})

	// Two failed probes: the queue paused and stayed paused.
	for range 2 {
		select {
		case <-k.probed:
		case <-time.After(time.Minute):
			t.Fatal("no probe reached Knock after the failures")
		}
	}
	postsWhilePaused, _, _ := k.snapshot()
	knockQueue := queueState(w, contract.ProviderKnock)
	assert.True(t, knockQueue.Paused)
	assert.Equal(t, 1.0, metricValue(t, reg, "crmflow_provider_queue_paused", "knock"))
	select {
	case <-k.probed:
	case <-time.After(time.Minute):
		t.Fatal("no third probe")
	}
	postsAfter, _, _ := k.snapshot()
	assert.Equal(t, postsWhilePaused, postsAfter, "triggers reached Knock while its queue was paused")

	k.setDown(false)
	require.NoError(t, run.Get(context.Background(), nil))
	_, triggers, byKey := k.snapshot()
	assert.Equal(t, count, triggers)
	for i := range count {
		assert.Equal(t, 1, byKey[fmt.Sprintf("breaker/%d", i)], "notification %d", i)
	}
	knockQueue = queueState(w, contract.ProviderKnock)
	assert.False(t, knockQueue.Paused)
	assert.GreaterOrEqual(t, knockQueue.Pauses, 1)
	assert.Equal(t, 0.0, metricValue(t, reg, "crmflow_provider_queue_paused", "knock"))
	assert.GreaterOrEqual(t, metricValue(t, reg, "crmflow_provider_queue_pauses_total", "knock"), 1.0)
	// Attempts were bounded by the threshold, not the outage's length.
	k.mu.Lock()
	defer k.mu.Unlock()
	failed := 0
	for _, n := range k.failures {
		failed += n
	}
	assert.Less(t, failed, count*3, "503s before the pause: %v", k.failures)
}

// metricValue reads a gauge or counter labelled provider from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, provider string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "provider" && l.GetValue() == provider {
					return m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{provider=%q} in the registry", name, provider)
	return 0
}

func queueState(w *Workers, provider string) QueueState {
	for _, s := range w.Queues() {
		if s.Provider == provider {
			return s
		}
	}
	return QueueState{}
}

// probeURL is a probe that fails while the provider answers 5xx or 429.
func probeURL(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer sk_test_knock")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode == 429 {
			return fmt.Errorf("answered %d", resp.StatusCode)
		}
		return nil
	}
}

// TestIsOutage: only retryable Unavailable and RateLimited errors count.
func TestIsOutage(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{temporal.NewApplicationError("down", "KnockUnavailable"), true},
		{temporal.NewApplicationError("slow down", "StripeRateLimited"), true},
		{temporal.NewNonRetryableApplicationError("bad", "KnockInvalidRequest", nil), false},
		{temporal.NewNonRetryableApplicationError("gone", "KnockUnavailable", nil), false},
		{temporal.NewApplicationError("refused", "KnockAuthFailed"), false},
		{fmt.Errorf("plain: %w", context.Canceled), false},
	} {
		name := "nil"
		if c.err != nil {
			name = c.err.Error()
		}
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			assert.Equal(t, c.want, isOutage(c.err))
		})
	}
}

// TestProviderProbes: each probe makes its provider's authenticated GET
// with the key active in the credential store, fails while the provider
// answers 5xx or 429, passes on any other answer, and passes without a
// request for a provider in console mode (no key).
func TestProviderProbes(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusOK
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+r.Header.Get("Authentication"))
		// Each provider's own answer shape, so the probe reads it as it
		// would the real API's.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		switch {
		case status != http.StatusOK:
			fmt.Fprintf(w, `{"error":{"type":"api_error","message":"status %d"},"code":"status_%d","status":%d,"message":"no"}`, status, status, status)
		case r.URL.Path == "/v1/balance":
			fmt.Fprint(w, `{"object":"balance","available":[],"pending":[],"livemode":false}`)
		case r.URL.Path == "/api/user_info":
			fmt.Fprint(w, `{"name":"probe","email":"probe@example.com","is_premium":false,"in_trial":false}`)
		default:
			fmt.Fprint(w, `{"id":"crmflow-key-check","__typename":"User"}`)
		}
	}))
	defer srv.Close()
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	require.NoError(t, err)
	creds := credentials.NewStore(testenv.Store(t), keys, credentials.Options{CacheTTL: -1})
	ctx := context.Background()
	for provider, key := range map[string]string{"stripe": "sk_test_p", "knock": "sk_test_k", "simplelogin": "sl_p"} {
		_, err := creds.SeedFromConfig(ctx, provider, "api_key", key)
		require.NoError(t, err)
	}
	cfg := &config.Config{
		Stripe:      config.StripeConfig{APIURL: srv.URL},
		Knock:       config.ProviderConfig{APIURL: srv.URL},
		SimpleLogin: config.ProviderConfig{APIURL: srv.URL},
		Resend:      config.ResendConfig{APIURL: srv.URL},
	}
	probes := ProviderProbes(cfg, creds)
	require.Len(t, probes, len(providers.Queued()))

	for _, s := range []int{http.StatusOK, http.StatusUnauthorized, http.StatusNotFound} {
		status = s
		for _, p := range []string{"stripe", "knock", "simplelogin"} {
			assert.NoError(t, probes[p](ctx), "%s answering %d", p, s)
		}
	}
	for _, s := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway} {
		status = s
		for _, p := range []string{"stripe", "knock", "simplelogin"} {
			assert.Error(t, probes[p](ctx), "%s answering %d", p, s)
		}
	}
	mu.Lock()
	assert.Contains(t, seen, "GET /v1/balance Bearer sk_test_p")
	assert.Contains(t, seen, "GET /v1/users/crmflow-key-check Bearer sk_test_k")
	assert.Contains(t, seen, "GET /api/user_info sl_p")
	before := len(seen)
	mu.Unlock()

	// Resend has no key: console mode answers without a request.
	assert.NoError(t, probes["resend"](ctx))
	mu.Lock()
	assert.Len(t, seen, before)
	mu.Unlock()

	cfg.Knock.APIURL = "http://127.0.0.1:1"
	assert.Error(t, ProviderProbes(cfg, creds)["knock"](ctx), "an unreachable provider is still down")
}

// TestProviderQueueRunsAtItsConfiguredRate: a provider queue configured at
// N activities a second starts them at N a second, within 10 %, measured
// from the start timestamps (the stand-in's arrival times) once the
// limiter's initial burst is spent. Temporal splits a queue's rate limit
// across its partitions (four by default), which made a queue run at about
// half its rate; the embedded server gives provider queues one partition
// (internal/temporalserver).
func TestProviderQueueRunsAtItsConfiguredRate(t *testing.T) {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	k := newKnockServer(t)
	const perSecond, count = 5.0, 40
	knockWorkers(t, c, queue, k, Options{Limits: map[string]QueueLimits{contract.ProviderKnock: {PerSecond: perSecond, Concurrency: 8}}})

	run := runFanOut(t, c, queue, fanOutInput{Count: count, Tag: "measured-rate"})
	require.NoError(t, run.Get(context.Background(), nil))
	k.mu.Lock()
	times := append([]time.Time(nil), k.triggers...)
	k.mu.Unlock()
	require.Len(t, times, count)

	var steady []time.Time
	for _, at := range times {
		if at.Sub(times[0]) >= time.Second {
			steady = append(steady, at)
		}
	}
	require.GreaterOrEqual(t, len(steady), count/2, "most starts come after the burst")
	rate := float64(len(steady)-1) / steady[len(steady)-1].Sub(steady[0]).Seconds()
	t.Logf("%d starts after the first second at %.2f/s (configured %.0f/s)", len(steady), rate, perSecond)
	assert.InDelta(t, perSecond, rate, perSecond/10)
}
