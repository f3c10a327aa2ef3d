// Package e2e_test drives crmflow's whole edge end to end: signed webhooks
// and API calls through the real HTTP handler (api, webhooks), the inbox and
// its dispatcher, a worker on the test binary's Temporal server, a fresh
// PostgreSQL database per test, and provider stand-ins that check every
// request against the provider's published OpenAPI spec.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/callstats"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/webhooks"
	"github.com/crmflow/crmflow/worker"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	stripeSecret = "whsec_test_secret"
	// apiToken is a service token; operatorToken is operatorName's.
	apiToken      = "test-token"
	operatorName  = "alice"
	operatorToken = "test-operator-token"
	knockKey      = "sk_test_knock"
)

// knockPeer stands in for Knock's API: it checks what the real API would
// (method, path, bearer key, idempotency key, JSON body) and records every
// trigger. failFirst makes the first n triggers answer 401. It also keeps
// the users identified (PUT /v1/users/{id}) and counts their deletions.
type knockPeer struct {
	mu        sync.Mutex
	triggers  []knockTrigger
	failFirst int
	// down makes every request answer 503, an outage.
	down  bool
	srv   *httptest.Server
	users map[string]map[string]any
	// identified lists every identify body received, in order, by user id.
	identified  map[string][]map[string]any
	userDeletes map[string]int
	// failIdentify makes the next n identifies answer 401, as Knock does
	// for an expired key.
	failIdentify int
}

type knockTrigger struct {
	Workflow       string
	IdempotencyKey string
	Body           map[string]any
	Status         int
}

func newKnockPeer(t *testing.T) *knockPeer {
	p := &knockPeer{users: map[string]map[string]any{}, identified: map[string][]map[string]any{}, userDeletes: map[string]int{}}
	// Every request crmflow sends is checked against Knock's published spec.
	p.srv = httptest.NewServer(openapicheck.Load(t, openapicheck.Knock).Middleware(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"code":"service_unavailable","message":"down","status":503,"type":"api_error"}`)
			return
		}
		if userID, ok := strings.CutPrefix(r.URL.Path, "/v1/users/"); ok {
			p.serveUser(w, r, userID)
			return
		}
		wf, ok := strings.CutPrefix(r.URL.Path, "/v1/workflows/")
		wf, isTrigger := strings.CutSuffix(wf, "/trigger")
		if r.Method != http.MethodPost || !ok || !isTrigger {
			http.Error(w, `{"errors":{"detail":"404 Not Found"}}`, http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+knockKey {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"api_key_missing","message":"no key","status":401,"type":"authentication_error"}`)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["recipients"] == nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"invalid_params","message":"recipients required","status":400,"type":"invalid_request_error"}`)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		tr := knockTrigger{Workflow: wf, IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body, Status: http.StatusOK}
		if p.failFirst > 0 {
			p.failFirst--
			tr.Status = http.StatusUnauthorized
			p.triggers = append(p.triggers, tr)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"api_key_expired","message":"expired","status":401,"type":"authentication_error"}`)
			return
		}
		p.triggers = append(p.triggers, tr)
		fmt.Fprintf(w, `{"workflow_run_id":"run-%d"}`, len(p.triggers))
	})))
	t.Cleanup(p.srv.Close)
	return p
}

// succeeded returns the successful triggers seen for an idempotency key.
func (p *knockPeer) succeeded(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, tr := range p.triggers {
		if tr.IdempotencyKey == key && tr.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// countWorkflow counts successful triggers of a Knock workflow.
func (p *knockPeer) countWorkflow(workflow string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, tr := range p.triggers {
		if tr.Workflow == workflow && tr.Status == http.StatusOK {
			n++
		}
	}
	return n
}

func (p *knockPeer) all() []knockTrigger {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]knockTrigger(nil), p.triggers...)
}

// fixture is a running crmflow HTTP server, dispatcher and (optionally)
// worker on the test's own database and task queue.
type fixture struct {
	t        *testing.T
	store    *store.Store
	temporal client.Client
	starter  *starter.Starter
	knock    *knockPeer
	creds    *credentials.Store
	queue    string
	url      string
	cancel   context.CancelFunc
	// registry holds the fixture's metrics (inbox, webhooks, reconciliation).
	registry *prometheus.Registry
	// workers is the worker, when the fixture runs one.
	workers *worker.Workers
	// emails records the templated emails the worker was asked to send.
	emails *emailOutbox
}

type fixtureOptions struct {
	worker   bool
	maxBody  int64
	temporal client.Client
	store    *store.Store
	// stripeURL points the worker's Stripe client at a peer; "" is console
	// mode, which trusts the signed webhook's PaymentIntent.
	stripeURL string
	referrals activities.ReferralDefaults
	stock     activities.StockDefaults
	coalesce  time.Duration
	// simpleLoginURL points the SimpleLogin client at a peer; "" is console.
	simpleLoginURL string
	// credentialGrace is how long a replaced credential stays valid.
	credentialGrace time.Duration
	// resendURL points Resend's client at a peer; "" is console mode.
	resendURL string
	// stripeConfigured builds the Stripe activities as the worker does
	// (worker.NewActivities) from a config that sets a Stripe secret key
	// and stripeURL as Stripe's API: the key is seeded into the credential
	// store and read from it at each call.
	stripeConfigured bool
	// paymentTimeout is how long new order confirmations wait for payment
	// (default an hour).
	paymentTimeout time.Duration
	// mailboxVerifyWait is how long new user entities wait for SimpleLogin
	// to verify a new address's mailbox (default the workflow's).
	mailboxVerifyWait time.Duration
	// refundWait is how long a refund waits for its order to be decided
	// (default the dispatcher's).
	refundWait time.Duration
	// emailWait is how long a Resend event waits for its email's row
	// (default the dispatcher's).
	emailWait time.Duration
	// reconcile gives the worker the Stripe reconciliation, listing
	// Stripe's events at stripeURL into the fixture's inbox (reconcile_test.go).
	reconcile bool
	// breaker pauses a failing provider's queue in the worker.
	breaker worker.BreakerOptions
	// knockDown starts the Knock peer answering 503.
	knockDown bool
	// calls, when set, records the worker's Knock requests as the
	// process does (the provider metrics' observer).
	calls *callstats.Recorder
}

// temporalUI is the Temporal UI base URL the fixture's console links to.
const temporalUI = "https://temporal-ui.example"

// keySource reads provider keys from the fixture's credential store.
type keySource struct{ creds *credentials.Store }

func (k keySource) ActiveKey(ctx context.Context, provider, name string) (string, error) {
	c, err := k.creds.Active(ctx, provider, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return c.Secret.Reveal(), err
}

func newFixture(t *testing.T, opts fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, store: opts.store, temporal: opts.temporal}
	if f.store == nil {
		f.store = testenv.Store(t)
	}
	if f.temporal == nil {
		f.temporal = testenv.TemporalClient(t)
	}
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	require.NoError(t, err)
	f.creds = credentials.NewStore(f.store, keys, credentials.Options{CacheTTL: -1, Grace: opts.credentialGrace})
	if opts.maxBody == 0 {
		opts.maxBody = 1 << 20
	}
	queue := testenv.TaskQueue(t)
	f.queue = queue
	if opts.paymentTimeout == 0 {
		opts.paymentTimeout = time.Hour
	}
	f.starter = starter.New(f.temporal, starter.Options{TaskQueue: queue, PaymentTimeout: opts.paymentTimeout,
		MailboxCheck: 200 * time.Millisecond, MailboxVerifyWait: opts.mailboxVerifyWait})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	f.registry = reg
	ib := inbox.NewStore(f.store.Pool())
	disp := inbox.NewDispatcher(ib, f.store, f.starter, logger, reg, inbox.DispatcherOptions{
		Sweep: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, RefundWait: opts.refundWait, EmailWait: opts.emailWait,
	})
	reg.MustRegister(inbox.NewCountCollector(ib))
	require.NoError(t, f.creds.SeedTokens(context.Background(), []string{apiToken, "other-token"},
		map[string]string{operatorName: operatorToken}))
	require.NoError(t, f.creds.SeedAll(context.Background(), map[string]string{
		contract.KeyRotationStripeWebhook: stripeSecret, contract.KeyRotationClerkWebhook: clerkSecret,
		contract.KeyRotationResendWebhook: resendSecret}))
	hs := httptest.NewServer(api.Handler(api.HandlerOptions{
		HTTP: httpserver.Options{Logger: logger, Registry: reg},
		Ops: api.OpsDeps{Registry: reg, Backlog: ib.Backlog, Auth: f.creds,
			Codec: codec.NewHandler(codec.New(keys), api.CodecAuthorizer(f.creds, nil))},
		API: &api.Deps{
			Logger: logger, Store: f.store, Starter: f.starter, Inbox: ib, Poke: disp.Poke, CoalesceWindow: opts.coalesce,
			Auth: f.creds, Audit: f.store,
			TokenSeen: func(ctx context.Context, p credentials.Principal) {
				_ = f.starter.SignalKeyRotation(ctx, contract.KeyRotationCrmflow, contract.KeyRotationTokenSeenSignal, p.Version)
			},
			Rotations: &api.Rotations{Starter: f.starter, Keys: f.creds, Audit: f.store, Logger: logger},
		},
		Console: &api.ConsoleDeps{Tokens: f.creds, Keys: f.creds, InboxStats: ib, TemporalUIURL: temporalUI,
			Namespace: "default", ConsoleProviders: []string{"simplelogin"}},
		Webhooks: &webhooks.Deps{
			Logger: logger, Registry: reg, Inbox: ib, Dispatcher: disp,
			Secrets: f.creds.WebhookSecrets, Proofs: f.proofs(),
			Options: webhooks.Options{StripeSecret: stripeSecret, ClerkSecret: clerkSecret, ResendSecret: resendSecret,
				Tolerance: 5 * time.Minute, MaxBodyBytes: opts.maxBody},
		},
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL

	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = disp.Run(ctx) }()
	if opts.worker {
		f.knock = newKnockPeer(t)
		f.knock.down = opts.knockDown
		slClient := simplelogin.NewConsole(simplelogin.LogRecorder{Logger: logger})
		if opts.simpleLoginURL != "" {
			slClient = simplelogin.NewClient(simplelogin.WithAPIKey(slKey), simplelogin.WithBaseURL(opts.simpleLoginURL))
		}
		stripeActs := &activities.StripeActivities{Console: opts.stripeURL == ""}
		if opts.stripeURL != "" {
			stripeActs.Stripe = activities.NewStripeClient("sk_test_123", opts.stripeURL)
		}
		if opts.stripeConfigured {
			stripeActs = f.workerStripe(opts.stripeURL, logger)
		}
		knockOpts := []knock.ClientOption{knock.WithAPIKey(knockKey), knock.WithBaseURL(f.knock.srv.URL)}
		if opts.calls != nil {
			pm := appmetrics.NewProviderMetrics(prometheus.NewRegistry())
			pm.Observe(func(provider string, status int, d time.Duration) {
				opts.calls.Record(provider, d, callstats.HTTPClass(status))
			})
			knockOpts = append(knockOpts, knock.WithHTTPClient(&http.Client{
				Timeout: 10 * time.Second, Transport: pm.Transport(contract.ProviderKnock, http.DefaultTransport)}))
		}
		if opts.referrals.RewardCents == 0 {
			opts.referrals = activities.ReferralDefaults{RewardCents: 1000, RefundWindow: time.Hour, MinimumOrderCents: 1000, ClawbackWindow: time.Second}
		}
		resend := &activities.ResendActivities{Console: opts.resendURL == "", Keys: keySource{f.creds}, Store: f.creds, BaseURL: opts.resendURL}
		f.emails = &emailOutbox{}
		w := worker.New(f.temporal, worker.Options{TaskQueue: queue, Breaker: opts.breaker, Interceptors: []interceptor.WorkerInterceptor{f.emails}, Activities: worker.Activities{
			Orders:      &activities.OrderActivities{Store: f.store},
			Referrals:   &activities.ReferralActivities{Store: f.store, Defaults: opts.referrals, StripeConsole: stripeActs.Console},
			Inventory:   &activities.InventoryActivities{Store: f.store, Defaults: opts.stock, Signaller: f.starter},
			Aliases:     &activities.AliasStoreActivities{Store: f.store},
			SimpleLogin: &activities.SimpleLoginActivities{SL: slClient},
			Credentials: &activities.CredentialActivities{Store: f.creds},
			KeyVerifier: &activities.KeyVerifier{Keys: f.creds, Verify: func(_ context.Context, provider, secret string) (bool, string, error) {
				// The form is all a webhook secret can be checked for.
				return strings.HasPrefix(secret, "whsec_good"), "not the secret the provider shows", nil
			}},
			Resend:      resend,
			Email:       &activities.EmailActivities{Resend: resend, From: resendFrom, Store: f.store},
			Receipts:    &activities.ReceiptActivities{Store: f.store},
			Stripe:      stripeActs,
			Knock:       &activities.KnockActivities{Knock: knock.NewClient(knockOpts...)},
			DeadLetters: &activities.DeadLetterActivities{Store: f.store},
			Users:       &activities.UserStoreActivities{Store: f.store},
			Reconcile:   f.reconciler(opts, stripeActs, ib, disp),

			RotationTrigger: &activities.RotationTriggerActivities{Starter: worker.KeyRotationStarter(f.starter)},
		}})
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
		f.workers = w
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

// workerStripe builds the Stripe activities as the worker does, from a
// config that sets a Stripe secret key (stripe-mock accepts sk_test_123)
// and apiURL as Stripe's API, after seeding that key into the credential
// store as a worker start does.
func (f *fixture) workerStripe(apiURL string, logger *slog.Logger) *activities.StripeActivities {
	f.t.Helper()
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: []string{
		"CRMFLOW_STRIPE_SECRET_KEY=sk_test_123", "CRMFLOW_STRIPE_API_URL=" + apiURL}})
	require.NoError(f.t, err)
	require.NoError(f.t, f.creds.SeedAll(context.Background(), cfg.ConfiguredKeys()))
	return worker.NewActivities(cfg, f.store, f.creds, logger, nil, f.starter).Stripe
}

// seedOrder creates a customer and a pending 42.00 EUR order.
func (f *fixture) seedOrder(orderID, customerID string) {
	ctx := context.Background()
	require.NoError(f.t, f.store.UpsertCustomer(ctx, store.Customer{ID: customerID, Email: customerID + "@example.com"}))
	require.NoError(f.t, f.store.InsertOrder(ctx, store.Order{ID: orderID, CustomerID: customerID, AmountCents: 4200, Currency: "eur"}))
}

// stripeEvent builds a payment_intent event for an order, of its
// PaymentIntent pi_<orderID>.
func stripeEvent(eventID, typ, orderID string) []byte {
	return paymentIntentEvent(eventID, typ, orderID, "pi_"+orderID)
}

// paymentIntentEvent builds a payment_intent event of PaymentIntent piID
// whose metadata names orderID.
func paymentIntentEvent(eventID, typ, orderID, piID string) []byte {
	status, lastErr := "succeeded", "null"
	received := 4200
	if typ == "payment_intent.payment_failed" {
		status, lastErr, received = "requires_payment_method", `{"message":"Your card was declined."}`, 0
	}
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2024-06-20","type":%q,"created":%d,
"data":{"object":{"id":%q,"object":"payment_intent","amount":4200,"amount_received":%d,"currency":"eur",
"status":%q,"last_payment_error":%s,"metadata":{"order_id":%q}}}}`,
		eventID, typ, time.Now().Unix(), piID, received, status, lastErr, orderID))
}

// sign signs a payload the way Stripe does, at the given time.
func sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

func (f *fixture) postStripe(payload []byte, signature string) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/webhooks/stripe", bytes.NewReader(payload))
	require.NoError(f.t, err)
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	return f.do(req)
}

func (f *fixture) api(method, path, token string, body io.Reader) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	require.NoError(f.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return f.do(req)
}

func (f *fixture) do(req *http.Request) (int, map[string]any) {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	if len(raw) > 0 {
		require.NoError(f.t, json.Unmarshal(raw, &out), "body: %s", raw)
	}
	return resp.StatusCode, out
}

// inboxRows counts inbox rows, and those still waiting for hand-off.
func (f *fixture) inboxRows() (total, pending int) {
	f.t.Helper()
	err := f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE handed_off_at IS NULL) FROM webhook_inbox`).Scan(&total, &pending)
	require.NoError(f.t, err)
	return total, pending
}

// waitStarted waits for workflow id to exist: the dispatcher, or a parent
// run, starts it a moment after the call that causes it.
func (f *fixture) waitStarted(id string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		_, err := f.temporal.DescribeWorkflowExecution(context.Background(), id, "")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "%s was never started", id)
}

// waitParked waits for a run to park and returns the parked dead letters;
// it stops waiting early, with what is parked by then, once settled
// reports that the run went on instead.
func (f *fixture) waitParked(settled func() bool) []store.DeadLetter {
	f.t.Helper()
	var parked []store.DeadLetter
	require.Eventually(f.t, func() bool {
		var err error
		parked, err = f.store.ListDeadLetters(context.Background(), store.DeadLetterParked, 10)
		return err == nil && len(parked) > 0 || settled()
	}, 30*time.Second, 100*time.Millisecond, "the step parks")
	return parked
}

func (f *fixture) orderStatus(orderID string) string {
	f.t.Helper()
	o, err := f.store.GetOrder(context.Background(), orderID)
	require.NoError(f.t, err)
	return o.Status
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// clientOptions starts a workflow on the fixture's task queue.
func clientOptions(f *fixture, id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: f.queue}
}
