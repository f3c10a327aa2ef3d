package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/temporalclient"
	"github.com/crmflow/crmflow/starter"
)

// operatorEnv is what the operator commands connect to. Each command
// connects only to what it needs.
type operatorEnv struct {
	cfg      *config.Config
	temporal client.Client
	starter  *starter.Starter
	store    *store.Store
	close    []func()
}

// Operator commands work against `crmflow dev` with no set-up: with neither
// a database URL nor a Temporal address configured they use the dev stack's
// PostgreSQL and Temporal, and its dev defaults. Configured for anything
// else they are not dev: the config must be complete and free of dev
// secrets (loadOperator) before any connection is made.
func (g *globals) connect(ctx context.Context, temporal, db bool) (*operatorEnv, error) {
	cfg, err := g.loadOperator()
	if err != nil {
		return nil, err
	}
	if cfg.DevMode && cfg.DatabaseURL == "" {
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
		env.temporal = c
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
