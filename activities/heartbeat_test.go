package activities_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// heartbeatCounter counts the heartbeats activities record, before the
// SDK's throttling merges them into fewer RPCs.
type heartbeatCounter struct {
	interceptor.WorkerInterceptorBase
	n atomic.Int32
}

func (c *heartbeatCounter) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &heartbeatInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, c: c}
}

type heartbeatInbound struct {
	interceptor.ActivityInboundInterceptorBase
	c *heartbeatCounter
}

func (i *heartbeatInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return i.Next.Init(&heartbeatOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: outbound}, c: i.c})
}

type heartbeatOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	c *heartbeatCounter
}

func (o *heartbeatOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	o.c.n.Add(1)
	o.Next.RecordHeartbeat(ctx, details...)
}

// heartbeats counts the heartbeats recorded in env's activities.
func heartbeats(env *testsuite.TestActivityEnvironment) *atomic.Int32 {
	c := &heartbeatCounter{}
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{c}})
	return &c.n
}

// TestMultiCallActivitiesHeartbeatAtEachCall: the SimpleLogin activities and
// the Stripe money steps record one heartbeat per HTTP call, so their
// heartbeat timeout only has to outlast one call's deadline.
func TestMultiCallActivitiesHeartbeatAtEachCall(t *testing.T) {
	t.Run("simplelogin", func(t *testing.T) {
		f := newFakeSimpleLogin(t)
		sl := simplelogin.NewClient(simplelogin.WithAPIKey(slTestKey), simplelogin.WithBaseURL(f.srv.URL),
			simplelogin.WithHTTPClient(activities.HeartbeatEachCall(&http.Client{Timeout: 10 * time.Second})))
		env, a := slEnv(sl)
		beats := heartbeats(env)

		_, err := env.ExecuteActivity(a.CreateAlias, activities.CreateAliasInput{
			AliasID: "a2", Mode: contract.AliasModeCustom, Prefix: "news"})
		require.NoError(t, err)
		require.Len(t, f.routes(), 4, "look, mailboxes, options, create")
		assert.EqualValues(t, 4, beats.Load())

		_, err = env.ExecuteActivity(a.SetAliasEnabled, activities.SetAliasEnabledInput{SimpleLoginID: 101, Enabled: false})
		require.NoError(t, err)
		require.Len(t, f.routes(), 6, "read, toggle")
		assert.EqualValues(t, 6, beats.Load())

		require.NoError(t, executeErr(env.ExecuteActivity(a.DeleteAlias, activities.DeleteAliasInput{SimpleLoginID: 101})))
		assert.EqualValues(t, len(f.routes()), beats.Load())
	})
	t.Run("stripe credit", func(t *testing.T) {
		s, clk, _ := standIn(t)
		acts := &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient(stripeTestKey, s.URL,
			activities.HeartbeatEachCall(s.Client()))}
		env := stripeEnv(t, acts)
		beats := heartbeats(env)
		_, err := env.ExecuteActivity(acts.CreditCustomerBalance, lookingCredit("referral-reward/ref-1/credit/1", clk.Now()))
		require.NoError(t, err)
		assert.Len(t, s.Creates(), 1)
		assert.EqualValues(t, 2, beats.Load(), "the look-up's page and the creation")
	})
}

// TestHeartbeatEachCallLeavesOtherCallsAlone: an activity that does not ask
// for heartbeats (one that records its own checkpoint, say) gets none from
// the transport, and a marked-less request outside any activity passes
// straight through.
func TestHeartbeatEachCallLeavesOtherCallsAlone(t *testing.T) {
	acts := &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient(stripeTestKey, testenv.StripeMockURL(t),
		activities.HeartbeatEachCall(&http.Client{Timeout: 10 * time.Second}))}
	env := stripeEnv(t, acts)
	beats := heartbeats(env)
	_, err := env.ExecuteActivity(acts.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_1"})
	require.NoError(t, err)
	assert.Zero(t, beats.Load())

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := activities.HeartbeatEachCall(nil).Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.EqualValues(t, 1, hits.Load())
}

func executeErr(_ converter.EncodedValue, err error) error { return err }
