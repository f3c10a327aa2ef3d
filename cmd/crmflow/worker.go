package main

import (
	"github.com/spf13/cobra"
)

func newWorkerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker against an external Temporal and PostgreSQL (production)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(false)
			if err != nil {
				return err
			}
			logger := newLogger(cfg.LogLevel)
			logger.Info("Starting worker", "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace)
			return ignoreCanceled(run(signalContext(cmd.Context()), cfg, logger, runOptions{Worker: true}))
		},
	}
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
