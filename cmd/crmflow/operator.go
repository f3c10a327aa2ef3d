package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/temporalclient"
	"github.com/crmflow/crmflow/starter"
)

// operatorEnv is what the operator commands connect to. Each command
// connects only to what it needs.
type operatorEnv struct {
	cfg     *config.Config
	starter *starter.Starter
	store   *store.Store
	close   []func()
}

// Operator commands work against `crmflow dev` with no set-up: without a
// configured database URL they use the dev stack's PostgreSQL.
func (g *globals) connect(ctx context.Context, temporal, db bool) (*operatorEnv, error) {
	cfg, err := g.load(true)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = config.Secret(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/crmflow?sslmode=disable", cfg.Dev.PostgresPort))
	}
	env := &operatorEnv{cfg: cfg}
	if temporal {
		dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := temporalclient.Dial(dialCtx, cfg, newLogger("error"), nil)
		if err != nil {
			return nil, err
		}
		env.close = append(env.close, c.Close)
		env.starter = starter.New(c, starter.Options{PaymentTimeout: cfg.Orders.PaymentTimeout, ShadowTTL: cfg.Aliases.ShadowTTL})
	}
	if db {
		st, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
		if err != nil {
			env.Close()
			return nil, err
		}
		env.close = append(env.close, st.Close)
		env.store = st
	}
	return env, nil
}

func (e *operatorEnv) Close() {
	for _, f := range e.close {
		f()
	}
}

// readKey reads a key from stdin, never from the command line, where it
// would reach the shell's history and the process list.
func readKey(cmd *cobra.Command) (string, error) {
	raw, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
	if err != nil {
		return "", fmt.Errorf("read key from stdin: %w", err)
	}
	key := strings.TrimSpace(string(raw))
	if key == "" {
		return "", fmt.Errorf("no key on stdin")
	}
	return key, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newOrderCmd(g *globals) *cobra.Command {
	order := &cobra.Command{Use: "order", Short: "Order confirmations"}
	order.AddCommand(&cobra.Command{
		Use:   "confirm <orderID>",
		Short: "Start (or join) the order's confirmation workflow",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, true)
			if err != nil {
				return err
			}
			defer env.Close()
			if _, err := env.store.GetOrder(cmd.Context(), args[0]); err != nil {
				return err
			}
			run, err := env.starter.StartOrderConfirmation(cmd.Context(), args[0])
			if err != nil && !errors.Is(err, starter.ErrAlreadyDone) {
				return err
			}
			return printJSON(cmd.OutOrStdout(), run)
		},
	})
	return order
}

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
			if err != nil && !errors.Is(err, starter.ErrAlreadyDone) {
				return err
			}
			return printJSON(cmd.OutOrStdout(), run)
		},
	})
	return referral
}

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
				return err
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

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status <workflowID>",
		Short: "Print a workflow's status query answer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.connect(cmd.Context(), true, false)
			if err != nil {
				return err
			}
			defer env.Close()
			st, err := env.starter.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), st)
		},
	}
}

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
