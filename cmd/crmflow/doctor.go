package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/doctor"
)

// newDoctorCmd checks everything crmflow needs, one line per check, and
// fails when anything needs fixing, so it fits a deploy step or a cron job.
func newDoctorCmd(g *globals) *cobra.Command {
	var (
		dev     bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check config, PostgreSQL, Temporal and every provider key; exit 1 when anything needs fixing",
		Long: `Checks, one line each, with what to fix:
  config             every key valid
  postgres           reachable, migrated to the latest version
  temporal           frontend reachable, namespace registered
  search-attributes  crmflow's search attributes registered
  schedules          inventory-scan and key-rotation-<provider> present
  stripe, knock, simplelogin, resend
                     the active key (credential store, else config) accepted
                     by the provider's cheapest authenticated call; a
                     provider with no key is in console mode, not a failure
No secret is ever printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(dev)
			// An invalid configuration is the config check's to report; the
			// other checks go on with what could be read.
			if err != nil && !config.IsValidation(err) {
				return err
			}
			checker := &doctor.Checker{Config: cfg, Timeout: timeout}
			if dev && cfg.DatabaseURL == "" {
				checker.DatabaseURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/crmflow?sslmode=disable", cfg.Dev.PostgresPort)
			}
			results := checker.Run(signalContext(cmd.Context()))
			if err := doctor.Write(cmd.OutOrStdout(), results); err != nil {
				return err
			}
			if n := doctor.Failed(results); n > 0 {
				return fmt.Errorf("doctor: %d of %d checks failed", n, len(results))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "check the `crmflow dev` stack: its dev defaults and its PostgreSQL")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "bound of each check")
	return cmd
}
