package worker_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// countingPeer stands in for a provider's API and counts what reaches it:
// these tests are about calls that must never be sent.
type countingPeer struct {
	*httptest.Server
	hits atomic.Int32
}

func newCountingPeer(t *testing.T) *countingPeer {
	p := &countingPeer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.hits.Add(1)
		http.Error(w, `{"error":"unexpected call"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(p.Close)
	return p
}

// providerCall runs one activity of a provider, as a workflow would, and
// reports whether it was recorded (console mode) rather than sent.
type providerCall struct {
	provider string
	run      func(env *testsuite.TestActivityEnvironment, acts worker.Activities) (console bool, err error)
}

// providerCalls is one call of each provider's activities, the ones whose
// success a console mode would fake: the payment check, the referral
// credit, a notification, an alias, a Resend key.
var providerCalls = []providerCall{
	{contract.ProviderStripe, func(env *testsuite.TestActivityEnvironment, acts worker.Activities) (bool, error) {
		env.RegisterActivity(acts.Stripe)
		snap := &activities.PaymentIntentSnapshot{ID: "pi_1", Amount: 4200, AmountReceived: 4200, Currency: "eur", Status: "succeeded"}
		out, err := decode[activities.PaymentIntentSnapshot](env.ExecuteActivity(acts.Stripe.RetrievePaymentIntent,
			activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1", Snapshot: snap}))
		// Console mode answers with the webhook's own snapshot; the peer
		// Stripe of these tests answers nothing.
		return err == nil && out.ID == snap.ID, err
	}},
	{contract.ProviderStripe, func(env *testsuite.TestActivityEnvironment, acts worker.Activities) (bool, error) {
		env.RegisterActivity(acts.Stripe)
		out, err := decode[activities.CreditCustomerBalanceOutput](env.ExecuteActivity(acts.Stripe.CreditCustomerBalance,
			activities.CreditCustomerBalanceInput{CustomerID: "cus_1", AmountCents: 1000, Currency: "eur", IdempotencyKey: "referral-reward/r1/credit"}))
		return out.Console, err
	}},
	{contract.ProviderKnock, func(env *testsuite.TestActivityEnvironment, acts worker.Activities) (bool, error) {
		env.RegisterActivity(acts.Knock)
		out, err := decode[activities.NotifyOutput](env.ExecuteActivity(acts.Knock.Notify,
			activities.NotifyInput{Workflow: "order-confirmation", Recipients: []string{"c1"}, IdempotencyKey: "order-confirmation/o1/notify"}))
		return out.Console, err
	}},
	{contract.ProviderSimpleLogin, func(env *testsuite.TestActivityEnvironment, acts worker.Activities) (bool, error) {
		env.RegisterActivity(acts.SimpleLogin)
		out, err := decode[activities.AliasOutput](env.ExecuteActivity(acts.SimpleLogin.CreateAlias,
			activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom}))
		return out.Console, err
	}},
	{contract.ProviderResend, func(env *testsuite.TestActivityEnvironment, acts worker.Activities) (bool, error) {
		env.RegisterActivity(acts.Resend)
		out, err := decode[activities.CreateAPIKeyOutput](env.ExecuteActivity(acts.Resend.CreateAPIKey,
			activities.CreateAPIKeyInput{Name: activities.ResendKeyName("r1"), Permission: activities.ResendFullAccess}))
		return out.Console, err
	}},
}

// decode is an activity's output, the zero value when it failed.
func decode[T any](val interface{ Get(any) error }, err error) (*T, error) {
	var out T
	if err != nil {
		return &out, err
	}
	return &out, val.Get(&out)
}

// workerActivities builds the activities as the worker does, from config
// with env, over a fresh credential store that config seeded.
func workerActivities(t *testing.T, env []string, opts ...worker.ActivityOption) (worker.Activities, *credentials.Store) {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: env})
	require.NoError(t, err)
	keys, err := credentials.KeyringOf(cfg.MasterKeys())
	require.NoError(t, err)
	st := testenv.Store(t)
	creds := credentials.NewStore(st, keys, credentials.Options{CacheTTL: -1})
	require.NoError(t, creds.SeedAll(t.Context(), cfg.ConfiguredKeys()))
	acts := worker.NewActivities(cfg, st, creds, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, opts...)
	return acts, creds
}

// TestConfiguredProviderWithoutActiveKeyFailsTheStep: a provider configured
// at start whose active key is then revoked does not fall back to console
// mode; each call fails, before anything is sent, with a non-retryable
// <Title>CredentialMissing, so the step parks for an operator instead of
// reporting a success that never happened.
func TestConfiguredProviderWithoutActiveKeyFailsTheStep(t *testing.T) {
	stripePeer, knockPeer, slPeer, resendPeer := newCountingPeer(t), newCountingPeer(t), newCountingPeer(t), newCountingPeer(t)
	acts, creds := workerActivities(t, []string{
		"CRMFLOW_STRIPE_SECRET_KEY=sk_test_123", "CRMFLOW_STRIPE_API_URL=" + stripePeer.URL,
		"CRMFLOW_KNOCK_API_KEY=sk_test_knock", "CRMFLOW_KNOCK_API_URL=" + knockPeer.URL,
		"CRMFLOW_SIMPLELOGIN_API_KEY=sl_test", "CRMFLOW_SIMPLELOGIN_API_URL=" + slPeer.URL,
		"CRMFLOW_RESEND_API_KEY=re_test", "CRMFLOW_RESEND_API_URL=" + resendPeer.URL,
	})
	for _, name := range []string{contract.ProviderStripe, contract.ProviderKnock, contract.ProviderSimpleLogin, contract.ProviderResend} {
		p, _ := providers.Lookup(name)
		require.NoError(t, creds.Revoke(t.Context(), p.Key.Provider, p.Key.Name, 1), name)
	}

	for _, call := range providerCalls {
		p, _ := providers.Lookup(call.provider)
		var s testsuite.WorkflowTestSuite
		console, err := call.run(s.NewTestActivityEnvironment(), acts)
		var appErr *temporal.ApplicationError
		if !assert.ErrorAs(t, err, &appErr, "%s: a configured provider without a key must fail (recorded: %t)", call.provider, console) {
			continue
		}
		assert.Equal(t, p.Title+"CredentialMissing", appErr.Type(), "%s: %v", call.provider, err)
		assert.True(t, appErr.NonRetryable(), "%s: no retry brings a key back; an operator must", call.provider)
	}
	for name, peer := range map[string]*countingPeer{"stripe": stripePeer, "knock": knockPeer, "simplelogin": slPeer, "resend": resendPeer} {
		assert.Zero(t, peer.hits.Load(), "%s: nothing is sent without a key", name)
	}
}

// TestConsoleModeIsDecidedAtStart: a provider with no key in config runs in
// console mode for the worker's life, recording its calls; a key that shows
// up in the credential store later does not switch it to sending (that
// takes configuring the key and a restart), so what /readyz and the dev
// banner report (config.ConsoleProviders) is what the worker does.
func TestConsoleModeIsDecidedAtStart(t *testing.T) {
	stripePeer, knockPeer, slPeer, resendPeer := newCountingPeer(t), newCountingPeer(t), newCountingPeer(t), newCountingPeer(t)
	acts, creds := workerActivities(t, []string{
		"CRMFLOW_STRIPE_API_URL=" + stripePeer.URL, "CRMFLOW_KNOCK_API_URL=" + knockPeer.URL,
		"CRMFLOW_SIMPLELOGIN_API_URL=" + slPeer.URL, "CRMFLOW_RESEND_API_URL=" + resendPeer.URL,
	})
	for _, round := range []string{"no key anywhere", "a key stored after start"} {
		for _, call := range providerCalls {
			var s testsuite.WorkflowTestSuite
			console, err := call.run(s.NewTestActivityEnvironment(), acts)
			require.NoError(t, err, "%s, %s: console mode records", round, call.provider)
			assert.True(t, console, "%s, %s: recorded, not sent", round, call.provider)
		}
		for _, name := range []string{contract.ProviderStripe, contract.ProviderKnock, contract.ProviderSimpleLogin, contract.ProviderResend} {
			p, _ := providers.Lookup(name)
			_, err := creds.Put(t.Context(), p.Key.Provider, p.Key.Name, "sk_test_stored_later", credentials.StatusActive)
			require.NoError(t, err)
		}
	}
	for name, peer := range map[string]*countingPeer{"stripe": stripePeer, "knock": knockPeer, "simplelogin": slPeer, "resend": resendPeer} {
		assert.Zero(t, peer.hits.Load(), "%s: console mode sends nothing", name)
	}
}
