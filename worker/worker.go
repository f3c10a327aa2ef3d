// Package worker registers crmflow's workflows and activities on their task
// queues (one for workflows and the database, one per provider with that
// provider's rate limit and breaker), with the Sentry interceptor, creates
// the Schedules, and runs the workers until shutdown.
//
// worker may import workflows, activities, starter, contract, config and
// internal/ libraries; never the HTTP rooms (api, webhooks, inbox).
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/callstats"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/workflows"
)

// Options configures New and Run.
type Options struct {
	// Activities are the activity structs with their injected clients.
	Activities Activities
	// TaskQueue defaults to workflows.TaskQueue; tests give each worker its
	// own. Provider activities run on workflows.ProviderTaskQueue(TaskQueue, p).
	TaskQueue string
	// StopTimeout bounds how long running activities get to finish on shutdown.
	StopTimeout time.Duration
	// Limits bound each provider's activity queue (by workflows.Provider*);
	// a provider not listed runs without a rate limit.
	Limits map[string]QueueLimits
	// Breaker pauses a failing provider's queue; the zero value never pauses.
	Breaker BreakerOptions
	// Interceptors run on every worker of the process (Sentry, tracing).
	Interceptors []interceptor.WorkerInterceptor
	// BuildID, when set, runs every worker of the process (the workflow
	// queue and each provider queue) as this version of the Worker
	// Deployment DeploymentName: Temporal then routes a Pinned run's tasks
	// only to the build it started on, and an AutoUpgrade run's to the
	// deployment's current version. Empty runs unversioned, as `crmflow dev`
	// and most tests do.
	BuildID string
	// DeploymentName defaults to contract.DeploymentName; tests give each
	// their own.
	DeploymentName string

	// wrapWorkflows lets this package's tests register a second build's
	// functions under the production names and behaviours.
	wrapWorkflows func(sdkworker.WorkflowRegistry) sdkworker.WorkflowRegistry
}

// ConfigOptions are the Options cfg asks for: each provider's queue limits,
// the breaker with its probes, and the process's metrics registry.
func ConfigOptions(cfg *config.Config, creds *credentials.Store, acts Activities, logger *slog.Logger,
	metrics prometheus.Registerer) Options {
	limits := map[string]QueueLimits{}
	for _, p := range providers.Queued() {
		l := cfg.QueueLimitsAt("limits." + p.Name)
		limits[p.Name] = QueueLimits{PerSecond: l.PerSecond, Concurrency: l.Concurrency}
	}
	return Options{
		Activities: acts,
		Limits:     limits,
		Breaker: BreakerOptions{
			Threshold: cfg.Breaker.Threshold,
			Cooldown:  cfg.Breaker.Cooldown,
			Probes:    ProviderProbes(cfg, creds),
			Logger:    logger.With("component", "breaker"),
			Metrics:   metrics,
		},
	}
}

// QueueLimits bound one provider's activity task queue.
type QueueLimits struct {
	// PerSecond is how many of the queue's activities Temporal starts per
	// second across every worker replica (0: no limit). Temporal enforces it
	// at the task queue, so it holds however many replicas poll.
	PerSecond float64
	// Concurrency bounds the activities one worker runs at once (0: the SDK's
	// default).
	Concurrency int
}

// Workers are one process's Temporal workers: one on the workflow task
// queue (workflows and database activities) and one per provider activity
// queue, each with that provider's limits and breaker.
type Workers struct {
	main      sdkworker.Worker
	providers []*providerQueue
}

// New builds the process's workers with every workflow and activity
// registered on its queue. Nothing polls until Start.
func New(c client.Client, opts Options) *Workers {
	if opts.TaskQueue == "" {
		opts.TaskQueue = contract.TaskQueue
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.DeploymentName == "" {
		opts.DeploymentName = contract.DeploymentName
	}
	a := opts.Activities
	w := &Workers{main: sdkworker.New(c, opts.TaskQueue, sdkworker.Options{
		WorkerStopTimeout: opts.StopTimeout,
		Interceptors:      opts.Interceptors,
		DeploymentOptions: opts.deployment(),
	})}
	var workflowRegistry sdkworker.WorkflowRegistry = w.main
	if opts.wrapWorkflows != nil {
		workflowRegistry = opts.wrapWorkflows(w.main)
	}
	RegisterWorkflows(workflowRegistry)
	registerActivities(w.main, a)
	byProvider := map[string][]any{
		// Reconciliation lists Stripe's events: it shares Stripe's rate
		// limit and breaker.
		contract.ProviderStripe:      {a.Stripe, a.Reconcile},
		contract.ProviderKnock:       {a.Knock},
		contract.ProviderSimpleLogin: {a.SimpleLogin},
		// Transactional email is Resend's too: its queue, limit and breaker.
		contract.ProviderResend: {a.Resend, a.Email},
	}
	for _, p := range providers.Queued() {
		w.providers = append(w.providers, newProviderQueue(c, p.Name, contract.ProviderTaskQueue(opts.TaskQueue, p.Name),
			byProvider[p.Name], opts))
	}
	return w
}

// The two ways a workflow type moves when a new build becomes current.
//
// Pinned runs stay on the build they started on until they end, so they
// may change freely between builds; they are the bounded workflows, which
// end within a deploy's drain time (the old build keeps running until
// `crmflow deploy status` shows it drained). AutoUpgrade runs move to the
// current build at their next workflow task, so the new code replays their
// history: they are the long-lived entities, and they change only behind
// workflow.GetVersion (the replay corpus in workflows/testdata/histories
// checks it).
const (
	pinned      = workflow.VersioningBehaviorPinned
	autoUpgrade = workflow.VersioningBehaviorAutoUpgrade
)

// RegisterWorkflows registers every workflow under its contract name with
// its versioning behaviour. The worker's task queue and the replay tests
// both register through it, so replay checks exactly what the worker runs.
// A workflow added here needs a behaviour (TestEveryWorkflowDeclaresAVersioningBehavior).
func RegisterWorkflows(r sdkworker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(workflows.OrderConfirmation, workflow.RegisterOptions{Name: contract.OrderConfirmationType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.ReferralReward, workflow.RegisterOptions{Name: contract.ReferralRewardType, VersioningBehavior: autoUpgrade})
	r.RegisterWorkflowWithOptions(workflows.OrderRefund, workflow.RegisterOptions{Name: contract.OrderRefundType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.LowStockAlert, workflow.RegisterOptions{Name: contract.LowStockAlertType, VersioningBehavior: autoUpgrade})
	r.RegisterWorkflowWithOptions(workflows.InventoryScan, workflow.RegisterOptions{Name: contract.InventoryScanType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.AliasLifecycle, workflow.RegisterOptions{Name: contract.AliasLifecycleType, VersioningBehavior: autoUpgrade})
	r.RegisterWorkflowWithOptions(workflows.KeyRotation, workflow.RegisterOptions{Name: contract.KeyRotationType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.KeyRotationTrigger, workflow.RegisterOptions{Name: contract.KeyRotationTriggerType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.DataRetention, workflow.RegisterOptions{Name: contract.DataRetentionType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.StripeReconcile, workflow.RegisterOptions{Name: contract.StripeReconcileType, VersioningBehavior: pinned})
	// One alert, or an operator's decision on it: bounded.
	r.RegisterWorkflowWithOptions(workflows.EmailComplaint, workflow.RegisterOptions{Name: contract.EmailComplaintType, VersioningBehavior: pinned})
	r.RegisterWorkflowWithOptions(workflows.UserLifecycle, workflow.RegisterOptions{Name: contract.UserLifecycleType, VersioningBehavior: autoUpgrade})
}

// registerActivities lists the activities the workflow task queue runs:
// those that touch only PostgreSQL or Temporal.
func registerActivities(r sdkworker.ActivityRegistry, a Activities) {
	r.RegisterActivity(a.Orders)
	r.RegisterActivity(a.Referrals)
	r.RegisterActivity(a.Inventory)
	r.RegisterActivity(a.Aliases)
	r.RegisterActivity(a.Credentials)
	r.RegisterActivity(a.KeyVerifier)
	r.RegisterActivity(a.DeadLetters)
	r.RegisterActivity(a.Receipts)
	r.RegisterActivity(a.Users)
	r.RegisterActivity(a.Retention)
	r.RegisterActivity(a.RotationTrigger)
}

// deployment is the Worker Versioning options every worker of the process
// shares, so a build's workflows and the activities they schedule on the
// provider queues run on that same build. No default behaviour: each
// workflow declares its own in RegisterWorkflows.
func (o Options) deployment() sdkworker.DeploymentOptions {
	if o.BuildID == "" {
		return sdkworker.DeploymentOptions{}
	}
	return sdkworker.DeploymentOptions{
		UseVersioning: true,
		Version:       sdkworker.WorkerDeploymentVersion{DeploymentName: o.DeploymentName, BuildID: o.BuildID},
	}
}

// Start starts every worker; on an error the ones started are stopped.
func (w *Workers) Start() error {
	if err := w.main.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	for i, q := range w.providers {
		if err := q.start(); err != nil {
			for _, started := range w.providers[:i] {
				started.stop()
			}
			w.main.Stop()
			return fmt.Errorf("start %s worker: %w", q.provider, err)
		}
	}
	return nil
}

// Stop stops every worker, letting running activities finish within the
// stop timeout.
func (w *Workers) Stop() {
	var wg sync.WaitGroup
	for _, q := range w.providers {
		wg.Add(1)
		go func() { defer wg.Done(); q.stop() }()
	}
	w.main.Stop()
	wg.Wait()
}

// Run starts the workers, waits for interruptCh, then stops them.
func (w *Workers) Run(interruptCh <-chan interface{}) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-interruptCh
	w.Stop()
	return nil
}

// Queues reports each provider queue's state, for /readyz.
func (w *Workers) Queues() []QueueState {
	out := make([]QueueState, 0, len(w.providers))
	for _, q := range w.providers {
		out = append(out, q.state())
	}
	return out
}

// CallStatsQueues is Queues as the console's call statistics publish them
// (callstats.PublisherOptions.Queues).
func (w *Workers) CallStatsQueues() []callstats.QueueState {
	qs := w.Queues()
	out := make([]callstats.QueueState, 0, len(qs))
	for _, q := range qs {
		out = append(out, callstats.QueueState{Provider: q.Provider, Paused: q.Paused, PausedSince: q.PausedSince,
			Pauses: q.Pauses, Failures: q.Failures})
	}
	return out
}

// Run runs the workers until ctx is cancelled, then stops them gracefully.
func Run(ctx context.Context, c client.Client, opts Options) error {
	w := New(c, opts)
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
