package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
)

// Values of `crmflow worker --promote`.
const (
	promoteFirst = "first"
	promoteNever = "never"
)

func newWorkerCmd(g *globals) *cobra.Command {
	var promote string
	var unversioned bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker against an external Temporal and PostgreSQL (production)",
		Long: `Run the Temporal worker. It joins the Worker Deployment "crmflow" as the build
"crmflow version" prints: Temporal sends it new runs once that build is current
("crmflow deploy promote"), and the runs pinned to it until they end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if promote != promoteFirst && promote != promoteNever {
				return fmt.Errorf("--promote is %q or %q, not %q", promoteFirst, promoteNever, promote)
			}
			opts := runOptions{Worker: true}
			if !unversioned {
				opts.BuildID = binaryVersion()
				if opts.BuildID == unknownVersion {
					// Every unstamped build would claim the same build id,
					// and Temporal would pin runs to code that differs.
					return fmt.Errorf("this binary does not know its version, which is its build id in Worker Versioning: " +
						"build it with `make build` (or -ldflags \"-X main.version=…\"), or run with --unversioned")
				}
				opts.PromoteFirst = promote == promoteFirst
			}
			cfg, err := g.load(false)
			if err != nil {
				return err
			}
			logger := newLogger(cfg.LogLevel)
			logger.Info("Starting worker", "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace,
				"deployment", contract.DeploymentName, "build", opts.BuildID)
			return ignoreCanceled(run(signalContext(cmd.Context()), cfg, logger, opts))
		},
	}
	cmd.Flags().StringVar(&promote, "promote", promoteFirst, "first: make this build current if the deployment has never had a current version; "+
		"never: leave every promotion to `crmflow deploy promote`")
	cmd.Flags().BoolVar(&unversioned, "unversioned", false, "run without Worker Versioning: any run's task goes to any worker")
	return cmd
}

func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP server (webhooks, start API, health, metrics) against an external Temporal and PostgreSQL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(false)
			if err != nil {
				return err
			}
			logger := newLogger(cfg.LogLevel)
			logger.Info("Starting HTTP server", "addr", cfg.HTTPAddr, "temporal", cfg.Temporal.Address)
			return ignoreCanceled(run(signalContext(cmd.Context()), cfg, logger, runOptions{HTTP: true}))
		},
	}
}
