package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
)

func newAliasCmd(g *globals) *cobra.Command {
	alias := &cobra.Command{Use: "alias", Short: "Email aliases at SimpleLogin"}
	var in contract.AliasLifecycleInput
	create := &cobra.Command{
		Use:   "create <aliasID>",
		Short: "Create an alias for a customer (--customer) or a shadow alias for an email (--email)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.AliasID = args[0]
			if (in.CustomerID == "") == (in.Email == "") {
				return fmt.Errorf("give --customer or --email, not both or neither")
			}
			env, err := g.connect(cmd.Context(), true, true)
			if err != nil {
				return err
			}
			defer env.Close()
			if in.CustomerID != "" {
				if _, err := env.store.GetCustomer(cmd.Context(), in.CustomerID); err != nil {
					return err
				}
			}
			run, err := env.starter.CreateAlias(cmd.Context(), in)
			if err != nil {
				return closedRun(err, "alias "+in.AliasID+" has ended (deleted, expired, or its creation skipped); use a new alias ID", run)
			}
			return printJSON(cmd.OutOrStdout(), run)
		},
	}
	create.Flags().StringVar(&in.CustomerID, "customer", "", "owning customer id")
	create.Flags().StringVar(&in.Email, "email", "", "email of a shadow alias's future owner")
	create.Flags().StringVar(&in.Mode, "mode", "random", "random or custom")
	create.Flags().StringVar(&in.Prefix, "prefix", "", "custom alias prefix")
	create.Flags().StringVar(&in.Hostname, "hostname", "", "website the alias is for")
	alias.AddCommand(create)
	for _, action := range []struct{ name, signal string }{
		{"disable", contract.AliasDisableSignal}, {"enable", contract.AliasEnableSignal},
		{"delete", contract.AliasDeleteSignal}, {"claim", contract.AliasClaimSignal},
	} {
		use, nargs := action.name+" <aliasID>", 1
		if action.name == "claim" {
			use, nargs = "claim <aliasID> <customerID>", 2
		}
		alias.AddCommand(&cobra.Command{
			Use:   use,
			Short: "Send " + action.name + " to the alias's workflow",
			Args:  cobra.ExactArgs(nargs),
			RunE: func(cmd *cobra.Command, args []string) error {
				env, err := g.connect(cmd.Context(), true, nargs == 2)
				if err != nil {
					return err
				}
				defer env.Close()
				c := contract.AliasCommand{EventID: fmt.Sprintf("cli/%s/%d", action.name, time.Now().UnixNano())}
				if nargs == 2 {
					if _, err := env.store.GetCustomer(cmd.Context(), args[1]); err != nil {
						return err
					}
					c.CustomerID = args[1]
				}
				if err := env.starter.SignalAlias(cmd.Context(), args[0], action.signal, c); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s sent to %s\n", action.name, contract.AliasID(args[0]))
				return nil
			},
		})
	}
	return alias
}
