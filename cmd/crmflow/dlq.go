package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

func newDLQCmd(g *globals) *cobra.Command {
	dlq := &cobra.Command{Use: "dlq", Short: "Dead letters: steps parked for an operator"}
	var status string
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters (default: parked ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			list, err := env.store.ListDeadLetters(cmd.Context(), status, 500)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-6s %-9s %-40s %-22s %s\n", "ID", "STATUS", "WORKFLOW", "STEP", "ERROR")
			for _, d := range list {
				fmt.Fprintf(w, "%-6d %-9s %-40s %-22s %s: %s\n", d.ID, d.Status, d.WorkflowID, d.Step, d.ErrorType, d.Error)
			}
			return nil
		},
	}
	list.Flags().StringVar(&status, "status", store.DeadLetterParked, "parked, retrying, skipped, aborted, resolved, or \"\" for all")
	dlq.AddCommand(list)
	for _, action := range []string{contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort} {
		var operator string
		c := &cobra.Command{
			Use:   action + " <deadLetterID>",
			Short: "Tell the parked run to " + action + " the failed step",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil {
					return fmt.Errorf("dead letter id %q is not a number", args[0])
				}
				env, err := g.connect(cmd.Context(), true, true)
				if err != nil {
					return err
				}
				defer env.Close()
				d, err := env.store.GetDeadLetter(cmd.Context(), id)
				if err != nil {
					return err
				}
				res, err := env.starter.DecideDeadLetter(cmd.Context(), d.WorkflowID, d.RunID,
					contract.DeadLetterDecision{DeadLetterID: id, Action: action, Operator: operator})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: step %s of %s\n", res.Action, res.Step, d.WorkflowID)
				return nil
			},
		}
		c.Flags().StringVar(&operator, "operator", "cli", "who decided, recorded with the dead letter")
		dlq.AddCommand(c)
	}
	return dlq
}
