package main

import (
	"fmt"
	"net/mail"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/internal/store"
)

// newEmailCmd is `crmflow email`: the operator's view of transactional
// email, mirroring /v1/email/suppressions.
func newEmailCmd(g *globals) *cobra.Command {
	email := &cobra.Command{Use: "email", Short: "Transactional email: the addresses crmflow no longer sends to"}
	suppressions := &cobra.Command{Use: "suppressions", Short: "Addresses suppressed after a hard bounce or a spam complaint"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List suppressed addresses, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			list, err := env.store.ListSuppressions(cmd.Context(), 1000)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-40s %-9s %-20s %s\n", "ADDRESS", "REASON", "SINCE", "DETAIL")
			for _, s := range list {
				fmt.Fprintf(w, "%-40s %-9s %-20s %s\n", s.Address, s.Reason, s.CreatedAt.UTC().Format("2006-01-02 15:04:05"), s.Detail)
			}
			return nil
		},
	}
	var operator string
	remove := &cobra.Command{
		Use:   "remove <address>",
		Short: "Send to an address again (audited): its bounce or complaint no longer holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := mail.ParseAddress(args[0]); err != nil {
				return fmt.Errorf("%q is not an email address", args[0])
			}
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			removed, err := env.store.RemoveSuppression(cmd.Context(), args[0])
			entry := store.AuditEntry{Actor: operator, Action: "email_suppression.remove",
				Subject: "email-suppression/" + store.NormalizeAddress(args[0]), Outcome: "ok", Details: map[string]any{"via": "cli"}}
			if err != nil {
				entry.Outcome = "failed: " + err.Error()
			} else {
				entry.Details["reason"], entry.Details["email_id"] = removed.Reason, removed.EmailID
			}
			if aerr := env.store.Audit(cmd.Context(), entry); aerr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: could not write the audit log: %v\n", aerr)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s (suppressed after a %s)\n", removed.Address, removed.Reason)
			return nil
		},
	}
	remove.Flags().StringVar(&operator, "operator", "cli", "who removed it, recorded in the audit log")
	suppressions.AddCommand(list, remove)
	email.AddCommand(suppressions)
	return email
}
