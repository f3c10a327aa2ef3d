package main

import (
	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status <workflowID>",
		Short: "Print a workflow's status query answer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, false)
			if err != nil {
				return err
			}
			defer env.Close()
			st, err := env.starter.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), st)
		},
	}
}
