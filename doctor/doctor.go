// Package doctor checks that crmflow can do its work: the configuration,
// PostgreSQL and its migrations, Temporal (namespace, search attributes,
// schedules) and every configured provider's key, each with the provider's
// cheapest authenticated call. `crmflow doctor` prints the results and
// /readyz?verbose=1 serves them.
//
// doctor is a feature of its own: it may import contract, config and
// internal/ libraries, never the rooms it diagnoses (worker, api, inbox).
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
)

// defaultTimeout bounds one check when Checker.Timeout is not set.
const defaultTimeout = 10 * time.Second

// Result is one check's outcome.
type Result struct {
	// Name labels the check: config, postgres, temporal,
	// search-attributes, schedules, or a provider.
	Name string `json:"name"`
	// OK is false when the check found something to fix.
	OK bool `json:"ok"`
	// Detail says what was found, never a secret.
	Detail string `json:"detail"`
	// Fix says what to do about it; empty when there is nothing to do.
	Fix string `json:"fix,omitempty"`
}

func pass(name, detail string) Result { return Result{Name: name, OK: true, Detail: detail} }

func fail(name, detail, fix string) Result {
	return Result{Name: name, Detail: detail, Fix: fix}
}

// Checker runs the checks. Only Config is required: what is not given is
// opened for the run and closed after it.
type Checker struct {
	// Config is the configuration to check and to connect with.
	Config *config.Config
	// DatabaseURL overrides Config.DatabaseURL (the dev stack's own
	// PostgreSQL).
	DatabaseURL string
	// Store, when set, is pinged instead of opening a pool for the run.
	Store *store.Store
	// Temporal, when set, is used instead of dialing Config.Temporal.Address
	// for the run. It must be bound to Config.Temporal.Namespace.
	Temporal client.Client
	// Credentials, when set, is where provider keys are read; otherwise a
	// credential store is opened on the checked database with the master
	// key. Keys fall back to the configured ones when there is none.
	Credentials *credentials.Store
	// HTTPClient makes the provider calls; nil means a client bounded by
	// Timeout.
	HTTPClient *http.Client
	// Timeout bounds each check (10 s when zero).
	Timeout time.Duration
}

// Run runs every check and returns the results in a fixed order: config,
// postgres, temporal (with search-attributes and schedules when Temporal
// answers for the namespace), then stripe, knock, simplelogin and resend,
// then the configured tokens.
// Independent checks run at the same time, each within Timeout.
func (c *Checker) Run(ctx context.Context) []Result {
	results := []Result{checkConfig(c.Config)}

	var (
		pg       postgresOutcome
		temporal []Result
		wg       sync.WaitGroup
	)
	wg.Go(func() { pg = c.checkPostgres(ctx) })
	wg.Go(func() { temporal = c.checkTemporal(ctx) })
	wg.Wait()
	if pg.close != nil {
		defer pg.close()
	}
	results = append(results, pg.result)
	results = append(results, temporal...)
	results = append(results, c.checkProviders(ctx, pg)...)
	return append(results, c.checkTokens(ctx, pg))
}

// timeout is the bound of one check.
func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultTimeout
}

func (c *Checker) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: c.timeout()}
}

func checkConfig(cfg *config.Config) Result {
	err := cfg.Validate()
	var ve *config.ValidationError
	switch {
	case err == nil:
		detail := "valid"
		if console := cfg.ConsoleProviders(); len(console) > 0 {
			detail += "; console mode (no key): " + strings.Join(console, ", ")
		}
		return pass("config", detail)
	case errors.As(err, &ve):
		return fail("config", strings.Join(ve.Problems, "; "),
			"set the keys named above in the config file or their CRMFLOW_* env vars (`crmflow config` shows what crmflow reads)")
	default:
		return fail("config", err.Error(), "fix the configuration")
	}
}

// Failed counts the results that are not OK.
func Failed(results []Result) int {
	n := 0
	for _, r := range results {
		if !r.OK {
			n++
		}
	}
	return n
}

// Write prints one line per result: "ok" or "FAIL", the check's name, what
// was found and, after a semicolon, what to do.
func Write(w io.Writer, results []Result) error {
	width := 0
	for _, r := range results {
		width = max(width, len(r.Name))
	}
	for _, r := range results {
		status := "ok"
		if !r.OK {
			status = "FAIL"
		}
		text := r.Detail
		if r.Fix != "" {
			text += "; " + r.Fix
		}
		if _, err := fmt.Fprintf(w, "%-4s %-*s  %s\n", status, width, r.Name, text); err != nil {
			return err
		}
	}
	return nil
}

// Cached returns run wrapped so that it runs at most once per ttl: callers
// within ttl of the last run, and callers arriving while it runs, get its
// results. /readyz?verbose=1 is unauthenticated and each run calls every
// provider, so the cache keeps a busy monitor from spending the providers'
// rate limits. A run keeps the deadline of the caller that started it but
// is not cut short by that caller going away, so a hung-up client cannot
// leave cancelled results behind for the others.
func Cached(run func(ctx context.Context) []Result, ttl time.Duration) func(ctx context.Context) []Result {
	var (
		mu      sync.Mutex
		last    []Result
		ranAt   time.Time
		haveRun bool
	)
	return func(ctx context.Context) []Result {
		mu.Lock()
		defer mu.Unlock()
		if !haveRun || time.Since(ranAt) >= ttl {
			rctx := context.WithoutCancel(ctx)
			if deadline, ok := ctx.Deadline(); ok {
				var cancel context.CancelFunc
				rctx, cancel = context.WithDeadline(rctx, deadline)
				defer cancel()
			}
			last = run(rctx)
			ranAt, haveRun = time.Now(), true
		}
		return append([]Result(nil), last...)
	}
}
