package sdkmetrics_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/internal/sdkmetrics"
)

// newHandler returns a root handler on a fresh registry, typed as the SDK
// sees it so the tests exercise only the client.MetricsHandler interface.
func newHandler(t *testing.T, opts sdkmetrics.Options) (client.MetricsHandler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return sdkmetrics.New(reg, opts), reg
}

// requireExposition gathers reg and compares everything it exposes with want,
// in the text exposition format. testutil.GatherAndCompare would do, but it
// needs a diff module this module does not require; so want goes through the
// same normalisation (prometheus.Gatherers) and encoder as the real scrape.
func requireExposition(t *testing.T, reg prometheus.Gatherer, want string) {
	t.Helper()
	got, err := reg.Gather()
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(strings.NewReader(want))
	require.NoError(t, err)
	expected, err := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return slices.Collect(maps.Values(parsed)), nil
	})}.Gather()
	require.NoError(t, err)
	assert.Equal(t, encode(t, expected), encode(t, got))
}

// encode renders families in the classic text format.
func encode(t *testing.T, families []*dto.MetricFamily) string {
	t.Helper()
	var b strings.Builder
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		require.NoError(t, enc.Encode(f))
	}
	return b.String()
}

// requireLintClean runs promlint's default checks (what testutil.GatherAndLint
// runs) over everything reg exposes.
func requireLintClean(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestSameNameWithDifferentTagSets(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{Buckets: []float64{0.1, 1}})
	ns := h.WithTags(map[string]string{"namespace": "default"})
	op := ns.WithTags(map[string]string{"operation": "StartWorkflowExecution"})

	ns.Counter("temporal_request").Inc(2)
	op.Counter("temporal_request").Inc(3)
	op.Counter("temporal_request").Inc(1)
	h.Counter("temporal_request").Inc(7)

	ns.Gauge("temporal_num_pollers").Update(1)
	ns.WithTags(map[string]string{"poller_type": "activity_task"}).Gauge("temporal_num_pollers").Update(2)
	ns.WithTags(map[string]string{"poller_type": "activity_task"}).Gauge("temporal_num_pollers").Update(4)

	ns.Timer("temporal_request_latency").Record(50 * time.Millisecond)
	op.Timer("temporal_request_latency").Record(500 * time.Millisecond)
	op.Timer("temporal_request_latency").Record(2 * time.Second)

	_, err := reg.Gather()
	require.NoError(t, err)
	requireExposition(t, reg, `
# HELP temporal_request_total Temporal SDK counter temporal_request.
# TYPE temporal_request_total counter
temporal_request_total 7
temporal_request_total{namespace="default"} 2
temporal_request_total{namespace="default",operation="StartWorkflowExecution"} 4
# HELP temporal_num_pollers Temporal SDK gauge temporal_num_pollers.
# TYPE temporal_num_pollers gauge
temporal_num_pollers{namespace="default"} 1
temporal_num_pollers{namespace="default",poller_type="activity_task"} 4
# HELP temporal_request_latency_seconds Temporal SDK timer temporal_request_latency, in seconds.
# TYPE temporal_request_latency_seconds histogram
temporal_request_latency_seconds_bucket{namespace="default",le="0.1"} 1
temporal_request_latency_seconds_bucket{namespace="default",le="1"} 1
temporal_request_latency_seconds_bucket{namespace="default",le="+Inf"} 1
temporal_request_latency_seconds_sum{namespace="default"} 0.05
temporal_request_latency_seconds_count{namespace="default"} 1
temporal_request_latency_seconds_bucket{namespace="default",operation="StartWorkflowExecution",le="0.1"} 0
temporal_request_latency_seconds_bucket{namespace="default",operation="StartWorkflowExecution",le="1"} 1
temporal_request_latency_seconds_bucket{namespace="default",operation="StartWorkflowExecution",le="+Inf"} 2
temporal_request_latency_seconds_sum{namespace="default",operation="StartWorkflowExecution"} 2.5
temporal_request_latency_seconds_count{namespace="default",operation="StartWorkflowExecution"} 2
`)

	requireLintClean(t, reg)
}

// TestRegistryRejectsOneNameWithTwoVecs pins the premise of the design: the
// checked route (a *Vec per label-key set) cannot serve a name the SDK tags
// in two ways, so the package uses an unchecked collector instead.
func TestRegistryRejectsOneNameWithTwoVecs(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "temporal_request_total", Help: "h"}
	require.NoError(t, reg.Register(prometheus.NewCounterVec(opts, []string{"namespace"})))
	assert.Error(t, reg.Register(prometheus.NewCounterVec(opts, []string{"namespace", "operation"})))
}

func TestWithTagsOverlaysAndRemoves(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{})
	base := h.WithTags(map[string]string{"a": "1", "b": "2"})
	base.WithTags(map[string]string{"b": "3"}).Counter("c").Inc(1)
	base.WithTags(map[string]string{"b": ""}).Counter("c").Inc(10)
	base.WithTags(nil).Counter("c").Inc(100) // no tags: the same handler's series
	base.Counter("c").Inc(1000)

	requireExposition(t, reg, `
# HELP c_total Temporal SDK counter c.
# TYPE c_total counter
c_total{a="1",b="3"} 1
c_total{a="1"} 10
c_total{a="1",b="2"} 1100
`)
}

func TestNamesAndLabelsAreSanitised(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{Namespace: "crmflow", Buckets: []float64{1}})
	tagged := h.WithTags(map[string]string{
		"task.queue": "crmflow",
		"le":         "x",
		"__name__":   "y",
		"0day":       "z",
		"empty":      "",
		"":           "no key",
		"bad_utf8":   "a\xffb",
		// Both become a_b: the key sorting first ("a.b") wins.
		"a.b": "dot",
		"a_b": "underscore",
	})
	tagged.Counter("my.metric-name").Inc(1)
	h.Counter("done_total").Inc(2)
	h.Gauge("1st").Update(3)
	h.Timer("elapsed_seconds").Record(time.Second)

	requireExposition(t, reg, `
# HELP crmflow_my_metric_name_total Temporal SDK counter my.metric-name.
# TYPE crmflow_my_metric_name_total counter
crmflow_my_metric_name_total{_0day="z",a_b="dot",bad_utf8="a�b",tag___name__="y",tag_le="x",task_queue="crmflow"} 1
# HELP crmflow_done_total Temporal SDK counter done_total.
# TYPE crmflow_done_total counter
crmflow_done_total 2
# HELP crmflow__1st Temporal SDK gauge 1st.
# TYPE crmflow__1st gauge
crmflow__1st 3
# HELP crmflow_elapsed_seconds Temporal SDK timer elapsed_seconds, in seconds.
# TYPE crmflow_elapsed_seconds histogram
crmflow_elapsed_seconds_bucket{le="1"} 1
crmflow_elapsed_seconds_bucket{le="+Inf"} 1
crmflow_elapsed_seconds_sum 1
crmflow_elapsed_seconds_count 1
`)
	requireLintClean(t, reg)
}

func TestCollidingNamesAreDroppedNotFatal(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{Buckets: []float64{1}})
	h.Counter("x").Inc(1)
	h.Gauge("x_total").Update(5) // same Prometheus name, other type
	h.Timer("lat").Record(time.Second)
	h.Gauge("lat_seconds_count").Update(6) // would shadow the histogram's _count
	h.Gauge("q_seconds_sum").Update(7)
	h.Timer("q").Record(time.Second) // its _sum would collide with the gauge

	_, err := reg.Gather()
	require.NoError(t, err)
	requireExposition(t, reg, `
# HELP x_total Temporal SDK counter x.
# TYPE x_total counter
x_total 1
# HELP lat_seconds Temporal SDK timer lat, in seconds.
# TYPE lat_seconds histogram
lat_seconds_bucket{le="1"} 1
lat_seconds_bucket{le="+Inf"} 1
lat_seconds_sum 1
lat_seconds_count 1
# HELP q_seconds_sum Temporal SDK gauge q_seconds_sum.
# TYPE q_seconds_sum gauge
q_seconds_sum 7
`)
}

func TestMonotonicCountersAndNonNegativeTimers(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{Buckets: []float64{0.5}})
	h.Counter("c").Inc(3)
	h.Counter("c").Inc(-2)
	h.Counter("c").Inc(0)
	h.Timer("t").Record(-time.Second)

	requireExposition(t, reg, `
# HELP c_total Temporal SDK counter c.
# TYPE c_total counter
c_total 3
# HELP t_seconds Temporal SDK timer t, in seconds.
# TYPE t_seconds histogram
t_seconds_bucket{le="0.5"} 1
t_seconds_bucket{le="+Inf"} 1
t_seconds_sum 0
t_seconds_count 1
`)
}

func TestConcurrentUse(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{Buckets: []float64{0.001}})
	const workers, perWorker = 16, 500
	queues := []string{"q0", "q1", "q2", "q3"}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	scrapes := make(chan error, 1)
	go func() { // scrape while recording, as Prometheus would
		defer close(scrapes)
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := reg.Gather(); err != nil {
					scrapes <- err
					return
				}
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			hq := h.WithTags(map[string]string{"task_queue": queues[w%len(queues)]})
			for i := range perWorker {
				hq.Counter("temporal_request").Inc(1)
				hq.Gauge("temporal_num_pollers").Update(float64(i))
				hq.Timer("temporal_request_latency").Record(time.Millisecond / 2)
			}
		})
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-scrapes)

	want := float64(workers / len(queues) * perWorker)
	for _, q := range queues {
		labels := map[string]string{"task_queue": q}
		assert.Equal(t, want, sample(t, reg, "temporal_request_total", labels).GetCounter().GetValue())
		assert.Equal(t, float64(perWorker-1), sample(t, reg, "temporal_num_pollers", labels).GetGauge().GetValue())
		hist := sample(t, reg, "temporal_request_latency_seconds", labels).GetHistogram()
		assert.Equal(t, uint64(want), hist.GetSampleCount())
		assert.Equal(t, uint64(want), hist.GetBucket()[0].GetCumulativeCount())
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	reg := prometheus.NewRegistry()
	assert.Panics(t, func() { sdkmetrics.New(reg, sdkmetrics.Options{Buckets: []float64{1, 1}}) })
	assert.Panics(t, func() { sdkmetrics.New(reg, sdkmetrics.Options{Namespace: "crm-flow"}) })
}

// TestWorkflowMetricsThroughTheSDK drives the handler from the SDK itself.
// The test workflow environment emits none of the SDK's own worker metrics,
// but it does hand the suite's handler to workflow and activity code, which
// is how crmflow's workflows report business metrics, and it tags the
// activity's handler itself: the series below carries the SDK's tags and
// the activity's own.
func TestWorkflowMetricsThroughTheSDK(t *testing.T) {
	h, reg := newHandler(t, sdkmetrics.Options{Buckets: []float64{1}})
	var suite testsuite.WorkflowTestSuite
	suite.SetMetricsHandler(h)
	env := suite.NewTestWorkflowEnvironment()

	greet := func(ctx context.Context, name string) (string, error) {
		activity.GetMetricsHandler(ctx).
			WithTags(map[string]string{"provider": "console"}).
			Timer("crmflow_test_greet_latency").Record(250 * time.Millisecond)
		return "hello " + name, nil
	}
	wf := func(ctx workflow.Context, name string) (string, error) {
		workflow.GetMetricsHandler(ctx).
			WithTags(map[string]string{"plan": "pro"}).
			Counter("crmflow_test_greetings").Inc(1)
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var out string
		err := workflow.ExecuteActivity(ctx, "Greet", name).Get(ctx, &out)
		return out, err
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "Greeting"})
	env.RegisterActivityWithOptions(greet, activity.RegisterOptions{Name: "Greet"})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: "crmflow"})
	env.ExecuteWorkflow("Greeting", "ada")
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	requireExposition(t, reg, `
# HELP crmflow_test_greetings_total Temporal SDK counter crmflow_test_greetings.
# TYPE crmflow_test_greetings_total counter
crmflow_test_greetings_total{plan="pro"} 1
# HELP crmflow_test_greet_latency_seconds Temporal SDK timer crmflow_test_greet_latency, in seconds.
# TYPE crmflow_test_greet_latency_seconds histogram
crmflow_test_greet_latency_seconds_bucket{activity_type="Greet",provider="console",task_queue="crmflow",workflow_type="Greeting",le="1"} 1
crmflow_test_greet_latency_seconds_bucket{activity_type="Greet",provider="console",task_queue="crmflow",workflow_type="Greeting",le="+Inf"} 1
crmflow_test_greet_latency_seconds_sum{activity_type="Greet",provider="console",task_queue="crmflow",workflow_type="Greeting"} 0.25
crmflow_test_greet_latency_seconds_count{activity_type="Greet",provider="console",task_queue="crmflow",workflow_type="Greeting"} 1
`)
	requireLintClean(t, reg)
}

// sample returns the one sample of family name whose labels include want,
// failing the test unless exactly one matches.
func sample(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	var found []*dto.Metric
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			found = append(found, m)
		}
	}
	require.Len(t, found, 1, "samples of %s with labels %v", name, want)
	return found[0]
}
