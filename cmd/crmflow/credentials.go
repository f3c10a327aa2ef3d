package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
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
			keys, err := credentials.KeyringOf(env.cfg.MasterKeys())
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
	var noCheck bool
	set := &cobra.Command{
		Use:   "set <provider>",
		Short: "Store and activate a provider key read from stdin, after checking it with the provider",
		Long: `The operator's way to replace a key outside a rotation, e.g. one revoked at
the provider. The key is read from stdin, never the command line. For stripe,
knock, simplelogin and resend it must pass the provider's cheapest
authenticated call first (as crmflow doctor makes it); webhook secrets
(stripe_webhook, clerk_webhook, resend_webhook) are stored as given. The key
active until now stays valid for the grace period, then retires.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			provider := args[0]
			p, ok := providers.Lookup(provider)
			if !ok || p.Rotation == providers.RotationToken {
				return fmt.Errorf("unknown provider %q: one of %s", provider, strings.Join(settable(), ", "))
			}
			key, err := readKey(cmd)
			if err != nil {
				return err
			}
			env, err := g.connect(cmd.Context(), false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			if p.Checkable() && !noCheck {
				v, err := p.Check(cmd.Context(), nil, env.cfg.StringAt(p.URLKey), key)
				if err != nil {
					return fmt.Errorf("could not check the key (use --no-check to store it anyway): %w", err)
				}
				if !v.Valid {
					return fmt.Errorf("%s refused the key (%s %s); nothing stored", provider, v.Status, v.Reason)
				}
			}
			keys, err := credentials.KeyringOf(env.cfg.MasterKeys())
			if err != nil {
				return err
			}
			version, err := credentials.NewStore(env.store, keys, credentials.Options{}).
				Put(cmd.Context(), p.Key.Provider, p.Key.Name, key, credentials.StatusActive)
			if err != nil {
				return fmt.Errorf("store %s key: %w", provider, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s key version %d is active\n", provider, version)
			return nil
		},
	}
	set.Flags().BoolVar(&noCheck, "no-check", false, "store the key without checking it with the provider")
	creds.AddCommand(set)
	return creds
}

// settable are the keys `crmflow credentials set` may replace: every key
// crmflow holds but its own start-API token, which a rotation hands out.
func settable() []string {
	var out []string
	for _, p := range providers.All() {
		if p.Rotation != providers.RotationToken {
			out = append(out, p.Name)
		}
	}
	return out
}
