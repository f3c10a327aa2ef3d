// Command crmflow is the one binary: the dev stack, the worker, the HTTP
// server, migrations, config inspection and the operator commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/config"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "crmflow:", err)
		os.Exit(1)
	}
}

// globals are the flags every subcommand shares.
type globals struct {
	configFile string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "crmflow",
		Short:         "Durable integration worker: Stripe, Clerk, Knock, SimpleLogin and Resend on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "config file (YAML, JSON or TOML); default $CRMFLOW_CONFIG")
	root.AddCommand(
		newDevCmd(g),
		newWorkerCmd(g),
		newServeCmd(g),
		newMigrateCmd(g),
		newConfigCmd(g),
		newProbeCmd(),
		newOrderCmd(g),
		newReferralCmd(g),
		newStockCmd(g),
		newAliasCmd(g),
		newRotationCmd(g),
		newStatusCmd(g),
		newDLQCmd(g),
		newInboxCmd(g),
		newDemoCmd(g),
		newDoctorCmd(g),
		newCredentialsCmd(g),
		newDeployCmd(g),
		newVersionCmd(),
	)
	return root
}

// load reads the config for a subcommand; dev fills in the documented dev
// secrets, for `crmflow dev` and the --dev flags that ask for its view.
func (g *globals) load(dev bool) (*config.Config, error) {
	return config.Load(config.LoadOptions{File: g.configFile, Dev: dev})
}

// loadOperator reads the config for an operator command. Against the local
// dev stack (no database URL, no Temporal address configured) it is dev,
// with the dev defaults, so operators need no set-up there; anywhere else it
// needs the deployment's own master key and start-API token and refuses the
// dev secrets, all checked here, before anything is connected to.
func (g *globals) loadOperator() (*config.Config, error) {
	return config.Load(config.LoadOptions{File: g.configFile, Operator: true})
}

// newLogger builds the process logger at the configured level.
func newLogger(level string) *slog.Logger {
	var l slog.Level
	// The level was validated with the config; an unknown one stays at info.
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// signalContext is cancelled by the first SIGINT or SIGTERM. After that the
// default handling is restored, so a second Ctrl-C kills the process at once
// (the embedded PostgreSQL follows through its parent-death signal).
func signalContext(parent context.Context) context.Context {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx
}

// ignoreCanceled treats a shutdown asked for by a signal as success.
func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
