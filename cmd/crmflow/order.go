package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/starter"
)

func newOrderCmd(g *globals) *cobra.Command {
	order := &cobra.Command{Use: "order", Short: "Order confirmations"}
	order.AddCommand(&cobra.Command{
		Use:   "confirm <orderID>",
		Short: "Start (or join) the order's confirmation workflow",
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
			if err != nil && !errors.Is(err, starter.ErrAlreadyDone) {
				return err
			}
			return printJSON(cmd.OutOrStdout(), run)
		},
	})
	return order
}
