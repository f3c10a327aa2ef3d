package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
)

func newRotationCmd(g *globals) *cobra.Command {
	rotation := &cobra.Command{Use: "rotation", Short: "Key rotations"}
	var operator string
	rotation.PersistentFlags().StringVar(&operator, "operator", "cli", "who acts, recorded in the audit log")
	withStarter := func(run func(cmd *cobra.Command, env *operatorEnv, provider string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, false)
			if err != nil {
				return err
			}
			defer env.Close()
			return run(cmd, env, args[0])
		}
	}
	rotation.AddCommand(&cobra.Command{
		Use: "start <provider>", Short: "Start (or join) the provider's key rotation", Args: cobra.ExactArgs(1),
		RunE: withStarter(func(cmd *cobra.Command, env *operatorEnv, provider string) error {
			if p, ok := providers.Lookup(provider); !ok || !p.Rotated() {
				return fmt.Errorf("no key rotation for provider %q", provider)
			}
			run, err := env.starter.StartKeyRotation(cmd.Context(), provider, operator)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), run)
		}),
	}, &cobra.Command{
		Use:   "submit-key <provider>",
		Short: "Hand the new key to a waiting rotation; the key is read from stdin, never from the command line",
		Args:  cobra.ExactArgs(1),
		RunE: withStarter(func(cmd *cobra.Command, env *operatorEnv, provider string) error {
			key, err := readKey(cmd)
			if err != nil {
				return err
			}
			res, err := env.starter.SubmitKey(cmd.Context(), provider, contract.SubmitKeyInput{Secret: key, Operator: operator})
			if err != nil {
				return err
			}
			if !res.Valid {
				return fmt.Errorf("%s refused the key: %s", provider, res.Reason)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s accepted the key; it becomes active now. Revoke the old key at %s, then run `crmflow rotation revoked %s`.\n", provider, provider, provider)
			return nil
		}),
	}, &cobra.Command{
		Use: "revoked <provider>", Short: "Confirm the old key was revoked at the provider", Args: cobra.ExactArgs(1),
		RunE: withStarter(func(cmd *cobra.Command, env *operatorEnv, provider string) error {
			if err := env.starter.ConfirmOldKeyRevoked(cmd.Context(), provider, operator); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: old key marked revoked\n", provider)
			return nil
		}),
	}, &cobra.Command{
		Use: "token", Short: "Collect the new start-API token of a crmflow rotation (shown once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.connect(cmd.Context(), true, false)
			if err != nil {
				return err
			}
			defer env.Close()
			tok, err := env.starter.CollectToken(cmd.Context(), operator)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			return nil
		},
	})
	return rotation
}
