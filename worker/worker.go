// Package worker builds crmflow's Temporal client from config, registers the
// workflows and activities on their task queues (one for workflows and the
// database, one per provider), and runs them until shutdown.
package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/workflows"
)

// Dial connects to the Temporal frontend named in cfg. It fails when the
// frontend cannot be reached within ctx, so a misconfigured address is
// reported at start rather than on the first workflow.
//
// Every payload and failure message it writes is encrypted with the master
// key (internal/codec), so no secret reaches a workflow history in clear
// text; operators decode through the codec endpoint.
//
// interceptors apply to the client and to every worker built from it
// (tracing: Tracing.ClientInterceptors).
func Dial(ctx context.Context, cfg *config.Config, logger *slog.Logger, metrics client.MetricsHandler,
	interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	keys, err := Keyring(cfg)
	if err != nil {
		return nil, err
	}
	dc := codec.NewDataConverter(keys)
	tlsConfig, err := TemporalTLS(cfg.Temporal)
	if err != nil {
		return nil, err
	}
	var creds client.Credentials
	if key := cfg.Temporal.APIKey.Reveal(); key != "" {
		creds = client.NewAPIKeyStaticCredentials(key)
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:          cfg.Temporal.Address,
		Namespace:         cfg.Temporal.Namespace,
		Logger:            sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		MetricsHandler:    metrics,
		DataConverter:     dc,
		FailureConverter:  codec.NewFailureConverter(dc),
		Interceptors:      interceptors,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConfig},
		Credentials:       creds,
	})
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", cfg.Temporal.Address, err)
	}
	return c, nil
}

// TemporalTLS is the TLS configuration of the Temporal connection, nil for
// plain gRPC (a local or in-cluster server). A client certificate makes it
// mTLS; a CA file replaces the system's roots.
func TemporalTLS(t config.TemporalConfig) (*tls.Config, error) {
	if !t.UsesTLS() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.TLSServerName}
	if t.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.TLSCertFile, t.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.TLSCAFile != "" {
		pem, err := os.ReadFile(t.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal CA file %s holds no PEM certificate", t.TLSCAFile)
		}
	}
	return c, nil
}

// Keyring is the master key and its predecessors from cfg.
func Keyring(cfg *config.Config) (*credentials.Keyring, error) {
	previous := make([]string, len(cfg.MasterKeyPrevious))
	for i, k := range cfg.MasterKeyPrevious {
		previous[i] = k.Reveal()
	}
	kr, err := credentials.NewKeyring(cfg.MasterKey.Reveal(), previous...)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return kr, nil
}

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
}

// ConfigOptions are the Options cfg asks for: each provider's queue limits,
// the breaker with its probes, and the process's metrics registry.
func ConfigOptions(cfg *config.Config, creds *credentials.Store, acts Activities, logger *slog.Logger,
	metrics prometheus.Registerer) Options {
	limit := func(l config.QueueLimitConfig) QueueLimits {
		return QueueLimits{PerSecond: l.PerSecond, Concurrency: l.Concurrency}
	}
	return Options{
		Activities: acts,
		Limits: map[string]QueueLimits{
			contract.ProviderStripe:      limit(cfg.Limits.Stripe),
			contract.ProviderKnock:       limit(cfg.Limits.Knock),
			contract.ProviderSimpleLogin: limit(cfg.Limits.SimpleLogin),
			contract.ProviderResend:      limit(cfg.Limits.Resend),
		},
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
	a := opts.Activities
	w := &Workers{main: sdkworker.New(c, opts.TaskQueue, sdkworker.Options{
		WorkerStopTimeout: opts.StopTimeout,
		Interceptors:      opts.Interceptors,
	})}
	registerMain(w.main, a)
	byProvider := map[string]any{
		contract.ProviderStripe:      a.Stripe,
		contract.ProviderKnock:       a.Knock,
		contract.ProviderSimpleLogin: a.SimpleLogin,
		contract.ProviderResend:      a.Resend,
	}
	for _, p := range workflows.Providers() {
		w.providers = append(w.providers, newProviderQueue(c, p, contract.ProviderTaskQueue(opts.TaskQueue, p),
			byProvider[p], opts))
	}
	return w
}

// registerMain lists what the workflow task queue runs: every workflow and
// the activities that touch only PostgreSQL or Temporal.
func registerMain(r sdkworker.Registry, a Activities) {
	r.RegisterWorkflowWithOptions(workflows.OrderConfirmation, workflow.RegisterOptions{Name: contract.OrderConfirmationType})
	r.RegisterWorkflowWithOptions(workflows.ReferralReward, workflow.RegisterOptions{Name: contract.ReferralRewardType})
	r.RegisterWorkflowWithOptions(workflows.LowStockAlert, workflow.RegisterOptions{Name: contract.LowStockAlertType})
	r.RegisterWorkflowWithOptions(workflows.InventoryScan, workflow.RegisterOptions{Name: contract.InventoryScanType})
	r.RegisterWorkflowWithOptions(workflows.AliasLifecycle, workflow.RegisterOptions{Name: contract.AliasLifecycleType})
	r.RegisterWorkflowWithOptions(workflows.KeyRotation, workflow.RegisterOptions{Name: contract.KeyRotationType})
	r.RegisterActivity(a.Orders)
	r.RegisterActivity(a.Referrals)
	r.RegisterActivity(a.Inventory)
	r.RegisterActivity(a.Aliases)
	r.RegisterActivity(a.Credentials)
	r.RegisterActivity(a.KeyVerifier)
	r.RegisterActivity(a.DeadLetters)
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

// RegisterSearchAttributes adds crmflow's search attributes to the namespace,
// skipping those already there, so it can run at every start.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range contract.SearchAttributes() {
		have, ok := existing.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return fmt.Errorf("search attribute %s exists with type %s, crmflow needs %s", name, have, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	// Another replica may have added them since we listed: that is success.
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
