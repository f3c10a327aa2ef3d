package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/devstack"
	"github.com/crmflow/crmflow/internal/store"
)

func newDevCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack in one process tree: Temporal + UI, PostgreSQL, migrations, worker and HTTP server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(true)
			if err != nil {
				return err
			}
			return ignoreCanceled(runDev(signalContext(cmd.Context()), cfg, cmd.OutOrStdout()))
		},
	}
}

// runDev starts the dev stack, runs crmflow on it until ctx is cancelled,
// then stops everything in reverse order.
func runDev(ctx context.Context, cfg *config.Config, out io.Writer) error {
	logger := newLogger(cfg.LogLevel)
	started := time.Now()
	stack, err := devstack.Start(ctx, devstack.Options{
		DataDir:          cfg.Dev.DataDir,
		DatabaseURL:      cfg.DatabaseURL.Reveal(),
		PostgresPort:     cfg.Dev.PostgresPort,
		TemporalAddr:     cfg.Temporal.Address,
		UIAddr:           cfg.Dev.UIAddr,
		UICodecEndpoint:  "http://" + cfg.HTTPAddr + "/codec",
		Namespace:        cfg.Temporal.Namespace,
		SearchAttributes: contract.SearchAttributes(),
		Logger:           logger,
	})
	if err != nil {
		return err
	}
	defer func() {
		logger.Info("Stopping the dev stack")
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := stack.Stop(stopCtx); err != nil {
			logger.Error("Dev stack did not stop cleanly", "error", err)
		}
	}()
	if err := store.Migrate(ctx, stack.DatabaseURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// The dev worker runs unversioned (no BuildID): dev rebuilds all the
	// time and runs one worker, so a versioned dev worker would strand every
	// Pinned run of the build before (an order awaiting its payment) with no
	// worker of that build left, or need a promotion after every rebuild.
	// Unversioned, the next build picks up every run, as before Worker
	// Versioning; the replay corpus checks that the code still replays them.
	return run(ctx, cfg, logger, runOptions{
		DatabaseURL:              stack.DatabaseURL,
		Worker:                   true,
		HTTP:                     true,
		RegisterSearchAttributes: true,
		Stop:                     stack.PostgresExited(),
		OnReady: func(httpAddr string) {
			printBanner(out, cfg, stack, httpAddr, time.Since(started))
		},
	})
}

// printBanner tells the developer where everything is. The secrets it prints
// are the documented dev defaults only; configured secrets stay redacted.
func printBanner(out io.Writer, cfg *config.Config, stack *devstack.Stack, httpAddr string, took time.Duration) {
	devOnly := func(s config.Secret, devDefault string) string {
		if s.Reveal() == devDefault {
			return devDefault + "  (dev default)"
		}
		return s.String() + "  (configured)"
	}
	token := config.Secret("")
	if len(cfg.APITokens) > 0 {
		token = cfg.APITokens[0]
	}
	operator := "(none configured)"
	for name, tok := range cfg.Operators() {
		operator = name + ": " + devOnly(config.Secret(tok), config.DevOperatorToken)
		break // the banner names one; `crmflow config` lists them all
	}
	console := strings.Join(cfg.ConsoleProviders(), ", ")
	if console == "" {
		console = "none"
	}
	fmt.Fprintf(out, `
crmflow dev is up (%s)
  Temporal UI        http://%s/namespaces/%s/workflows
  Temporal frontend  %s   (namespace %q, task queue %q)
  crmflow HTTP       http://%s   (/healthz /readyz /metrics)
  PostgreSQL         %s
  Start API token    %s
  Operator token     %s
  Stripe webhook     %s
  Clerk webhook      %s
  Console mode       %s
  Worker Versioning  off: the dev worker (build %s) is unversioned and runs every run
Data lives in %s; Ctrl-C stops everything, and the next run resumes.
`, took.Round(time.Millisecond), stack.UIAddr, cfg.Temporal.Namespace, stack.TemporalAddr, cfg.Temporal.Namespace,
		contract.TaskQueue, httpAddr, redactURL(stack.DatabaseURL),
		devOnly(token, config.DevAPIToken), operator,
		devOnly(cfg.Stripe.WebhookSecret, config.DevStripeWebhookSecret),
		devOnly(cfg.Clerk.WebhookSecret, config.DevClerkWebhookSecret),
		console, binaryVersion(), cfg.Dev.DataDir)
	if f, ok := out.(*os.File); ok {
		_ = f.Sync()
	}
}

// redactURL hides a password in a database URL.
func redactURL(u string) string {
	if at := strings.LastIndex(u, "@"); at > 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			creds := u[scheme+3 : at]
			if user, _, hasPass := strings.Cut(creds, ":"); hasPass {
				return u[:scheme+3] + user + ":[redacted]" + u[at:]
			}
		}
	}
	return u
}
