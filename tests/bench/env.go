package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/promhist"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/webhooks"
)

// Env is what every measurement runs on.
type Env struct {
	// NewDatabase returns the URL of a fresh, migrated database that is
	// dropped when tb ends.
	NewDatabase func(tb testing.TB) string
	// TemporalAddr and Namespace locate the embedded Temporal server.
	TemporalAddr string
	Namespace    string
	// Sizes say how much work each measurement does.
	Sizes Sizes
	// Defaults is crmflow's resolved default configuration; the stack is
	// built with its values (coalesce window, tolerance, body limit).
	Defaults *config.Config
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// PostgresEngine starts the embedded Temporal on PostgreSQL persistence
	// that "Both engines" compares with the one at TemporalAddr; nil skips
	// that measurement.
	PostgresEngine func(tb testing.TB) Engine

	queues atomic.Int64
	profs  profiles
}

// Sizes say how much work each measurement does and how many interleaved
// rounds it runs.
type Sizes struct {
	Rounds int
	// Senders is the number of concurrent HTTP senders and of concurrent
	// inserters (M1, M2).
	Senders int
	// InboxRows is the number of rows per M1 phase.
	InboxRows int
	// Webhooks is the number of signed webhooks per M2 phase.
	Webhooks int
	// SignalCalls is the number of SignalWithStart calls per phase when
	// measuring Temporal's capacity, at SignalConcurrency.
	SignalCalls       int
	SignalConcurrency int
	// LatencyDuration is how long M3 sends at its steady rate per round.
	LatencyDuration time.Duration
	// Backlog is the number of events per M4 phase.
	Backlog int
	// Duplicates is the number of events per M5 phase.
	Duplicates int
	// Orders is the number of confirmations per M6 phase, and OrderSenders
	// how many are started at once.
	Orders       int
	OrderSenders int
	// StockUpdates is the number of stock updates per M7 round, M7Rounds
	// how many rounds M7 runs.
	StockUpdates int
	M7Rounds     int
	// HandoffDuration is how long M8 commits events at its steady rate per
	// phase.
	HandoffDuration time.Duration
	// StorageEvents are the events per compressed day of M10, which runs
	// StorageDays days of StorageDay each.
	StorageEvents int
	StorageDays   int
	StorageDay    time.Duration
	// PoolSizes are the pool_max_conns values the tuning pass tries; empty
	// skips it.
	PoolSizes []int
}

// FullSizes are what `make bench` runs: enough work per round for stable
// rates, and enough rounds for a median that one odd round does not move:
// on a machine of two shared cores five rounds put several targets on
// either side from one run to the next, with the code unchanged. An even
// number lets ABBA run each order equally often. BENCH_TIMEOUT in the
// Makefile bounds the whole run.
func FullSizes() Sizes {
	return Sizes{
		Rounds: 10, Senders: 32, InboxRows: 2000, Webhooks: 2000,
		SignalCalls: 200, SignalConcurrency: 16, LatencyDuration: 5 * time.Second,
		Backlog: 600, Duplicates: 400, Orders: 50, OrderSenders: 8,
		StockUpdates: 10_000, M7Rounds: 3, PoolSizes: []int{4, 16, 32},
		HandoffDuration: 8 * time.Second, StorageEvents: 500, StorageDays: 9, StorageDay: 3 * time.Second,
	}
}

// SmokeSizes run every measurement in miniature, for the package's tests.
func SmokeSizes() Sizes {
	return Sizes{
		Rounds: 1, Senders: 4, InboxRows: 40, Webhooks: 40,
		SignalCalls: 10, SignalConcurrency: 4, LatencyDuration: 500 * time.Millisecond,
		Backlog: 10, Duplicates: 5, Orders: 3, OrderSenders: 2,
		StockUpdates: 200, M7Rounds: 1,
		HandoffDuration: 500 * time.Millisecond, StorageEvents: 20, StorageDays: 5, StorageDay: 600 * time.Millisecond,
	}
}

// DefaultConfig resolves crmflow's defaults (as `crmflow dev` would, with its
// dev secrets) without reading the environment.
func DefaultConfig() (*config.Config, error) {
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: []string{}})
	if err != nil && (cfg == nil || !config.IsValidation(err)) {
		return nil, fmt.Errorf("resolve default config: %w", err)
	}
	// Validation only complains about keys the benchmark sets itself
	// (the database URL, Temporal's address).
	return cfg, nil
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// queue returns a task queue name no other measurement uses.
func (e *Env) queue(what string) string {
	return fmt.Sprintf("bench-%s-%d-%d", what, time.Now().UnixNano(), e.queues.Add(1))
}

// discardLogger is the SDK logger for the benchmark's clients: their chatter
// would drown the report.
var discardLogger = sdklog.NewStructuredLogger(discardSlog)

// discardSlog drops the logs of the stack the benchmark builds.
var discardSlog = slog.New(slog.DiscardHandler)

// callCounter counts the gRPC calls a Temporal client makes, by method.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method]++
	c.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// snapshot copies the counts so far.
func (c *callCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// since returns the calls made after before was taken.
func (c *callCounter) since(before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range c.snapshot() {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// dial connects a Temporal client of its own, counting its calls when
// counter is set.
func (e *Env) dial(counter *callCounter) (client.Client, error) {
	return dialTemporal(e.TemporalAddr, e.Namespace, counter)
}

// dialTemporal connects a Temporal client to the server at addr, counting
// its calls when counter is set.
func dialTemporal(addr, namespace string, counter *callCounter) (client.Client, error) {
	opts := client.Options{HostPort: addr, Namespace: namespace, Logger: discardLogger}
	if counter != nil {
		opts.ConnectionOptions.DialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(counter.intercept)}
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal: %w", err)
	}
	return c, nil
}

// stripeWebhookSecret signs every webhook the benchmark sends.
const stripeWebhookSecret = "whsec_crmflow_bench_secret"

// apiToken authorises the benchmark's start-API calls.
const apiToken = "bench-api-token"

// edge is crmflow's webhook side as `crmflow serve` builds it: store,
// starter, dispatcher and HTTP server over real loopback HTTP, with the
// signing secrets and API token read from the credential store.
type edge struct {
	store   *store.Store
	starter *starter.Starter
	inbox   *inbox.Store
	disp    *inbox.Dispatcher
	reg     *prometheus.Registry
	// handOffs is the dispatcher's collector of handOffsMetric.
	handOffs prometheus.Collector
	url      string

	httpSrv *httptest.Server
	cancel  context.CancelFunc
	done    chan struct{}
}

// newEdge builds the edge on databaseURL, handing events to Temporal through
// c on queue. The dispatcher is not running until runDispatcher.
func (e *Env) newEdge(ctx context.Context, databaseURL string, c client.Client, queue string, dopts inbox.DispatcherOptions) (*edge, error) {
	st, err := store.Open(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("keyring: %w", err)
	}
	creds := credentials.NewStore(st, keys, credentials.Options{})
	if err := creds.SeedAll(ctx, map[string]string{"stripe_webhook": stripeWebhookSecret, "crmflow": apiToken}); err != nil {
		st.Close()
		return nil, err
	}
	logger := discardSlog
	reg := prometheus.NewRegistry()
	s := starter.New(c, starter.Options{TaskQueue: queue, PaymentTimeout: time.Hour})
	ib := inbox.NewStore(st.Pool())
	kept := &keepHandOffs{Registerer: reg}
	disp := inbox.NewDispatcher(ib, st, s, logger, kept, dopts)
	if kept.handOffs == nil {
		st.Close()
		return nil, fmt.Errorf("the dispatcher registered no %s", handOffsMetric)
	}
	hs := httptest.NewServer(api.Handler(api.HandlerOptions{
		HTTP: httpserver.Options{Logger: logger, Registry: reg},
		Ops:  api.OpsDeps{Registry: reg, Backlog: ib.Backlog},
		API: &api.Deps{
			Logger: logger, Store: st, Starter: s, Inbox: ib, Poke: disp.Poke,
			CoalesceWindow: e.Defaults.Inventory.CoalesceWindow,
			Auth:           creds,
		},
		Webhooks: &webhooks.Deps{
			Logger: logger, Registry: reg, Inbox: ib, Dispatcher: disp,
			Secrets: creds.WebhookSecrets,
			Options: webhooks.Options{
				Tolerance: e.Defaults.Webhooks.Tolerance, MaxBodyBytes: e.Defaults.Webhooks.MaxBodyBytes,
			},
		},
	}))
	return &edge{store: st, inbox: ib, starter: s, disp: disp, reg: reg, handOffs: kept.handOffs, url: hs.URL, httpSrv: hs}, nil
}

// runDispatcher starts the hand-off loop.
func (g *edge) runDispatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		_ = g.disp.Run(ctx) // returns nil once ctx ends
	}()
}

// stopDispatcher stops the hand-off loop and waits for it.
func (g *edge) stopDispatcher() {
	if g.cancel != nil {
		g.cancel()
		<-g.done
		g.cancel = nil
	}
}

func (g *edge) close() {
	g.stopDispatcher()
	g.httpSrv.Close()
	g.store.Close()
}

// handedOff reads the dispatcher's own counter of successful hand-offs, so
// watching a drain costs no database round trips. It collects that one
// collector rather than gathering the registry: a drain is watched every
// few milliseconds, on the cores the subject runs on.
func (g *edge) handedOff() (int, error) {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		g.handOffs.Collect(ch)
		close(ch)
	}()
	n := 0.0
	var err error
	for m := range ch {
		var pb dto.Metric
		if werr := m.Write(&pb); werr != nil {
			err = fmt.Errorf("read %s: %w", handOffsMetric, werr)
			continue
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == inbox.StatusDelivered {
				n += pb.GetCounter().GetValue()
			}
		}
	}
	return int(n), err
}

// handOffsMetric is the dispatcher's counter of hand-offs by result.
const handOffsMetric = "crmflow_inbox_handoffs_total"

// keepHandOffs registers collectors with a registry as the dispatcher
// registers its metrics, and keeps the one that holds handOffsMetric.
type keepHandOffs struct {
	prometheus.Registerer
	handOffs prometheus.Collector
}

// Register registers c, keeping it when it describes handOffsMetric.
func (k *keepHandOffs) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(descs)
		close(descs)
	}()
	for d := range descs {
		if strings.Contains(d.String(), `fqName: "`+handOffsMetric+`"`) {
			k.handOffs = c
		}
	}
	return k.Registerer.Register(c)
}

// MustRegister registers cs, panicking on an error as the registry does.
func (k *keepHandOffs) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := k.Register(c); err != nil {
			panic(err)
		}
	}
}

// handOffTimes reads the dispatcher's two hand-off histograms
// (inbox.HandOffQueuedMetric, inbox.HandOffCallMetric).
func (g *edge) handOffTimes() (queued, call promhist.Histogram, err error) {
	if queued, err = promhist.Read(g.reg, inbox.HandOffQueuedMetric); err == nil {
		call, err = promhist.Read(g.reg, inbox.HandOffCallMetric)
	}
	return queued, call, err
}

// waitHandedOff waits until the dispatcher has handed off want events.
func (g *edge) waitHandedOff(ctx context.Context, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := g.handedOff()
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dispatcher handed off %d of %d events within %s", n, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// pending counts inbox rows not yet handed off.
func (g *edge) pending(ctx context.Context) (int64, error) {
	b, err := g.inbox.Backlog(ctx)
	return b.Pending, err
}

// httpClient keeps up to conns connections to the edge open, as a provider
// sending many webhooks at once would.
func httpClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			IdleConnTimeout: time.Minute,
		},
	}
}

// drain reads and closes a response body so its connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}
