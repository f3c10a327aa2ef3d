package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/starter"
)

func newOrderCmd(g *globals) *cobra.Command {
	order := &cobra.Command{Use: "order", Short: "Order confirmations"}
	order.AddCommand(&cobra.Command{
		Use:   "confirm <orderID>",
		Short: "Start (or join) the order's confirmation workflow; fails once it has finished",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, true)
			if err != nil {
				return err
			}
			defer env.Close()
			if _, err := env.store.GetOrder(cmd.Context(), args[0]); err != nil {
				return err
			}
			run, err := env.starter.StartOrderConfirmation(cmd.Context(), args[0])
			if err != nil {
				return closedRun(err, "the confirmation of order "+args[0]+" has finished", run)
			}
			return printJSON(cmd.OutOrStdout(), run)
		},
	})
	return order
}

// closedRun says, as the API's 409 does, that a start found its business
// key's run ended and did not start it again (starter.ErrAlreadyDone): what
// ended, and which run, whose outcome `crmflow status` shows. Any other
// error is returned as it is.
func closedRun(err error, what string, run starter.Run) error {
	if !errors.Is(err, starter.ErrAlreadyDone) {
		return err
	}
	return fmt.Errorf("%s (workflow %s, run %s); it is not started again: see `crmflow status %s`",
		what, run.WorkflowID, run.RunID, run.WorkflowID)
}
