package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/temporalclient"
)

func newMigrateCmd(g *globals) *cobra.Command {
	var temporal bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the PostgreSQL migrations (and, with --temporal, register crmflow's search attributes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(false)
			if err != nil {
				return err
			}
			ctx := signalContext(cmd.Context())
			if err := store.Migrate(ctx, cfg.DatabaseURL.Reveal()); err != nil {
				return fmt.Errorf("migrate postgresql: %w", err)
			}
			status, err := store.MigrationStatus(ctx, cfg.DatabaseURL.Reveal())
			if err != nil {
				return err
			}
			for _, m := range status {
				fmt.Fprintf(cmd.OutOrStdout(), "postgresql migration %05d %-28s applied\n", m.Version, m.Name)
			}
			if !temporal {
				return nil
			}
			logger := newLogger(cfg.LogLevel)
			dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := temporalclient.Dial(dialCtx, cfg, logger, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := temporalclient.RegisterSearchAttributes(dialCtx, c, cfg.Temporal.Namespace); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "temporal search attributes registered in namespace %q\n", cfg.Temporal.Namespace)
			return nil
		},
	}
	cmd.Flags().BoolVar(&temporal, "temporal", false, "also register crmflow's search attributes in the Temporal namespace")
	return cmd
}
