package main

import (
	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
)

func newReferralCmd(g *globals) *cobra.Command {
	referral := &cobra.Command{Use: "referral", Short: "Referral rewards"}
	referral.AddCommand(&cobra.Command{
		Use:   "reward <referralID>",
		Short: "Start (or join) the referral's reward for the referred customer's first paid order (backfills)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, true)
			if err != nil {
				return err
			}
			defer env.Close()
			t, err := env.store.BackfillTarget(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			run, err := env.starter.StartReferralReward(cmd.Context(), contract.ReferralRewardInput{
				ReferralID: args[0], OrderID: t.OrderID, ReferredCustomerID: t.ReferredCustomerID,
			})
			if err != nil {
				return closedRun(err, "the reward of referral "+args[0]+" has finished; a referral is rewarded once at most", run)
			}
			return printJSON(cmd.OutOrStdout(), run)
		},
	})
	return referral
}
