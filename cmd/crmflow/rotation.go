package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/internal/credentials"
)

func newRotationCmd(g *globals) *cobra.Command {
	rotation := &cobra.Command{Use: "rotation", Short: "Key rotations"}
	var operator string
	rotation.PersistentFlags().StringVar(&operator, "operator", "cli", "who acts, recorded in the audit log")
	// Every action goes through api.Rotations, as the HTTP API's do: a key
	// goes into the credential store, only its version to the rotation, and
	// each step is audited.
	withRotations := func(run func(cmd *cobra.Command, r *api.Rotations, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, true)
			if err != nil {
				return err
			}
			defer env.Close()
			keys, err := credentials.KeyringOf(env.cfg.MasterKeys())
			if err != nil {
				return err
			}
			r := &api.Rotations{Starter: env.starter, Keys: credentials.NewStore(env.store, keys, credentials.Options{}),
				Audit: env.store, Logger: newLogger("error")}
			return run(cmd, r, args)
		}
	}
	rotation.AddCommand(&cobra.Command{
		Use: "start <provider>", Short: "Start (or join) the provider's key rotation", Args: cobra.ExactArgs(1),
		RunE: withRotations(func(cmd *cobra.Command, r *api.Rotations, args []string) error {
			run, err := r.Start(cmd.Context(), operator, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), run)
		}),
	}, &cobra.Command{
		Use:   "submit-key <provider>",
		Short: "Hand the new key to a waiting rotation; the key is read from stdin, never from the command line",
		Args:  cobra.ExactArgs(1),
		RunE: withRotations(func(cmd *cobra.Command, r *api.Rotations, args []string) error {
			provider := args[0]
			key, err := readKey(cmd)
			if err != nil {
				return err
			}
			res, err := r.SubmitKey(cmd.Context(), operator, provider, key)
			if err != nil {
				return err
			}
			if !res.Valid {
				return fmt.Errorf("%s refused the key: %s", provider, res.Reason)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s accepted the key. Webhook secrets activate once a delivery signed with them arrives; other keys now. Revoke the old key at %s, then run `crmflow rotation revoked %s`.\n", provider, provider, provider)
			return nil
		}),
	}, &cobra.Command{
		Use: "revoked <provider>", Short: "Confirm the old key was revoked at the provider", Args: cobra.ExactArgs(1),
		RunE: withRotations(func(cmd *cobra.Command, r *api.Rotations, args []string) error {
			if err := r.Revoked(cmd.Context(), operator, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: old key marked revoked\n", args[0])
			return nil
		}),
	}, &cobra.Command{
		Use: "cancel <provider>", Short: "End a rotation that waits for a key or its proof, changing nothing", Args: cobra.ExactArgs(1),
		RunE: withRotations(func(cmd *cobra.Command, r *api.Rotations, args []string) error {
			if err := r.Cancel(cmd.Context(), operator, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rotation cancelled; the old key stays active\n", args[0])
			return nil
		}),
	}, &cobra.Command{
		Use:   "token",
		Short: "Print the new start-API token of a crmflow rotation (again, until it is first used or acknowledged)",
		Args:  cobra.NoArgs,
		RunE: withRotations(func(cmd *cobra.Command, r *api.Rotations, _ []string) error {
			tok, err := r.FetchToken(cmd.Context(), operator)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			return nil
		}),
	}, &cobra.Command{
		Use: "token-ack", Short: "Confirm the new start-API token is in place, so the old one's grace period starts", Args: cobra.NoArgs,
		RunE: withRotations(func(cmd *cobra.Command, r *api.Rotations, _ []string) error {
			if err := r.Acknowledge(cmd.Context(), operator); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "crmflow: new token acknowledged")
			return nil
		}),
	})
	return rotation
}
