package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/crmflow/crmflow/activities"
)

// BreakerOptions configure how a failing provider's queue is paused.
//
// Circuit breaking is done in Temporal's terms, not in the activities: when
// a provider's activities fail with outage errors (5xx, timeouts, network
// errors, 429) Threshold times in a row, this process stops polling the
// provider's activity task queue. Scheduled attempts and retries then wait in
// the queue — they spend no attempts and park nothing — until, after
// Cooldown, a probe call answers and polling resumes. A long outage is
// waited out the same way, one probe per Cooldown. Other replicas decide for
// themselves from what they see.
type BreakerOptions struct {
	// Threshold is how many outage failures in a row pause the queue; 0
	// never pauses.
	Threshold int
	// Cooldown is how long the queue stays paused before the next probe.
	Cooldown time.Duration
	// Probes are each provider's cheapest authenticated call; it returns nil
	// when the provider answers again. A provider without one resumes after
	// Cooldown and is paused again if it still fails.
	Probes map[string]func(ctx context.Context) error
	// Logger receives pause and resume events (optional).
	Logger *slog.Logger
	// Metrics, when set, receives crmflow_provider_queue_paused and
	// crmflow_provider_queue_pauses_total.
	Metrics prometheus.Registerer
}

// QueueState is one provider queue as /readyz reports it.
type QueueState struct {
	Provider  string `json:"provider"`
	TaskQueue string `json:"task_queue"`
	// Paused is true while this process does not poll the queue.
	Paused bool `json:"paused"`
	// PausedSince is when the current pause began.
	PausedSince *time.Time `json:"paused_since,omitempty"`
	// Failures counts outage failures in a row since the last success.
	Failures int `json:"consecutive_failures"`
	// Pauses counts pauses since the process started.
	Pauses int `json:"pauses"`
}

// providerQueue is one provider's activity worker with its breaker. An SDK
// worker cannot start again once stopped, so resuming builds a new one.
type providerQueue struct {
	provider, queue string
	build           func() sdkworker.Worker
	opts            BreakerOptions
	metrics         *breakerMetrics

	mu          sync.Mutex
	worker      sdkworker.Worker
	failures    int
	paused      bool
	pausedSince time.Time
	pauses      int
	stopped     bool
	done        chan struct{} // closed by stop, ends a pause's wait
}

func newProviderQueue(c client.Client, provider, queue string, acts []any, opts Options) *providerQueue {
	q := &providerQueue{
		provider: provider,
		queue:    queue,
		opts:     opts.Breaker,
		metrics:  newBreakerMetrics(opts.Breaker.Metrics),
		done:     make(chan struct{}),
	}
	// Zero series from the start, so an alert on them sees the provider.
	q.metrics.paused.WithLabelValues(provider).Set(0)
	q.metrics.pauses.WithLabelValues(provider).Add(0)
	limits := opts.Limits[provider]
	interceptors := append([]interceptor.WorkerInterceptor{&breakerInterceptor{q: q}}, opts.Interceptors...)
	q.build = func() sdkworker.Worker {
		w := sdkworker.New(c, queue, sdkworker.Options{
			WorkerStopTimeout:                  opts.StopTimeout,
			TaskQueueActivitiesPerSecond:       limits.PerSecond,
			MaxConcurrentActivityExecutionSize: limits.Concurrency,
			// This queue only carries activities.
			DisableWorkflowWorker: true,
			Interceptors:          interceptors,
			DeploymentOptions:     opts.deployment(),
		})
		for _, a := range acts {
			if a != nil {
				w.RegisterActivity(a)
			}
		}
		return w
	}
	q.worker = q.build()
	return q
}

func (q *providerQueue) start() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.worker.Start()
}

// stop stops polling for good, also ending a pause in progress.
func (q *providerQueue) stop() {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	q.stopped = true
	close(q.done)
	w, paused := q.worker, q.paused
	q.mu.Unlock()
	if !paused {
		w.Stop()
	}
}

func (q *providerQueue) state() QueueState {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := QueueState{Provider: q.provider, TaskQueue: q.queue, Paused: q.paused, Failures: q.failures, Pauses: q.pauses}
	if q.paused {
		since := q.pausedSince
		s.PausedSince = &since
	}
	return s
}

// observe counts an activity's outcome and pauses the queue when outage
// failures reach the threshold.
func (q *providerQueue) observe(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err == nil {
		q.failures = 0
		return
	}
	if !isOutage(err) {
		return
	}
	q.failures++
	if q.opts.Threshold <= 0 || q.failures < q.opts.Threshold || q.paused || q.stopped {
		return
	}
	q.paused = true
	q.pausedSince = time.Now()
	q.pauses++
	q.metrics.paused.WithLabelValues(q.provider).Set(1)
	q.metrics.pauses.WithLabelValues(q.provider).Inc()
	q.log().Warn("Provider failing: pausing its activity queue", "provider", q.provider,
		"taskQueue", q.queue, "failures", q.failures, "cooldown", q.opts.Cooldown)
	// Stop waits for running activities, the caller among them, so the
	// pause runs on its own goroutine.
	go q.pause(q.worker)
}

// pause stops w, then probes after each cooldown until the provider answers
// and polling resumes on a new worker.
func (q *providerQueue) pause(w sdkworker.Worker) {
	w.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-time.After(q.opts.Cooldown):
		}
		if err := q.probe(); err != nil {
			q.log().Warn("Provider still failing: queue stays paused", "provider", q.provider, "error", err)
			continue
		}
		q.mu.Lock()
		if q.stopped {
			q.mu.Unlock()
			return
		}
		next := q.build()
		if err := next.Start(); err != nil {
			q.mu.Unlock()
			q.log().Error("Could not resume provider queue", "provider", q.provider, "error", err)
			continue
		}
		q.worker, q.paused, q.failures = next, false, 0
		q.metrics.paused.WithLabelValues(q.provider).Set(0)
		q.mu.Unlock()
		q.log().Info("Provider answering again: queue resumed", "provider", q.provider, "taskQueue", q.queue)
		return
	}
}

func (q *providerQueue) probe() error {
	p := q.opts.Probes[q.provider]
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p(ctx); err != nil {
		return fmt.Errorf("probe %s: %w", q.provider, err)
	}
	return nil
}

func (q *providerQueue) log() *slog.Logger {
	if q.opts.Logger != nil {
		return q.opts.Logger
	}
	return slog.Default()
}

// isOutage reports whether err says the provider is down or throttling
// rather than that the request was wrong: activities classify those as
// retryable <Provider>Unavailable or <Provider>RateLimited errors.
func isOutage(err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() {
		return false
	}
	return strings.HasSuffix(appErr.Type(), activities.ErrTypeUnavailable) ||
		strings.HasSuffix(appErr.Type(), activities.ErrTypeRateLimited)
}

// breakerInterceptor shows the queue every activity outcome.
type breakerInterceptor struct {
	interceptor.WorkerInterceptorBase
	q *providerQueue
}

func (b *breakerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &breakerActivity{q: b.q}
	i.Next = next
	return i
}

type breakerActivity struct {
	interceptor.ActivityInboundInterceptorBase
	q *providerQueue
}

func (a *breakerActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	out, err := a.Next.ExecuteActivity(ctx, in)
	a.q.observe(err)
	return out, err
}

// breakerMetrics are shared by every queue of a registry; registering twice
// (a second Workers in one process, as tests do) reuses the first.
type breakerMetrics struct {
	paused *prometheus.GaugeVec
	pauses *prometheus.CounterVec
}

func newBreakerMetrics(reg prometheus.Registerer) *breakerMetrics {
	m := &breakerMetrics{
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmflow_provider_queue_paused",
			Help: "1 while this process has paused a failing provider's activity task queue.",
		}, []string{"provider"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmflow_provider_queue_pauses_total",
			Help: "Times a provider's activity task queue was paused because the provider kept failing.",
		}, []string{"provider"}),
	}
	if reg == nil {
		return m
	}
	m.paused = registerOrReuse(reg, m.paused)
	m.pauses = registerOrReuse(reg, m.pauses)
	return m
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	var already prometheus.AlreadyRegisteredError
	if err := reg.Register(c); err != nil {
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
