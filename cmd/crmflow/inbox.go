package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
)

// newInboxCmd mirrors the API's inbox routes against the database: what
// every accepted event became, and a replay for those that never reached
// their workflow.
func newInboxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "inbox", Short: "Inbox: every accepted webhook event and stock level, and where it ended"}
	cmd.AddCommand(newInboxListCmd(g), newInboxShowCmd(g), newInboxReplayCmd(g))
	return cmd
}

func newInboxListCmd(g *globals) *cobra.Command {
	var f inbox.ListFilter
	c := &cobra.Command{
		Use:   "list",
		Short: "List inbox events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked before connecting, so a typo does not wait on a dial.
			if f.Status != "" && !slices.Contains(inbox.Statuses, f.Status) {
				return fmt.Errorf("--status must be one of %s", strings.Join(inbox.Statuses, ", "))
			}
			if f.Provider != "" && !slices.Contains(inbox.Sources, f.Provider) {
				return fmt.Errorf("--provider must be one of %s", strings.Join(inbox.Sources, ", "))
			}
			if f.Limit < 1 || f.Limit > inbox.MaxListLimit {
				return fmt.Errorf("--limit must be from 1 to %d", inbox.MaxListLimit)
			}
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			list, err := inbox.NewStore(env.store.Pool()).List(cmd.Context(), f)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-8s %-10s %-9s %-26s %-32s %-20s %s\n", "ID", "STATUS", "PROVIDER", "TYPE", "TARGET", "RECEIVED", "NOTE")
			for _, r := range list {
				fmt.Fprintf(w, "%-8d %-10s %-9s %-26s %-32s %-20s %s\n", r.ID, r.Status, r.Source, r.EventType, r.Target,
					r.ReceivedAt.UTC().Format(time.DateTime), r.Note)
			}
			if len(list) == f.Limit {
				fmt.Fprintf(w, "(more: --before %d)\n", list[len(list)-1].ID)
			}
			return nil
		},
	}
	c.Flags().StringVar(&f.Status, "status", "", "only this status: "+strings.Join(inbox.Statuses, ", "))
	c.Flags().StringVar(&f.Provider, "provider", "", "only this provider: "+strings.Join(inbox.Sources, ", "))
	c.Flags().IntVar(&f.Limit, "limit", inbox.DefaultListLimit, "at most this many events")
	c.Flags().Int64Var(&f.BeforeID, "before", 0, "only events older than this id (the next page)")
	return c
}

func newInboxShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show <id>",
		Short: "Show one inbox event with its payload, as GET /v1/inbox/{id} does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseInboxID(args[0])
			if err != nil {
				return err
			}
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			rec, err := inbox.NewStore(env.store.Pool()).Get(cmd.Context(), id)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), api.NewInboxEvent(rec, true))
		},
	}
}

func newInboxReplayCmd(g *globals) *cobra.Command {
	var operator string
	c := &cobra.Command{
		Use:   "replay <id>",
		Short: "Hand an inbox event off again under its event id (after its target was created, say)",
		Long: `Puts the event back in the inbox's queue; a running crmflow serve hands it off
within a second. Workflows ignore an event id they have seen, so replaying a
delivered event changes nothing. An event stored as ignored has its route
worked out again from its payload and is refused if it still has none.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseInboxID(args[0])
			if err != nil {
				return err
			}
			if err := contract.ValidateOperator(operator); err != nil {
				return fmt.Errorf("--operator: %w", err)
			}
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			res, err := inbox.NewStore(env.store.Pool()).Replay(cmd.Context(), id, operator)
			if !errors.Is(err, inbox.ErrNotFound) {
				if aerr := env.store.Audit(cmd.Context(), api.ReplayAudit(operator, id, res, err)); aerr != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning: could not write the audit log:", aerr)
				}
			}
			if err != nil {
				return err
			}
			how := ""
			if res.Rerouted {
				how = ", routed again from its payload"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed inbox event %d (%s %s, was %s%s): pending for %s\n",
				id, res.Source, res.EventID, res.From, how, res.Target)
			return nil
		},
	}
	c.Flags().StringVar(&operator, "operator", "cli", "who replayed, recorded on the row and in the audit log")
	return c
}

func parseInboxID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("inbox event id %q is not a positive number", s)
	}
	return id, nil
}
