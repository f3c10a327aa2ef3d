package callstats

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// TemporalMetrics wraps the client's metrics handler so every Temporal
// request (long polls apart) is also recorded as a call to Temporal, from
// the SDK's own temporal_request_latency and temporal_request_failure.
func TemporalMetrics(next client.MetricsHandler, r *Recorder) client.MetricsHandler {
	return temporalTee{next: next, r: r}
}

// Names of the SDK metrics TemporalMetrics reads.
const (
	sdkRequestLatency = "temporal_request_latency"
	sdkRequestFailure = "temporal_request_failure"
	sdkStatusCodeTag  = "status_code"
)

type temporalTee struct {
	next client.MetricsHandler
	r    *Recorder
	code string
}

// WithTags implements client.MetricsHandler.
func (h temporalTee) WithTags(tags map[string]string) client.MetricsHandler {
	out := temporalTee{next: h.next.WithTags(tags), r: h.r, code: h.code}
	if c, ok := tags[sdkStatusCodeTag]; ok {
		out.code = c
	}
	return out
}

// Counter implements client.MetricsHandler.
func (h temporalTee) Counter(name string) client.MetricsCounter {
	c := h.next.Counter(name)
	if name != sdkRequestFailure {
		return c
	}
	class := h.code
	if class == "" {
		class = "failed"
	}
	return counterFunc(func(n int64) {
		c.Inc(n)
		for range n {
			h.r.Fail(Temporal, class)
		}
	})
}

// Gauge implements client.MetricsHandler.
func (h temporalTee) Gauge(name string) client.MetricsGauge { return h.next.Gauge(name) }

// Timer implements client.MetricsHandler.
func (h temporalTee) Timer(name string) client.MetricsTimer {
	t := h.next.Timer(name)
	if name != sdkRequestLatency {
		return t
	}
	return timerFunc(func(d time.Duration) {
		t.Record(d)
		h.r.Record(Temporal, d, "")
	})
}

// Unwrap returns the wrapped handler.
func (h temporalTee) Unwrap() client.MetricsHandler { return h.next }

type counterFunc func(int64)

func (f counterFunc) Inc(n int64) { f(n) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// ActivityErrors is a worker interceptor that notes each failed activity's
// error type as its provider's last error ("KnockUnauthorized" says more
// than "HTTP 401"). The provider is the one whose activity task queue ran
// it ("<queue>-<provider>", of providers); other activities are not noted.
func ActivityErrors(r *Recorder, providers []string) interceptor.WorkerInterceptor {
	return &activityErrors{r: r, providers: providers}
}

type activityErrors struct {
	interceptor.WorkerInterceptorBase
	r         *Recorder
	providers []string
}

func (a *activityErrors) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityErrorsInbound{a: a}
	i.Next = next
	return i
}

type activityErrorsInbound struct {
	interceptor.ActivityInboundInterceptorBase
	a *activityErrors
}

func (i *activityErrorsInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	out, err := i.Next.ExecuteActivity(ctx, in)
	if err == nil || errors.Is(err, context.Canceled) {
		return out, err
	}
	queue := activity.GetInfo(ctx).TaskQueue
	for _, p := range i.a.providers {
		if strings.HasSuffix(queue, "-"+p) {
			i.a.r.Note(p, errorType(err))
			break
		}
	}
	return out, err
}

// errorType is an activity error's stable type name, or "error".
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		return appErr.Type()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "Timeout"
	}
	return "error"
}
