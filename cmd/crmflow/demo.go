package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/store"
)

// demoWaitTimeout bounds each wait for a workflow to reach a state.
const demoWaitTimeout = 60 * time.Second

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Seed demo data and drive the workflows of a running `crmflow dev` through signed webhooks and API calls",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := signalContext(cmd.Context())
			cfg, err := g.load(true)
			if err != nil {
				return err
			}
			base := httpBaseURL(cfg.HTTPAddr)
			// Check the stack first, so a stopped stack gets a clear message
			// rather than a database connection error.
			if err := checkReady(ctx, &http.Client{Timeout: 10 * time.Second}, base); err != nil {
				return err
			}
			env, err := g.connect(ctx, false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			return runDemo(ctx, env.cfg, env.store, cmd.OutOrStdout(), base)
		},
	}
}

// runDemo seeds demo data into st and drives the order confirmation of the
// crmflow HTTP server at httpBase (e.g. "http://127.0.0.1:8080") through the
// start API and signed Stripe webhooks, writing what happens to out. Every
// run uses fresh ids, so it can run any number of times against one stack.
func runDemo(ctx context.Context, cfg *config.Config, st *store.Store, out io.Writer, httpBase string) error {
	if len(cfg.APITokens) == 0 {
		return errors.New("no start-API token configured (api_tokens); `crmflow dev` uses " + config.DevAPIToken)
	}
	d := &demo{
		cfg:   cfg,
		out:   out,
		http:  &http.Client{Timeout: 10 * time.Second},
		base:  strings.TrimSuffix(httpBase, "/"),
		token: cfg.APITokens[0].Reveal(),
		ids:   newDemoIDs(demoSuffix(time.Now())),
	}
	if err := checkReady(ctx, d.http, d.base); err != nil {
		return err
	}
	fmt.Fprintf(out, "crmflow demo, run %s, against %s\n", d.ids.suffix, d.base)
	if err := d.seed(ctx, st); err != nil {
		return err
	}
	if err := d.happyPath(ctx); err != nil {
		return err
	}
	if err := d.receipt(ctx, st); err != nil {
		return err
	}
	if err := d.paymentFailure(ctx); err != nil {
		return err
	}
	if err := d.newUser(ctx); err != nil {
		return err
	}
	d.whereToLook()
	return nil
}

// demo is one run of the demo.
type demo struct {
	cfg   *config.Config
	out   io.Writer
	http  *http.Client
	base  string
	token string
	ids   demoIDs
}

// demoIDs are the run-unique ids of one demo run's data.
type demoIDs struct {
	suffix                 string
	referrer, referred     string
	referral               string
	order1, order2         string
	user                   string
	referrerStripeCustomer string
}

func newDemoIDs(suffix string) demoIDs {
	p := "demo-" + suffix
	return demoIDs{
		suffix:                 suffix,
		referrer:               p + "-alice",
		referred:               p + "-bob",
		referral:               p + "-referral",
		order1:                 p + "-order-1",
		order2:                 p + "-order-2",
		user:                   "user_demo_" + suffix,
		referrerStripeCustomer: "cus_demo_" + suffix,
	}
}

// demoSuffix is a short id unique to one run: the time in base 36 plus a
// little randomness, so runs in the same millisecond do not collide.
func demoSuffix(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 36) + hex.EncodeToString(b[:])
}
