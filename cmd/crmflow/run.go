package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
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
	var workers *worker.Workers
	if opts.Worker {
		var rep activities.Reporter
		if reporter != nil {
			rep = reporter
		}
		acts := worker.NewActivities(cfg, st, creds, logger, rep, starterClient,
			worker.WithProviderMetrics(appmetrics.NewProviderMetrics(reg)))
		if err := worker.EnsureSchedules(ctx, tc, cfg, ""); err != nil {
			return err
		}
		wopts := worker.ConfigOptions(cfg, creds, acts, logger, reg)
		wopts.Interceptors = worker.Interceptors(reporter)
		workers = worker.New(tc, wopts)
		g.Go(func() error {
			if err := workers.Start(); err != nil {
				return err
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
	// /readyz?verbose=1 is unauthenticated and calls every provider, so its
	// checks run at most every 30 s (Resend allows 2 requests a second).
	ops.Doctor = doctor.Cached((&doctor.Checker{Config: cfg, DatabaseURL: dbURL, Store: st, Temporal: tc,
		Credentials: creds, Timeout: 4 * time.Second}).Run, 30*time.Second)
	ops.Codec = codec.NewHandler(codec.New(keys), codecAuthorizer(cfg, creds), codec.WithAllowedOrigins(cfg.CodecUIOrigins...))
	handler := api.HandlerOptions{
		HTTP: httpserver.Options{Logger: logger, Registry: reg, Tracer: tracing.TracerProvider()},
	}
	if reporter != nil {
		handler.HTTP.Panics = reporter
	}
	if opts.HTTP {
		ib := inbox.NewStore(st.Pool())
		ops.Backlog = ib.Backlog
		dispatcher := inbox.NewDispatcher(ib, st, starterClient, logger, reg, inbox.DispatcherOptions{})
		handler.Webhooks = &webhooks.Deps{
			Logger: logger, Registry: reg, Inbox: ib, Dispatcher: dispatcher, Referrals: st,
			Secrets: creds.WebhookSecrets,
			Options: webhooks.Options{
				StripeSecret: cfg.Stripe.WebhookSecret.Reveal(),
				ClerkSecret:  cfg.Clerk.WebhookSecret.Reveal(),
				Tolerance:    cfg.Webhooks.Tolerance,
				MaxBodyBytes: cfg.Webhooks.MaxBodyBytes,
			},
		}
		handler.API = &api.Deps{
			Logger: logger, Store: st, Starter: starterClient, Inbox: ib,
			CoalesceWindow: cfg.Inventory.CoalesceWindow,
			Tokens:         apiTokens(cfg, creds),
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

// codecAuthorizer lets operators with a start-API token decode payloads. In
// dev the embedded Temporal UI, which cannot send crmflow's token, is let in
// by its origin too; that is a browser-enforced check, fit for a laptop
// only, so production requires the token (temporal CLI: --codec-auth).
func codecAuthorizer(cfg *config.Config, creds *credentials.Store) func(*http.Request) bool {
	static := revealAll(cfg.APITokens)
	stored := creds.Tokens
	bearer := codec.BearerAuthorizer(func(ctx context.Context) ([]string, error) {
		tokens, err := stored(ctx)
		return append(tokens, static...), err
	})
	return func(r *http.Request) bool {
		if bearer(r) {
			return true
		}
		return cfg.DevMode && slices.Contains(cfg.CodecUIOrigins, r.Header.Get("Origin"))
	}
}

// apiTokens are the bearer tokens the API accepts now. The first configured
// token seeds the credential store, which is what counts from then on (key
// rotation replaces it there); further configured tokens are accepted as
// they are.
func apiTokens(cfg *config.Config, creds *credentials.Store) func(ctx context.Context) ([]string, error) {
	var static []string
	if len(cfg.APITokens) > 1 {
		static = revealAll(cfg.APITokens[1:])
	}
	stored := creds.Tokens
	return func(ctx context.Context) ([]string, error) {
		tokens, err := stored(ctx)
		if err != nil {
			return nil, err
		}
		return append(append([]string(nil), static...), tokens...), nil
	}
}

func revealAll(secrets []config.Secret) []string {
	out := make([]string, len(secrets))
	for i, s := range secrets {
		out[i] = s.Reveal()
	}
	return out
}

// temporalProbe checks the frontend answers for our namespace, which is what
// starting and signalling workflows needs.
func temporalProbe(c client.Client) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}
}
