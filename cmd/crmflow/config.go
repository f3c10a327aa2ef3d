package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newConfigCmd(g *globals) *cobra.Command {
	var dev bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the resolved configuration with every secret redacted; exit non-zero if it is invalid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(dev)
			if cfg != nil {
				out, rerr := cfg.Redacted()
				if rerr != nil {
					return rerr
				}
				fmt.Fprint(cmd.OutOrStdout(), out)
				if len(cfg.ConsoleProviders()) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "# console mode (no API key): %s\n", strings.Join(cfg.ConsoleProviders(), ", "))
				}
			}
			if err != nil {
				fmt.Fprintln(os.Stderr)
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "resolve as `crmflow dev` would (dev secrets filled in, no database URL needed)")
	return cmd
}
