package reliability

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/pgserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/workflows"
)

// ownPostgres is a PostgreSQL server for one test, which may stop it.
type ownPostgres struct {
	t    *testing.T
	opts pgserver.Options
	srv  *pgserver.Server
	// hold keeps the port while the test has the server down (holdPort).
	hold *testenv.PortHold
}

func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	return startPostgres(t, pgserver.Options{DataDir: filepath.Join(t.TempDir(), "pg")})
}

// startPostgres is startOwnPostgres with the server's options.
func startPostgres(t *testing.T, opts pgserver.Options) *ownPostgres {
	t.Helper()
	p := &ownPostgres{t: t, opts: opts}
	p.start()
	p.opts.Port = p.srv.Port() // a restart must come back where clients look
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, store.Migrate(ctx, p.srv.URL()))
	t.Cleanup(p.stop)
	return p
}

func (p *ownPostgres) start() {
	p.t.Helper()
	p.hold.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := pgserver.Start(ctx, p.opts)
	require.NoError(p.t, err, "start postgresql")
	p.srv = srv
}

// holdPort keeps the stopped server's port from other processes until
// start brings it back there.
func (p *ownPostgres) holdPort() {
	p.hold = testenv.HoldPort(p.t, p.opts.Port)
}

func (p *ownPostgres) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		p.t.Errorf("stop postgresql: %v", err)
	}
}

// expectUnavailable delivers an event while PostgreSQL is unusable: an
// answer must come back, and it must be 503 so the provider retries.
func expectUnavailable(t *testing.T, srv *proc, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sig := deliverStripeRequest(ctx, srv.url(), payload)
	r := do(sig)
	require.NoError(t, r.err, "the provider must get an answer, not a hung request")
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "%v", r.body)
	assert.Equal(t, "unavailable", errorCode(r.body))
}

// expectNotReady checks /readyz is red because of PostgreSQL.
func expectNotReady(t *testing.T, srv *proc) {
	t.Helper()
	r := readyz(t, srv)
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Equal(t, "not ready", r.Status)
	assert.Equal(t, "error", r.Checks["postgres"].Status, "postgres check: %+v", r.Checks)
}

// TestPostgresStoppedAnswers503 (scenario 5, stopped): with PostgreSQL shut
// down, a webhook is answered 503 (the provider retries) and /readyz is red
// naming postgres; once PostgreSQL is back, the retried delivery is
// accepted, /readyz is green, and both orders complete once.
func TestPostgresStoppedAnswers503(t *testing.T) {
	t.Parallel()
	pg := startOwnPostgres(t)
	s := newStack(t, stackOptions{databaseURL: pg.srv.URL()})
	s.worker("worker", nil)
	srv := s.serve("serve", nil)
	s.seedOrders("o-pg-before", "o-pg-during")
	s.deliverUntilAcked(paymentEvent("evt_pg_before", "payment_intent.succeeded", "o-pg-before", time.Now()), "evt_pg_before",
		map[string]string{confirmationKey("o-pg-before"): workflows.KnockOrderConfirmed}, srv.url)

	pg.stop()
	pg.holdPort()
	logf(t, "PostgreSQL stopped")
	during := paymentEvent("evt_pg_during", "payment_intent.succeeded", "o-pg-during", time.Now())
	expectUnavailable(t, srv, during)
	expectNotReady(t, srv)

	pg.start()
	s.databaseRestarted()
	logf(t, "PostgreSQL restarted")
	s.deliverUntilAcked(during, "evt_pg_during", map[string]string{confirmationKey("o-pg-during"): workflows.KnockOrderConfirmed}, srv.url)
	waitFor(t, time.Minute, "/readyz green again", func() bool { return readyz(t, srv).code == http.StatusOK })

	assert.Equal(t, "confirmed", s.orderResult("o-pg-before", 2*time.Minute))
	assert.Equal(t, "confirmed", s.orderResult("o-pg-during", 2*time.Minute))
	s.checkExactlyOnce()
}

// TestPostgresHangingAnswers503 (scenario 5, hanging): PostgreSQL stops
// answering without closing anything (a proxy between crmflow and the
// database stops forwarding, as a frozen host or a black-holed network
// would). The webhook still gets an answer, 503, and /readyz goes red
// naming postgres; when the database answers again everything resumes.
func TestPostgresHangingAnswers503(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	proxy, proxiedURL := s.databaseProxy()
	viaProxy := map[string]string{"CRMFLOW_DATABASE_URL": proxiedURL}
	s.worker("worker", viaProxy)
	srv := s.serve("serve", viaProxy)
	s.seedOrders("o-hang-before", "o-hang-during")
	s.deliverUntilAcked(paymentEvent("evt_hang_before", "payment_intent.succeeded", "o-hang-before", time.Now()), "evt_hang_before",
		map[string]string{confirmationKey("o-hang-before"): workflows.KnockOrderConfirmed}, srv.url)
	assert.Equal(t, "confirmed", s.orderResult("o-hang-before", 2*time.Minute))

	proxy.hang()
	logf(t, "PostgreSQL hangs")
	during := paymentEvent("evt_hang_during", "payment_intent.succeeded", "o-hang-during", time.Now())
	expectUnavailable(t, srv, during)
	expectNotReady(t, srv)
	// The start API is bounded too: its caller gets a 503, not a hung call.
	req, err := http.NewRequest(http.MethodPost, srv.url()+"/v1/inventory/sku-hang/stock-level", strings.NewReader(`{"level":3}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	apiClient := &http.Client{Timeout: 2 * time.Minute}
	resp, err := apiClient.Do(req)
	require.NoError(t, err, "the API caller must get an answer, not a hung request")
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	proxy.resume()
	logf(t, "PostgreSQL answers again")
	s.deliverUntilAcked(during, "evt_hang_during", map[string]string{confirmationKey("o-hang-during"): workflows.KnockOrderConfirmed}, srv.url)
	waitFor(t, time.Minute, "/readyz green again", func() bool { return readyz(t, srv).code == http.StatusOK })
	assert.Equal(t, "confirmed", s.orderResult("o-hang-during", 2*time.Minute))
	s.checkExactlyOnce()
}
