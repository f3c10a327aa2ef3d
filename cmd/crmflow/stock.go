package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
)

func newStockCmd(g *globals) *cobra.Command {
	stock := &cobra.Command{Use: "stock", Short: "Inventory levels"}
	stock.AddCommand(&cobra.Command{
		Use:   "set <sku> <level>",
		Short: "Record a stock level; it reaches the SKU's low-stock workflow through the inbox, coalesced like API updates",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			level, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("level %q is not a whole number", args[1])
			}
			if err := contract.ValidateKey("SKU", args[0]); err != nil {
				return err
			}
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			if _, err := env.store.GetProduct(cmd.Context(), args[0]); err != nil {
				return err
			}
			ev, err := inbox.StockEvent(args[0], level, "", env.cfg.Inventory.CoalesceWindow)
			if err != nil {
				return err
			}
			if _, err := inbox.NewStore(env.store.Pool()).Insert(cmd.Context(), ev); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stock level %d of %s stored as %s; the dispatcher hands it to %s\n",
				level, args[0], ev.EventID, contract.LowStockID(args[0]))
			return nil
		},
	})
	return stock
}
