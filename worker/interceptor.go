package worker

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/telemetry"
	"github.com/crmflow/crmflow/workflows"
)

// Interceptors are the worker interceptors crmflow runs with: failure
// reports to Sentry when reporter is not nil (no DSN means no interceptor
// and no overhead). Tracing is not among them: its interceptor goes on the
// client (Tracing.ClientInterceptors), and the SDK hands a client's
// interceptors to every worker built from it.
func Interceptors(reporter *telemetry.SentryReporter) []interceptor.WorkerInterceptor {
	if reporter == nil {
		return nil
	}
	return []interceptor.WorkerInterceptor{&sentryInterceptor{reporter: reporter}}
}

// failureReporter is what the interceptor needs of telemetry.SentryReporter.
type failureReporter interface {
	ReportActivityFailure(telemetry.ActivityFailure)
	ReportWorkflowFailure(telemetry.WorkflowFailure)
}

// stepHeader carries the workflow's step to the activities it schedules, so
// an activity's failure report names the step without reading its input.
const stepHeader = "crmflow-step"

// sentryInterceptor reports final activity failures and failed workflow runs.
type sentryInterceptor struct {
	interceptor.WorkerInterceptorBase
	reporter failureReporter
}

func (i *sentryInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &sentryActivity{reporter: i.reporter}
	a.Next = next
	return a
}

func (i *sentryInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	w := &sentryWorkflow{reporter: i.reporter}
	w.Next = next
	return w
}

// sentryActivity reports an activity's failure only when Temporal will not
// retry it, so a transient error that a later attempt gets past sends
// nothing, and an exhausted retry policy sends one event, not one per
// attempt.
type sentryActivity struct {
	interceptor.ActivityInboundInterceptorBase
	reporter failureReporter
}

func (a *sentryActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (result any, err error) {
	defer func() {
		// The SDK turns a panic into a retryable failure of the attempt;
		// report it like one, then let the SDK handle it as before.
		if p := recover(); p != nil {
			a.report(ctx, temporal.NewApplicationError("activity panicked", "Panic"))
			panic(p)
		}
	}()
	result, err = a.Next.ExecuteActivity(ctx, in)
	if err != nil {
		a.report(ctx, err)
	}
	return result, err
}

func (a *sentryActivity) report(ctx context.Context, err error) {
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) || errors.Is(err, context.Canceled) {
		return // the workflow or the worker cancelled it: not a failure
	}
	if appErr, ok := err.(*temporal.ApplicationError); ok && appErr.Category() == temporal.ApplicationErrorCategoryBenign {
		return // expected noise, by the activity's own classification
	}
	info := activity.GetInfo(ctx)
	if !finalFailure(info, err, time.Now()) {
		return
	}
	errType := errorType(err)
	a.reporter.ReportActivityFailure(telemetry.ActivityFailure{
		WorkflowID:   info.WorkflowExecution.ID,
		RunID:        info.WorkflowExecution.RunID,
		WorkflowType: workflowTypeName(info.WorkflowType),
		ActivityType: info.ActivityType.Name,
		Step:         headerStep(ctx),
		Provider:     activityProvider(info.ActivityType.Name, errType, info.TaskQueue),
		Attempt:      info.Attempt,
		ErrorType:    errType,
		Error:        err.Error(),
	})
}

func workflowTypeName(t *workflow.Type) string {
	if t == nil {
		return ""
	}
	return t.Name
}

// finalFailure reports whether Temporal will not retry an attempt that
// failed with err at now: the error is non-retryable (by itself or by the
// policy's NonRetryableErrorTypes), the attempts are spent, or the next try
// would start after the ScheduleToClose deadline. Like the SDK, it looks at
// the returned error itself, not at errors it wraps: Temporal retries a
// wrapped non-retryable error.
func finalFailure(info activity.Info, err error, now time.Time) bool {
	appErr, _ := err.(*temporal.ApplicationError)
	if appErr != nil && appErr.NonRetryable() {
		return true
	}
	rp := info.RetryPolicy
	if rp == nil {
		// An old server that does not say; only non-retryable is certain.
		return false
	}
	if rp.MaximumAttempts > 0 && info.Attempt >= rp.MaximumAttempts {
		return true
	}
	if slices.Contains(rp.NonRetryableErrorTypes, failureType(err)) {
		return true
	}
	if info.ScheduleToCloseTimeout > 0 {
		deadline := info.ScheduledTime.Add(info.ScheduleToCloseTimeout)
		return !now.Add(nextRetryDelay(rp, info.Attempt, appErr)).Before(deadline)
	}
	return false
}

// nextRetryDelay is the wait before the attempt after attempt, as the
// server computes it: the error's NextRetryDelay, else exponential backoff
// from InitialInterval capped at MaximumInterval, with Temporal's defaults
// (1 s, coefficient 2, cap 100 × initial) for unset fields.
func nextRetryDelay(rp *temporal.RetryPolicy, attempt int32, appErr *temporal.ApplicationError) time.Duration {
	if appErr != nil && appErr.NextRetryDelay() > 0 {
		return appErr.NextRetryDelay()
	}
	initial := rp.InitialInterval
	if initial <= 0 {
		initial = time.Second
	}
	coefficient := rp.BackoffCoefficient
	if coefficient < 1 {
		coefficient = 2
	}
	maximum := rp.MaximumInterval
	if maximum <= 0 {
		maximum = 100 * initial
	}
	d := float64(initial) * math.Pow(coefficient, float64(attempt-1))
	if d > float64(maximum) {
		return maximum
	}
	return time.Duration(d)
}

// failureType is the failure type Temporal records for err, which its
// NonRetryableErrorTypes match: an application error's type, else the Go
// type's name, "" for errors.New (as the SDK names them).
func failureType(err error) string {
	if appErr, ok := err.(*temporal.ApplicationError); ok {
		return appErr.Type()
	}
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(errors.New("")).Elem() {
		return ""
	}
	return t.Name()
}

// errorType names err for a report: the type of the first application
// error in its chain (an activity's classified error inside the workflow's
// ActivityError), else its failure type.
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return failureType(err)
}

// headerStep is the step the workflow was on when it scheduled the
// activity, from the header the workflow side of the interceptor set.
func headerStep(ctx context.Context) string {
	p, ok := interceptor.Header(ctx)[stepHeader]
	if !ok {
		return ""
	}
	var step string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &step); err != nil {
		return ""
	}
	return step
}

// providerActivities maps each provider activity's name to its provider,
// from the methods of the provider's activity struct.
var providerActivities = func() map[string]string {
	m := map[string]string{}
	for provider, typ := range map[string]reflect.Type{
		contract.ProviderStripe:      reflect.TypeFor[*activities.StripeActivities](),
		contract.ProviderKnock:       reflect.TypeFor[*activities.KnockActivities](),
		contract.ProviderSimpleLogin: reflect.TypeFor[*activities.SimpleLoginActivities](),
		contract.ProviderResend:      reflect.TypeFor[*activities.ResendActivities](),
	} {
		for i := range typ.NumMethod() {
			m[typ.Method(i).Name] = provider
		}
	}
	return m
}()

// errorKinds are the kind suffixes of activities' error types
// ("<Provider><Kind>", see activities.ErrorType).
var errorKinds = []string{activities.ErrTypeNotFound, activities.ErrTypeInvalid, activities.ErrTypeAuth,
	activities.ErrTypeConflict, activities.ErrTypeRateLimited, activities.ErrTypeUnavailable}

// activityProvider names what an activity was calling: the provider whose
// activity struct defines it, else the provider in its error type
// ("StoreUnavailable" is "store", "TemporalUnavailable" "temporal"), else
// the provider whose task queue ran it.
func activityProvider(activityType, errType, taskQueue string) string {
	if p, ok := providerActivities[activityType]; ok {
		return p
	}
	for _, kind := range errorKinds {
		if p, ok := strings.CutSuffix(errType, kind); ok && p != "" {
			return strings.ToLower(p)
		}
	}
	for _, p := range providers.Queued() {
		if strings.HasSuffix(taskQueue, "-"+p.Name) {
			return p.Name
		}
	}
	return ""
}

// sentryWorkflow reports a workflow run that fails, and installs the
// outbound interceptor that passes the step to activities.
type sentryWorkflow struct {
	interceptor.WorkflowInboundInterceptorBase
	reporter failureReporter
}

func (w *sentryWorkflow) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &stepOutbound{}
	o.Next = outbound
	return w.Next.Init(o)
}

func (w *sentryWorkflow) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	// The recorder goes into the context the workflow runs with, so the
	// step it records is what the outbound interceptor and the failure
	// report below read.
	ctx = workflows.WithStepRecorder(ctx)
	result, err := w.Next.ExecuteWorkflow(ctx, in)
	// A replay re-runs a failure already reported; continue-as-new and
	// cancellation are how runs end on purpose.
	if err == nil || workflow.IsReplaying(ctx) || workflow.IsContinueAsNewError(err) || temporal.IsCanceledError(err) {
		return result, err
	}
	info := workflow.GetInfo(ctx)
	errType := errorType(err)
	provider := ""
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) {
		provider = activityProvider(actErr.ActivityType().GetName(), errType, "")
	}
	w.reporter.ReportWorkflowFailure(telemetry.WorkflowFailure{
		WorkflowID:   info.WorkflowExecution.ID,
		RunID:        info.WorkflowExecution.RunID,
		WorkflowType: info.WorkflowType.Name,
		Step:         workflows.CurrentStep(ctx),
		Provider:     provider,
		Attempt:      info.Attempt,
		ErrorType:    errType,
		Error:        err.Error(),
	})
	return result, err
}

// stepOutbound writes the run's current step into every activity's header.
// Headers are not part of replay's determinism checks, so turning Sentry on
// or off never breaks a running workflow.
type stepOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
}

func (o *stepOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	setStepHeader(ctx)
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *stepOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	setStepHeader(ctx)
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

func setStepHeader(ctx workflow.Context) {
	header := interceptor.WorkflowHeader(ctx)
	step := workflows.CurrentStep(ctx)
	if header == nil || step == "" {
		return
	}
	if p, err := converter.GetDefaultDataConverter().ToPayload(step); err == nil {
		header[stepHeader] = p
	}
}
