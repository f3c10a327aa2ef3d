package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/worker"
)

// newCredentialsCmd holds the commands on the credential store itself.
func newCredentialsCmd(g *globals) *cobra.Command {
	creds := &cobra.Command{Use: "credentials", Short: "Maintain the encrypted credential store"}
	creds.AddCommand(&cobra.Command{
		Use:   "rewrap",
		Short: "Re-encrypt every stored credential under the current master key",
		Long: `After a master-key rotation (the new key in CRMFLOW_MASTER_KEY, the old one in
CRMFLOW_MASTER_KEY_PREVIOUS), re-encrypts every stored credential still sealed
under an earlier key. Safe to run again: it touches only what needs it.
Workflow histories are not rewritten: keep the previous key configured until
histories written under it have aged out of the namespace's retention.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			keys, err := worker.Keyring(env.cfg)
			if err != nil {
				return err
			}
			n, err := credentials.NewStore(env.store, keys, credentials.Options{}).Rewrap(cmd.Context())
			if err != nil {
				return fmt.Errorf("rewrap credentials: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-encrypted %d stored credential(s) under master key %s\n", n, keys.KeyID())
			return nil
		},
	})
	return creds
}
