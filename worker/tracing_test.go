package worker_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripewebhook "github.com/stripe/stripe-go/v76/webhook"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/telemetry"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/webhooks"
	"github.com/crmflow/crmflow/workflows"
)

// TestTracingFollowsARequestIntoActivities sends a start-API request that
// carries a W3C traceparent through crmflow's HTTP server, the Temporal
// client, the OrderConfirmation workflow and its LoadOrder activity, and
// checks every span joined the caller's trace.
func TestTracingFollowsARequestIntoActivities(t *testing.T) {
	o := newTracedOrders(t, "c-trace", "o-trace")

	reg := prometheus.NewRegistry()
	hs := httptest.NewServer(api.Handler(api.HandlerOptions{
		HTTP: httpserver.Options{Logger: o.logger, Registry: reg, Tracer: o.tracing.TracerProvider()},
		Ops:  api.OpsDeps{Registry: reg},
		API: &api.Deps{Logger: o.logger, Store: o.st, Inbox: inbox.NewStore(o.st.Pool()),
			Starter: starter.New(o.tc, starter.Options{TaskQueue: o.queue, PaymentTimeout: time.Hour}),
			Auth:    traceAuth{}},
	}))
	t.Cleanup(hs.Close)

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/v1/orders/o-trace/confirmation", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer trace-token")
	req.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	// The activity's span ends once LoadOrder has run.
	require.Eventually(t, func() bool { return len(ended(o.rec, "RunActivity:LoadOrder")) > 0 },
		time.Minute, 50*time.Millisecond, "LoadOrder ran and its span ended")

	for _, name := range []string{"/v1/orders/{orderID}/confirmation", "StartWorkflow:OrderConfirmation",
		"RunWorkflow:OrderConfirmation", "StartActivity:LoadOrder", "RunActivity:LoadOrder"} {
		spans := started(o.rec, name)
		require.NotEmpty(t, spans, "span %s", name)
		for _, s := range spans {
			assert.Equal(t, callerTrace, s.SpanContext().TraceID().String(), "span %s joins the caller's trace", name)
		}
	}
	httpSpan := started(o.rec, "/v1/orders/{orderID}/confirmation")[0]
	assert.Equal(t, trace.SpanKindServer, httpSpan.SpanKind())
	start := started(o.rec, "StartWorkflow:OrderConfirmation")[0]
	assert.Equal(t, httpSpan.SpanContext().SpanID(), start.Parent().SpanID(), "the workflow start is a child of the request")

	// Probes and scrapes make no spans.
	resp, err = http.Get(hs.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, started(o.rec, "GET /healthz"))
}

// TestTracingFollowsAWebhookThroughTheInbox: a signed Stripe webhook that
// carries a traceparent is committed to the inbox and answered; the
// dispatcher's later hand-off to Temporal, and the workflow it signals,
// join the delivery's trace through the traceparent stored with the event.
func TestTracingFollowsAWebhookThroughTheInbox(t *testing.T) {
	o := newTracedOrders(t, "c-hook", "o-hook")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const secret = "whsec_trace_test"
	starterClient := starter.New(o.tc, starter.Options{TaskQueue: o.queue, PaymentTimeout: time.Hour})
	ib := inbox.NewStore(o.st.Pool())
	disp := inbox.NewDispatcher(ib, o.st, starterClient, o.logger, prometheus.NewRegistry(), inbox.DispatcherOptions{})
	reg := prometheus.NewRegistry()
	hs := httptest.NewServer(api.Handler(api.HandlerOptions{
		HTTP: httpserver.Options{Logger: o.logger, Registry: reg, Tracer: o.tracing.TracerProvider()},
		Ops:  api.OpsDeps{Registry: reg},
		Webhooks: &webhooks.Deps{Logger: o.logger, Registry: reg, Inbox: ib, Dispatcher: disp,
			Options: webhooks.Options{StripeSecret: secret, Tolerance: 5 * time.Minute, MaxBodyBytes: 1 << 20}},
	}))
	t.Cleanup(hs.Close)

	payload := []byte(`{"id":"evt_trace","object":"event","api_version":"2024-06-20","type":"payment_intent.succeeded",` +
		`"created":` + strconv.FormatInt(time.Now().Unix(), 10) + `,"data":{"object":{"id":"pi_trace","object":"payment_intent",` +
		`"amount":4200,"amount_received":4200,"currency":"eur","status":"succeeded","metadata":{"order_id":"o-hook"}}}}`)
	const callerTrace = "0af7651916cd43dd8448eb211c80319c"
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/webhooks/stripe", bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set("Stripe-Signature", stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{
		Payload: payload, Secret: secret, Timestamp: time.Now()}).Header)
	req.Header.Set("traceparent", "00-"+callerTrace+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	// The hand-off happens after the answer, from the dispatcher.
	go func() { _ = disp.Run(ctx) }()
	require.Eventually(t, func() bool { return len(ended(o.rec, "RunActivity:LoadOrder")) > 0 },
		time.Minute, 50*time.Millisecond, "the signalled workflow ran LoadOrder")
	for _, name := range []string{"/webhooks/stripe", "SignalWithStartWorkflow:OrderConfirmation",
		"RunWorkflow:OrderConfirmation", "RunActivity:LoadOrder"} {
		spans := started(o.rec, name)
		require.NotEmpty(t, spans, "span %s", name)
		for _, s := range spans {
			assert.Equal(t, callerTrace, s.SpanContext().TraceID().String(), "span %s joins the delivery's trace", name)
		}
	}
	hook := started(o.rec, "/webhooks/stripe")[0]
	signal := started(o.rec, "SignalWithStartWorkflow:OrderConfirmation")[0]
	assert.Equal(t, hook.SpanContext().SpanID(), signal.Parent().SpanID(), "the hand-off is a child of the delivery")
}

// tracedOrders is what both tracing tests run on: a span recorder behind
// crmflow's tracing, a Temporal client carrying its interceptors, a store
// holding one pending order, and a worker running OrderConfirmation on a
// queue of the test's own. The worker gets no tracing option: the client's
// interceptor reaches it.
type tracedOrders struct {
	rec     *tracetest.SpanRecorder
	tracing *telemetry.Tracing
	tc      client.Client
	st      *store.Store
	queue   string
	logger  *slog.Logger
}

func newTracedOrders(t *testing.T, customerID, orderID string) *tracedOrders {
	t.Helper()
	o := &tracedOrders{rec: tracetest.NewSpanRecorder(), logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var err error
	o.tracing, err = telemetry.NewTracingWithProvider(tp)
	require.NoError(t, err)

	srv := testenv.Temporal(t)
	o.tc, err = client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(),
		Logger: sdklog.NewStructuredLogger(o.logger), Interceptors: o.tracing.ClientInterceptors()})
	require.NoError(t, err)
	t.Cleanup(o.tc.Close)

	o.st = testenv.Store(t)
	ctx := context.Background()
	require.NoError(t, o.st.UpsertCustomer(ctx, store.Customer{ID: customerID, Email: customerID + "@example.com"}))
	require.NoError(t, o.st.InsertOrder(ctx, store.Order{ID: orderID, CustomerID: customerID, AmountCents: 4200, Currency: "eur"}))

	o.queue = testenv.TaskQueue(t)
	w := sdkworker.New(o.tc, o.queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.OrderConfirmation, workflow.RegisterOptions{Name: contract.OrderConfirmationType})
	w.RegisterActivity(&activities.OrderActivities{Store: o.st})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return o
}

// started returns the recorded spans whose name ends with name (the HTTP
// span is named by its route pattern, method included).
func started(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadWriteSpan {
	var out []sdktrace.ReadWriteSpan
	for _, s := range rec.Started() {
		if strings.HasSuffix(s.Name(), name) {
			out = append(out, s)
		}
	}
	return out
}

func ended(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func TestTracingOffByDefault(t *testing.T) {
	tracing, err := telemetry.NewTracing(context.Background(), config.TracingConfig{}, "")
	require.NoError(t, err)
	assert.Nil(t, tracing, "no exporter, no tracer provider")
	assert.Nil(t, tracing.ClientInterceptors())
	assert.Nil(t, tracing.TracerProvider())
	assert.NoError(t, tracing.Shutdown(context.Background()))
}

// otlpCollector is an OTLP/gRPC trace collector: the protocol's own service,
// recording what it is sent.
type otlpCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	requests []*collectortrace.ExportTraceServiceRequest
}

func (c *otlpCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTracingExportsOverOTLP sends a span through the otlp exporter to a
// collector listening on a local port.
func TestTracingExportsOverOTLP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	coll := &otlpCollector{}
	collectortrace.RegisterTraceServiceServer(gs, coll)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)

	ctx := context.Background()
	tracing, err := telemetry.NewTracing(ctx, config.TracingConfig{Exporter: config.TracingOTLP,
		Endpoint: "http://" + l.Addr().String(), SampleRatio: 1}, "crmflow@9.9.9")
	require.NoError(t, err)
	_, span := tracing.TracerProvider().Tracer("test").Start(ctx, "checkout")
	span.End()
	require.NoError(t, tracing.Shutdown(ctx), "shutdown sends what is buffered")

	coll.mu.Lock()
	defer coll.mu.Unlock()
	require.NotEmpty(t, coll.requests)
	rs := coll.requests[0].GetResourceSpans()[0]
	attrs := map[string]string{}
	for _, kv := range rs.GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	assert.Equal(t, "crmflow", attrs["service.name"])
	assert.Equal(t, "crmflow@9.9.9", attrs["service.version"])
	assert.Equal(t, "checkout", rs.GetScopeSpans()[0].GetSpans()[0].GetName())
}

// traceAuth accepts "trace-token" as a service token.
type traceAuth struct{}

func (traceAuth) Authenticate(_ context.Context, token string) (credentials.Principal, error) {
	if token != "trace-token" {
		return credentials.Principal{}, credentials.ErrUnauthenticated
	}
	return credentials.Principal{Scope: credentials.ScopeService, Name: "api_token"}, nil
}
