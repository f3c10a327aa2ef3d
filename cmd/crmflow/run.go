package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/sdkmetrics"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/telemetry"
	"github.com/crmflow/crmflow/internal/temporalclient"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/webhooks"
	"github.com/crmflow/crmflow/worker"
)

// runOptions choose which halves of crmflow a process runs.
type runOptions struct {
	// DatabaseURL overrides the config's (the dev stack's own PostgreSQL).
	DatabaseURL string
	// Worker polls the task queue.
	Worker bool
	// BuildID runs the worker as this build of the Worker Deployment
	// contract.DeploymentName; "" runs it unversioned (crmflow dev, which
	// rebuilds all the time and has nobody to keep an old build running).
	BuildID string
	// PromoteFirst makes BuildID current if the deployment has never had a
	// current version (the first versioned deploy).
	PromoteFirst bool
	// HTTP serves webhooks and the start API and runs the inbox dispatcher;
	// without it only /healthz, /readyz and /metrics are served.
	HTTP bool
	// RegisterSearchAttributes adds crmflow's search attributes at start.
	RegisterSearchAttributes bool
	// OnReady is called once the HTTP server listens, with its address.
	OnReady func(httpAddr string)
	// Stop, when closed, ends the run like a signal does (e.g. the embedded
	// PostgreSQL died).
	Stop <-chan struct{}
}

// run connects to PostgreSQL and Temporal and runs the worker and/or the HTTP
// server until ctx is cancelled. Every process serves /healthz, /readyz and
// /metrics, so a worker-only replica can be probed and scraped too.
func run(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts runOptions) error {
	dbURL := opts.DatabaseURL
	if dbURL == "" {
		dbURL = cfg.DatabaseURL.Reveal()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Tracing (off unless tracing.exporter is set) follows a request from
	// the HTTP server through Temporal into the activities; Sentry (off
	// without a DSN) gets final activity and workflow failures and HTTP
	// panics.
	tracing, err := telemetry.NewTracing(ctx, cfg.Tracing, cfg.Sentry.Release)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
	}()
	reporter, err := telemetry.NewSentryReporter(cfg.Sentry)
	if err != nil {
		return err
	}
	defer reporter.Flush(2 * time.Second)

	tc, err := temporalclient.Dial(dialCtx, cfg, logger, sdkmetrics.New(reg, sdkmetrics.Options{}), tracing.ClientInterceptors()...)
	if err != nil {
		return err
	}
	defer tc.Close()
	if opts.RegisterSearchAttributes {
		if err := temporalclient.RegisterSearchAttributes(dialCtx, tc, cfg.Temporal.Namespace); err != nil {
			return err
		}
	}

	for _, p := range cfg.ConsoleProviders() {
		logger.Warn("Provider in CONSOLE MODE: no API key, calls are recorded, not sent", "provider", p)
	}

	keys, err := credentials.KeyringOf(cfg.MasterKeys())
	if err != nil {
		return err
	}
	creds := credentials.NewStore(st, keys, credentials.Options{})
	if err := creds.SeedAll(ctx, cfg.ConfiguredKeys()); err != nil {
		return err
	}
	if err := creds.SeedTokens(ctx, cfg.ServiceTokens(), cfg.Operators()); err != nil {
		return err
	}
	warnTokenDrift(ctx, cfg, creds, logger)
	starterClient := starter.New(tc, starter.Options{PaymentTimeout: cfg.Orders.PaymentTimeout, ShadowTTL: cfg.Aliases.ShadowTTL})
	g, gctx := errgroup.WithContext(ctx)
	if opts.Stop != nil {
		g.Go(func() error {
			select {
			case <-opts.Stop:
				return fmt.Errorf("a dependency stopped unexpectedly")
			case <-gctx.Done():
				return nil
			}
		})
	}
	// One inbox for the process: the webhooks and the reconciliation's
	// recovered events share its commits.
	ib := inbox.NewStore(st.Pool())
	var reconciled atomic.Pointer[inbox.Dispatcher] // the dispatcher recovered events poke
	var workers *worker.Workers
	if opts.Worker {
		var rep activities.Reporter
		if reporter != nil {
			rep = reporter
		}
		acts := worker.NewActivities(cfg, st, creds, logger, rep, starterClient,
			worker.WithProviderMetrics(appmetrics.NewProviderMetrics(reg)),
			worker.WithRetentionMetrics(appmetrics.NewRetentionMetrics(reg, activities.RetentionTables...)),
			withReconciliation(ib, &reconciled, reg))
		if err := worker.EnsureSchedules(ctx, tc, cfg, ""); err != nil {
			return err
		}
		wopts := worker.ConfigOptions(cfg, creds, acts, logger, reg)
		wopts.Interceptors = worker.Interceptors(reporter)
		wopts.BuildID = opts.BuildID
		workers = worker.New(tc, wopts)
		g.Go(func() error {
			if err := workers.Start(); err != nil {
				return err
			}
			if opts.BuildID != "" {
				reportVersioning(gctx, tc, opts, logger)
			}
			<-gctx.Done()
			workers.Stop()
			return nil
		})
	}
	ops := api.OpsDeps{
		Registry: reg,
		Checks: []api.Check{
			{Name: "postgres", Probe: st.Ping},
			{Name: "temporal", Probe: temporalProbe(tc)},
		},
		ConsoleProviders: cfg.ConsoleProviders(),
	}
	if workers != nil {
		ops.ProviderQueues = func() any { return workers.Queues() }
	}
	// /readyz?verbose=1 (operators only) calls every provider, so its checks
	// run at most every 30 s (Resend allows 2 requests a second).
	ops.Doctor = doctor.Cached((&doctor.Checker{Config: cfg, DatabaseURL: dbURL, Store: st, Temporal: tc,
		Credentials: creds, Timeout: 4 * time.Second}).Run, 30*time.Second)
	ops.Codec = codec.NewHandler(codec.New(keys), api.CodecAuthorizer(creds, devUIOrigins(cfg)), codec.WithAllowedOrigins(cfg.CodecUIOrigins...))
	ops.Auth = creds
	handler := api.HandlerOptions{
		HTTP: httpserver.Options{Logger: logger, Registry: reg, Tracer: tracing.TracerProvider()},
	}
	if reporter != nil {
		handler.HTTP.Panics = reporter
	}
	if opts.HTTP {
		ops.Backlog = ib.Backlog
		dispatcher := inbox.NewDispatcher(ib, st, starterClient, logger, reg, inbox.DispatcherOptions{})
		// The inbox's rows by provider and status, counted at scrape time.
		reg.MustRegister(inbox.NewCountCollector(ib))
		reconciled.Store(dispatcher)
		handler.Webhooks = &webhooks.Deps{
			Logger: logger, Registry: reg, Inbox: ib, Dispatcher: dispatcher,
			Secrets: creds.WebhookSecrets,
			Proofs:  secretProofs(creds, starterClient),
			Options: webhooks.Options{
				StripeSecret: cfg.Stripe.WebhookSecret.Reveal(),
				ClerkSecret:  cfg.Clerk.WebhookSecret.Reveal(),
				Tolerance:    cfg.Webhooks.Tolerance,
				MaxBodyBytes: cfg.Webhooks.MaxBodyBytes,
			},
		}
		handler.API = &api.Deps{
			Logger: logger, Store: st, Starter: starterClient, Inbox: ib, Poke: dispatcher.Poke,
			CoalesceWindow: cfg.Inventory.CoalesceWindow,
			Auth:           creds, TokenSeen: tokenSeen(starterClient, logger), Audit: st,
			Rotations: &api.Rotations{Starter: starterClient, Keys: creds, Audit: st, Logger: logger},
		}
		g.Go(func() error { return dispatcher.Run(gctx) })
	}
	handler.Ops = ops
	ready := make(chan string, 1)
	g.Go(func() error {
		return httpserver.Run(gctx, cfg.HTTPAddr, api.Handler(handler), logger, 10*time.Second, ready)
	})
	g.Go(func() error {
		select {
		case addr := <-ready:
			if opts.OnReady != nil {
				opts.OnReady(addr)
			}
		case <-gctx.Done():
		}
		return nil
	})
	return g.Wait()
}

// reportVersioning says whether this build gets new runs, making it current
// first when asked and the deployment never had a current build. Not
// being current is no error: a new build starts beside the current one and
// waits for `crmflow deploy promote`, running only the runs pinned to it.
func reportVersioning(ctx context.Context, c client.Client, opts runOptions, logger *slog.Logger) {
	log := logger.With("deployment", contract.DeploymentName, "build", opts.BuildID)
	current := ""
	if opts.PromoteFirst {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		var promoted bool
		var err error
		current, promoted, err = worker.PromoteIfFirst(pctx, c, contract.DeploymentName, opts.BuildID)
		switch {
		case err != nil:
			log.Error("Could not read or set the deployment's current build", "error", err)
			return
		case promoted:
			log.Info("First versioned build of the deployment: made it current")
			return
		}
	} else if d, err := worker.DescribeDeployment(ctx, c, contract.DeploymentName); err == nil {
		current = d.Current
	}
	if current == opts.BuildID {
		log.Info("This build is the deployment's current build")
		return
	}
	log.Warn("This build is not current: it runs only runs pinned to it until `crmflow deploy promote "+opts.BuildID+"`",
		"current", current)
}

// temporalProbe checks the frontend answers for our namespace, which is what
// starting and signalling workflows needs.
func temporalProbe(c client.Client) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}
}
