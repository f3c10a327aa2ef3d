package callstats

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// recorderAt is a recorder whose clock reads *now.
func recorderAt(now *time.Time) *Recorder {
	r := NewRecorder()
	r.now = func() time.Time { return *now }
	return r
}

func TestQuantileInterpolatesInsideItsBucket(t *testing.T) {
	var b Bucket
	assert.Zero(t, b.Quantile(.95), "no calls, no latency")
	for range 100 {
		b.observe(30 * time.Millisecond) // (25 ms, 50 ms]
	}
	p95 := b.Quantile(.95)
	assert.Greater(t, p95, 25*time.Millisecond)
	assert.LessOrEqual(t, p95, 50*time.Millisecond)
	b.observe(time.Minute)
	assert.Equal(t, 10*time.Second, b.Quantile(.999), "the unbounded bucket reports the last bound")
}

// TestPublishedMinutesAddUpAcrossProcesses: two processes (a serve and a
// worker, say) record calls to the same integrations in the same minutes;
// the table holds their sums, and Read gives the console's windows, bars
// and the latest error whichever process made it.
func TestPublishedMinutesAddUpAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	now := time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)
	earlier := now.Add(-2 * time.Hour)

	clockA, clockB := earlier, now
	a, b := recorderAt(&clockA), recorderAt(&clockB)
	a.Record("knock", 40*time.Millisecond, "")
	a.Record("knock", 40*time.Millisecond, HTTPClass(503))
	clockA = now
	a.Record("knock", 40*time.Millisecond, "")
	b.Record("knock", 400*time.Millisecond, "")
	clockB = now.Add(time.Second)
	b.Record("knock", 20*time.Millisecond, HTTPClass(0))
	b.Note("knock", "KnockUnavailable")
	b.Record(Postgres, time.Millisecond, "")

	for _, r := range []*Recorder{a, b} {
		p := NewPublisher(st.Pool(), r, PublisherOptions{})
		require.NoError(t, p.Flush(ctx))
		assert.Empty(t, r.take(), "published minutes leave the recorder")
	}

	sums, err := Read(ctx, st.Pool(), now.Add(time.Minute))
	require.NoError(t, err)
	k := sums["knock"]
	require.NotNil(t, k)
	assert.Equal(t, Window{Requests: 3, Errors: 1, P95: k.Recent.P95}, k.Recent, "the last 15 minutes")
	assert.Equal(t, int64(5), k.Day.Requests)
	assert.Equal(t, int64(2), k.Day.Errors)
	assert.InDelta(t, 0.4, k.Day.ErrorRate(), 1e-9)
	assert.Greater(t, k.Recent.P95, 250*time.Millisecond, "the slow call is the 95th percentile of three")
	assert.Equal(t, "KnockUnavailable", k.LastErrorClass, "the latest error of either process")
	assert.WithinDuration(t, now.Add(time.Second), k.LastErrorAt, time.Millisecond)
	assert.Equal(t, int64(3), k.Slots[Slots-1].Requests, "this hour's bar")
	assert.Equal(t, int64(2), k.Slots[Slots-3].Requests, "two hours ago")
	assert.Equal(t, int64(1), k.Slots[Slots-3].Errors)
	assert.Nil(t, k.Circuit, "no process reports Knock's queue")
	assert.Equal(t, int64(1), sums[Postgres].Day.Requests)
}

// TestQueueStatesOfLiveProcesses: the console's circuit is every live
// process's breaker: paused when one of them paused, since its earliest
// pause; a stopped process withdraws its rows.
func TestQueueStatesOfLiveProcesses(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	since := time.Now().Add(-3 * time.Minute).UTC().Truncate(time.Microsecond)
	paused := NewPublisher(st.Pool(), NewRecorder(), PublisherOptions{Replica: "worker-1", Queues: func() []QueueState {
		return []QueueState{{Provider: "knock", Paused: true, PausedSince: &since, Pauses: 2}, {Provider: "stripe"}}
	}})
	polling := NewPublisher(st.Pool(), NewRecorder(), PublisherOptions{Replica: "worker-2", Queues: func() []QueueState {
		return []QueueState{{Provider: "knock", Pauses: 1}, {Provider: "stripe"}}
	}})
	require.NoError(t, paused.Flush(ctx))
	require.NoError(t, polling.Flush(ctx))

	sums, err := Read(ctx, st.Pool(), time.Now())
	require.NoError(t, err)
	require.NotNil(t, sums["knock"].Circuit)
	assert.Equal(t, Circuit{Replicas: 2, Paused: 1, PausedSince: sums["knock"].Circuit.PausedSince, Pauses: 3}, *sums["knock"].Circuit)
	require.NotNil(t, sums["knock"].Circuit.PausedSince)
	assert.True(t, since.Equal(*sums["knock"].Circuit.PausedSince))
	assert.Equal(t, Circuit{Replicas: 2}, *sums["stripe"].Circuit)

	// A process that stops withdraws its queues.
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, paused.Run(runCtx))
	sums, err = Read(ctx, st.Pool(), time.Now())
	require.NoError(t, err)
	assert.Equal(t, Circuit{Replicas: 1, Pauses: 1}, *sums["knock"].Circuit)

	// A process that stopped reporting without withdrawing ages out.
	_, err = st.Pool().Exec(ctx, `UPDATE provider_queue_states SET reported_at = now() - interval '2 minutes'`)
	require.NoError(t, err)
	sums, err = Read(ctx, st.Pool(), time.Now())
	require.NoError(t, err)
	assert.Nil(t, sums["knock"], "no live process, no circuit")
}

// TestFailedPublishKeepsTheMinutes: a publish that cannot write keeps
// what it held for the next one.
func TestFailedPublishKeepsTheMinutes(t *testing.T) {
	st := testenv.Store(t)
	r := NewRecorder()
	r.Record("resend", time.Millisecond, "")
	p := NewPublisher(st.Pool(), r, PublisherOptions{})
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, p.Flush(dead))
	r.Record("resend", time.Millisecond, "")
	require.NoError(t, p.Flush(context.Background()))
	sums, err := Read(context.Background(), st.Pool(), time.Now())
	require.NoError(t, err)
	assert.Equal(t, int64(2), sums["resend"].Day.Requests)
}

// TestPostgresTracerCountsQueriesAndFailures runs real queries through a
// traced pool: each is a call, a failed one names its SQLSTATE, and the
// publisher's own (Unmeasured) queries are not counted.
func TestPostgresTracerCountsQueriesAndFailures(t *testing.T) {
	ctx := context.Background()
	r := NewRecorder()
	st, err := store.Open(ctx, testenv.DatabaseURL(t), store.WithTracer(PostgresTracer(r)))
	require.NoError(t, err)
	defer st.Close()
	r.take() // Open's ping

	_, err = st.Pool().Exec(ctx, `SELECT 1`)
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, `SELECT * FROM no_such_table`)
	require.Error(t, err)
	_, err = st.Pool().Exec(Unmeasured(ctx), `SELECT 2`)
	require.NoError(t, err)

	var total Bucket
	for _, b := range r.take() {
		total.Add(*b)
	}
	assert.Equal(t, int64(2), total.Requests)
	assert.Equal(t, int64(1), total.Errors)
	assert.Equal(t, "SQLSTATE 42P01", total.LastErrorClass)
}

// TestTemporalMetricsRecordRequestsAndFailures drives the wrapper as the
// SDK's gRPC interceptor does: tags, then latency, then a failure counter
// tagged with its status code. Long polls are not Temporal requests here.
func TestTemporalMetricsRecordRequestsAndFailures(t *testing.T) {
	r := NewRecorder()
	h := TemporalMetrics(client.MetricsNopHandler, r)
	op := h.WithTags(map[string]string{"operation": "StartWorkflowExecution", "namespace": "default"})
	op.Timer(sdkRequestLatency).Record(5 * time.Millisecond)
	op.Timer(sdkRequestLatency).Record(7 * time.Millisecond)
	op.WithTags(map[string]string{sdkStatusCodeTag: "Unavailable"}).Counter(sdkRequestFailure).Inc(1)
	op.Timer("temporal_long_request_latency").Record(time.Minute)
	op.Counter("temporal_request").Inc(1)

	var total Bucket
	for _, b := range r.take() {
		total.Add(*b)
	}
	assert.Equal(t, int64(2), total.Requests)
	assert.Equal(t, int64(1), total.Errors)
	assert.Equal(t, "Unavailable", total.LastErrorClass)
}

// TestInboundRecordsDeliveries: a refused delivery is a failed call.
func TestInboundRecordsDeliveries(t *testing.T) {
	r := NewRecorder()
	h := Inbound(r, Clerk, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("bad") != "" {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	for _, target := range []string{"/webhooks/clerk", "/webhooks/clerk?bad=1"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, target, nil))
	}
	var total Bucket
	for k, b := range r.take() {
		assert.Equal(t, Clerk, k.provider)
		total.Add(*b)
	}
	assert.Equal(t, int64(2), total.Requests)
	assert.Equal(t, int64(1), total.Errors)
	assert.Equal(t, "HTTP 400", total.LastErrorClass)
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *Recorder
	r.Record("stripe", time.Second, "")
	r.Fail("stripe", "x")
	r.Note("stripe", "x")
}
