package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providerhttp"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// Activities are every activity struct the worker registers.
type Activities struct {
	Orders      *activities.OrderActivities
	Referrals   *activities.ReferralActivities
	Inventory   *activities.InventoryActivities
	Aliases     *activities.AliasStoreActivities
	SimpleLogin *activities.SimpleLoginActivities
	Credentials *activities.CredentialActivities
	KeyVerifier *activities.KeyVerifier
	Resend      *activities.ResendActivities
	// Email sends templated email on Resend's queue; Receipts reads what a
	// receipt says, on the workflow queue.
	Email       *activities.EmailActivities
	Receipts    *activities.ReceiptActivities
	Stripe      *activities.StripeActivities
	Knock       *activities.KnockActivities
	DeadLetters *activities.DeadLetterActivities
	Retention   *activities.RetentionActivities
	Reconcile   *activities.ReconcileActivities
	// RotationTrigger starts the rotations the key-rotation Schedules ask
	// for, at their documented IDs.
	RotationTrigger *activities.RotationTriggerActivities
	// Users writes Clerk users to the customers table and finds their aliases.
	Users *activities.UserStoreActivities
}

// ActivityOption adjusts how NewActivities builds the provider clients.
type ActivityOption func(*activityOptions)

type activityOptions struct {
	providerMetrics  *appmetrics.ProviderMetrics
	retentionMetrics *appmetrics.RetentionMetrics
	recoveredSink    activities.RecoveredEventSink
	recovered        activities.RecoveredCounter
}

// WithProviderMetrics measures every HTTP request to Knock, SimpleLogin and
// Resend (latency and status class, crmflow_provider_request_duration_seconds).
func WithProviderMetrics(m *appmetrics.ProviderMetrics) ActivityOption {
	return func(o *activityOptions) { o.providerMetrics = m }
}

// resendTimeout bounds one exchange with Resend, as the activities' own
// default does when they are given no client.
const resendTimeout = 30 * time.Second

// NewActivities builds the activities with clients from cfg.
//
// Console mode is decided here, once, per provider, from config: a provider
// is in console mode (its calls recorded, not sent) exactly when config
// sets no key for it, which is what /readyz, `crmflow dev` and `crmflow
// config` report (config.ConsoleProviders). A key stored later does not
// switch a console provider to sending; configuring it and restarting
// does.
//
// Every other provider's key (Stripe, Knock, SimpleLogin, Resend) is read
// from the credential store at each call: key rotation replaces it there,
// and config only seeds the store at start (credentials.Store.SeedAll).
// With no active key (revoked, say) such a provider's calls fail with a
// non-retryable <Title>CredentialMissing and the step parks for an
// operator; nothing is recorded in their place.
//
// starts is how the inventory scan signals SKUs and the key-rotation
// Schedules' trigger starts rotations; nil leaves both without (their
// activities then fail, non-retryably).
func NewActivities(cfg *config.Config, st *store.Store, creds *credentials.Store, logger *slog.Logger,
	reporter activities.Reporter, starts *starter.Starter, opts ...ActivityOption) Activities {
	var (
		signaller activities.StockSignaller
		rotations activities.KeyRotationStarter
	)
	if starts != nil {
		signaller, rotations = starts, KeyRotationStarter(starts)
	}
	var o activityOptions
	for _, opt := range opts {
		opt(&o)
	}
	pm := o.providerMetrics
	console := consoleProviders(cfg)
	a := Activities{
		Credentials: &activities.CredentialActivities{Store: creds},
		KeyVerifier: &activities.KeyVerifier{Verify: keyVerifier(cfg), Keys: creds},
		Resend: &activities.ResendActivities{Console: console[contract.ProviderResend], Keys: creds, Store: creds, BaseURL: cfg.Resend.APIURL,
			HTTPClient: pm.Client(contract.ProviderResend, &http.Client{Timeout: resendTimeout})},
		Inventory: &activities.InventoryActivities{Store: st, Signaller: signaller, Defaults: activities.StockDefaults{
			Debounce:           cfg.Inventory.Debounce,
			Cooldown:           cfg.Inventory.Cooldown,
			EscalateAfter:      cfg.Inventory.EscalateAfter,
			Audience:           cfg.Inventory.AlertAudience,
			EscalationAudience: cfg.Inventory.EscalationAudience,
		}},
		Orders: &activities.OrderActivities{Store: st},
		Referrals: &activities.ReferralActivities{Store: st, StripeConsole: console[contract.ProviderStripe],
			Defaults: activities.ReferralDefaults{
				RewardCents:       cfg.Referrals.RewardCents,
				RefundWindow:      cfg.Referrals.RefundWindow,
				MinimumOrderCents: cfg.Referrals.MinimumOrderCents,
				ClawbackWindow:    cfg.Referrals.ClawbackWindow,
			}},
		Stripe: &activities.StripeActivities{Console: console[contract.ProviderStripe], Keys: creds, APIURL: cfg.Stripe.APIURL,
			HTTPClient: activities.HeartbeatEachCall(pm.Client(contract.ProviderStripe, &http.Client{Timeout: providers.StripeHTTPTimeout}))},
		DeadLetters: &activities.DeadLetterActivities{Store: st, Reporter: reporter},
		Retention:   &activities.RetentionActivities{Store: st, Counter: o.retentionMetrics},
	}
	a.Email = &activities.EmailActivities{Resend: a.Resend, From: cfg.Resend.From, Store: st}
	a.Receipts = &activities.ReceiptActivities{Store: st}
	a.Reconcile = reconcileActivities(st, a.Stripe, o)
	a.RotationTrigger = &activities.RotationTriggerActivities{Starter: rotations}
	a.Aliases = &activities.AliasStoreActivities{Store: st}
	a.SimpleLogin = &activities.SimpleLoginActivities{SL: providers.NewSimpleLoginClient(
		clientOptions(cfg, creds, pm, logger, contract.ProviderSimpleLogin, console[contract.ProviderSimpleLogin]))}
	a.Knock = &activities.KnockActivities{Knock: providers.NewKnockClient(
		clientOptions(cfg, creds, pm, logger, contract.ProviderKnock, console[contract.ProviderKnock]))}
	a.Users = &activities.UserStoreActivities{Store: st}
	return a
}

// consoleProviders are the providers in console mode, by name: those config
// sets no key for (config.ConsoleProviders, which /readyz reports).
func consoleProviders(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	for _, name := range cfg.ConsoleProviders() {
		out[name] = true
	}
	return out
}

// clientOptions are the options of a provider's client: its API URL from
// cfg, console mode as decided at start, otherwise its key read from the
// credential store at each call, and an HTTP client whose requests are
// measured.
func clientOptions(cfg *config.Config, creds *credentials.Store, pm *appmetrics.ProviderMetrics, logger *slog.Logger,
	name string, console bool) providers.ClientOptions {
	p, _ := providers.Lookup(name)
	return providers.ClientOptions{
		BaseURL: cfg.StringAt(p.URLKey),
		Key: func(ctx context.Context) (string, error) {
			return creds.ActiveKey(ctx, p.Key.Provider, p.Key.Name)
		},
		Console: console,
		// Multi-call activities heartbeat at each call (SimpleLogin's).
		HTTPClient: activities.HeartbeatEachCall(pm.Client(p.Name, &http.Client{Timeout: providerhttp.DefaultTimeout})),
		Logger:     logger,
	}
}

// KeyRotationStarter is s as the rotation Schedules' trigger activity
// needs it: it starts or joins a provider's rotation and answers the run.
func KeyRotationStarter(s *starter.Starter) activities.KeyRotationStarter {
	return keyRotationStarter{s: s}
}

type keyRotationStarter struct{ s *starter.Starter }

func (k keyRotationStarter) StartOrJoinKeyRotation(ctx context.Context, provider, requestedBy string) (string, error) {
	run, err := k.s.StartKeyRotation(ctx, provider, requestedBy)
	if err != nil {
		return "", fmt.Errorf("start or join the %s rotation: %w", provider, err)
	}
	return run.RunID, nil
}
