package doctor_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/doctortest"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// loadConfig resolves a config the way crmflow does, from env vars only.
func loadConfig(t *testing.T, env ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Environ: env})
	require.NoError(t, err)
	return cfg
}

// setup is a database, a namespace and the provider stand-ins, with the
// configuration that points at them.
type setup struct {
	cfg   *config.Config
	dbURL string
	peers *doctortest.Peers
}

func newSetup(t *testing.T, dbURL, namespace string, keys ...string) *setup {
	peers := doctortest.NewPeers(t)
	env := append([]string{
		"CRMFLOW_DATABASE_URL=" + dbURL,
		"CRMFLOW_MASTER_KEY=" + testenv.MasterKey,
		"CRMFLOW_TEMPORAL_ADDRESS=" + testenv.Temporal(t).FrontendAddr(),
		"CRMFLOW_TEMPORAL_NAMESPACE=" + namespace,
		"CRMFLOW_STRIPE_API_URL=" + testenv.StripeMockURL(t),
		"CRMFLOW_KNOCK_API_URL=" + peers.Knock.URL,
		"CRMFLOW_SIMPLELOGIN_API_URL=" + peers.SimpleLogin.URL,
		"CRMFLOW_RESEND_API_URL=" + peers.Resend.URL,
	}, keys...)
	return &setup{cfg: loadConfig(t, env...), dbURL: dbURL, peers: peers}
}

// credentialStore opens the credential store as the worker does and seeds
// it from config, as every worker start does.
func (s *setup) credentialStore(t *testing.T) *credentials.Store {
	ctx := context.Background()
	st, err := store.Open(ctx, s.dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	keys, err := credentials.KeyringOf(s.cfg.MasterKeys())
	require.NoError(t, err)
	creds := credentials.NewStore(st, keys, credentials.Options{})
	require.NoError(t, creds.SeedAll(ctx, s.cfg.ConfiguredKeys()))
	return creds
}

func (s *setup) run(t *testing.T) ([]doctor.Result, string) {
	results := (&doctor.Checker{Config: s.cfg, Timeout: 30 * time.Second}).Run(context.Background())
	var out bytes.Buffer
	require.NoError(t, doctor.Write(&out, results))
	t.Log("\n" + out.String())
	return results, out.String()
}

func byName(results []doctor.Result) map[string]doctor.Result {
	m := map[string]doctor.Result{}
	for _, r := range results {
		m[r.Name] = r
	}
	return m
}

func names(results []doctor.Result) []string {
	var out []string
	for _, r := range results {
		out = append(out, r.Name)
	}
	return out
}

func latestMigration(t *testing.T, dbURL string) int64 {
	ms, err := store.MigrationStatus(context.Background(), dbURL)
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	return ms[len(ms)-1].Version
}

// TestGoodSetup: everything in place, every check passes and says what it
// saw; a provider without a key is console mode, not a failure.
func TestGoodSetup(t *testing.T) {
	ns, tc := doctortest.Namespace(t, true)
	s := newSetup(t, testenv.DatabaseURL(t), ns,
		"CRMFLOW_STRIPE_SECRET_KEY="+doctortest.StripeKey,
		"CRMFLOW_KNOCK_API_KEY="+doctortest.KnockKey,
		"CRMFLOW_RESEND_API_KEY="+doctortest.ResendKey,
	)
	s.credentialStore(t)
	doctortest.Eventually(t, "create schedules", func(ctx context.Context) error { return worker.EnsureSchedules(ctx, tc, s.cfg, "") })

	results, out := s.run(t)
	assert.Equal(t, []string{"config", "postgres", "temporal", "search-attributes", "schedules", "stripe", "knock", "simplelogin", "resend", "tokens"}, names(results))
	assert.Zero(t, doctor.Failed(results), out)
	got := byName(results)
	assert.Equal(t, "valid; console mode (no key): simplelogin", got["config"].Detail)
	assert.Equal(t, fmt.Sprintf("migrated to %d", latestMigration(t, s.dbURL)), got["postgres"].Detail)
	assert.Equal(t, fmt.Sprintf("%s answers; namespace %q registered", s.cfg.Temporal.Address, ns), got["temporal"].Detail)
	assert.Equal(t, "all 7 registered", got["search-attributes"].Detail)
	// inventory-scan, data-retention, stripe-reconcile and the key rotations of crmflow,
	// resend, stripe and knock (no webhook secret is configured here).
	assert.Equal(t, "all 7 present", got["schedules"].Detail)
	assert.Equal(t, "key accepted (GET /v1/balance); key from the credential store (stripe/api_key@v1)", got["stripe"].Detail)
	assert.Equal(t, "key accepted (GET /v1/users/crmflow-key-check); key from the credential store (knock/api_key@v1)", got["knock"].Detail)
	assert.Equal(t, "key accepted (GET /api-keys); key from the credential store (resend/api_key@v1)", got["resend"].Detail)
	assert.Equal(t, "console mode: no key, calls are recorded, not sent", got["simplelogin"].Detail)
	assert.Equal(t, "set simplelogin.api_key (CRMFLOW_SIMPLELOGIN_API_KEY) to send for real", got["simplelogin"].Fix)

	assert.Contains(t, out, "ok   postgres           migrated to ")
	assert.Contains(t, out, "ok   knock              key accepted")
	for _, secret := range []string{doctortest.StripeKey, doctortest.KnockKey, doctortest.ResendKey, config.DevMasterKey, testenv.MasterKey} {
		assert.NotContains(t, out, secret)
	}
	var calls []string
	for _, r := range s.peers.Requests() {
		calls = append(calls, r.Provider+" "+r.Method+" "+r.Path)
	}
	assert.ElementsMatch(t, []string{"knock GET /v1/users/crmflow-key-check", "resend GET /api-keys"}, calls,
		"one call per configured provider, none for the one in console mode")
}

// TestBadKeys: the credential store's key is what counts, as for the worker:
// a key rotated to one Knock rejects fails with the rotation as the fix even
// though config still holds the good one; a bad configured key that seeded
// the store fails; a sending-only Resend key cannot rotate itself.
func TestBadKeys(t *testing.T) {
	ns, tc := doctortest.Namespace(t, true)
	s := newSetup(t, testenv.DatabaseURL(t), ns,
		"CRMFLOW_STRIPE_SECRET_KEY=rk_live_not_a_test_key",
		"CRMFLOW_KNOCK_API_KEY="+doctortest.KnockKey,
		"CRMFLOW_SIMPLELOGIN_API_KEY=sl-wrong",
		"CRMFLOW_RESEND_API_KEY="+doctortest.ResendSendingKey,
	)
	creds := s.credentialStore(t)
	ctx := context.Background()
	v, err := creds.Put(ctx, "knock", "api_key", "sk_test_rotated_but_revoked", "pending")
	require.NoError(t, err)
	require.NoError(t, creds.Activate(ctx, "knock", "api_key", v))
	doctortest.Eventually(t, "create schedules", func(ctx context.Context) error { return worker.EnsureSchedules(ctx, tc, s.cfg, "") })

	results, out := s.run(t)
	got := byName(results)
	assert.Equal(t, 4, doctor.Failed(results), out)
	for _, name := range []string{"config", "postgres", "temporal", "search-attributes", "schedules"} {
		assert.True(t, got[name].OK, name)
	}

	assert.False(t, got["knock"].OK)
	assert.Equal(t, "401 Unauthorized: Knock rejects the key in the credential store (knock/api_key@v2) (authentication_required)", got["knock"].Detail)
	assert.Equal(t, "rotate it: `crmflow rotation start knock`, then pipe a working key into `crmflow rotation submit-key knock`", got["knock"].Fix)
	assert.Equal(t, "401 Unauthorized: Stripe rejects the key in the credential store (stripe/api_key@v1) (invalid_request_error)", got["stripe"].Detail)
	assert.Equal(t, "401 Unauthorized: SimpleLogin rejects the key in the credential store (simplelogin/api_key@v1) (Wrong api key)", got["simplelogin"].Detail)
	assert.False(t, got["resend"].OK)
	assert.Contains(t, got["resend"].Detail, "restricted_api_key")
	assert.Contains(t, got["resend"].Fix, "full_access")

	assert.Contains(t, out, "FAIL knock              401 Unauthorized: Knock rejects the key in the credential store (knock/api_key@v2) (authentication_required); rotate it: `crmflow rotation start knock`")
	for _, secret := range []string{"rk_live_not_a_test_key", doctortest.KnockKey, "sk_test_rotated_but_revoked", "sl-wrong", doctortest.ResendSendingKey} {
		assert.NotContains(t, out, secret)
	}
}

// TestReportsConsoleModeAsTheWorkerDecidesIt: the worker decides console
// mode at start, from config. A configured provider whose keys were all
// revoked is not in console mode (its calls fail and park); a provider with
// no configured key is, even when the credential store holds a key for it.
func TestReportsConsoleModeAsTheWorkerDecidesIt(t *testing.T) {
	ns, _ := doctortest.Namespace(t, true)
	s := newSetup(t, testenv.DatabaseURL(t), ns, "CRMFLOW_KNOCK_API_KEY="+doctortest.KnockKey)
	creds := s.credentialStore(t)
	ctx := context.Background()
	require.NoError(t, creds.Revoke(ctx, "knock", "api_key", 1))
	_, err := creds.Put(ctx, "simplelogin", "api_key", "sl-stored-only", credentials.StatusActive)
	require.NoError(t, err)

	results, out := s.run(t)
	got := byName(results)
	assert.False(t, got["knock"].OK)
	assert.Equal(t, "no active key in the credential store (1 versions, none active): its calls fail with KnockCredentialMissing and park", got["knock"].Detail)
	assert.True(t, got["simplelogin"].OK)
	assert.Equal(t, "console mode: no key configured, calls are recorded, not sent; the credential store's keys are not used", got["simplelogin"].Detail)
	assert.Equal(t, "set simplelogin.api_key (CRMFLOW_SIMPLELOGIN_API_KEY) and restart the worker to send for real, with the key the credential store holds", got["simplelogin"].Fix)
	assert.Equal(t, "console mode: no key, calls are recorded, not sent", got["resend"].Detail)
	assert.NotContains(t, out, "sl-stored-only")
}

// TestUnmigratedAndUnprepared: a database without crmflow's migrations and
// a namespace without its search attributes or schedules fail with the
// command that fixes each. The credential store cannot be read from such a
// database: the providers are checked with the configured keys.
func TestUnmigratedAndUnprepared(t *testing.T) {
	ns, _ := doctortest.Namespace(t, false)
	s := newSetup(t, emptyDatabase(t), ns, "CRMFLOW_KNOCK_API_KEY="+doctortest.KnockKey)

	results, out := s.run(t)
	got := byName(results)
	assert.False(t, got["postgres"].OK)
	assert.Regexp(t, `^migrated to 0 of \d+; pending: 00001_crm_tables.sql, 00002_crmflow_tables.sql, `, got["postgres"].Detail)
	assert.Equal(t, "run `crmflow migrate`", got["postgres"].Fix)
	assert.True(t, got["temporal"].OK, out)
	assert.Equal(t, "missing in namespace "+ns+": CrmflowAliasID, CrmflowCustomerID, CrmflowOrderID, CrmflowParked, CrmflowProvider, CrmflowSKU, CrmflowStep", got["search-attributes"].Detail)
	assert.Equal(t, "run `crmflow migrate --temporal`", got["search-attributes"].Fix)
	assert.Equal(t, "missing: inventory-scan, data-retention, key-rotation-crmflow, key-rotation-knock", got["schedules"].Detail)
	assert.Contains(t, got["schedules"].Fix, "crmflow worker")
	assert.True(t, got["knock"].OK, "checked with the configured key")
	assert.Equal(t, "key accepted (GET /v1/users/crmflow-key-check); key from config (knock.api_key; the credential store was not read)", got["knock"].Detail)
	assert.True(t, got["stripe"].OK, "console mode")
}

// TestUnreachable: with PostgreSQL and Temporal down, each fails once with
// where to look, the Temporal checks that need a namespace are left out,
// and the providers are checked with the configured keys.
func TestUnreachable(t *testing.T) {
	s := newSetup(t, fmt.Sprintf("postgres://crmflow:hunter2secret@%s/crmflow?sslmode=disable", closedAddr(t)), "default",
		"CRMFLOW_KNOCK_API_KEY="+doctortest.KnockKey)
	s.cfg.Temporal.Address = closedAddr(t)

	results, out := s.run(t)
	assert.Equal(t, []string{"config", "postgres", "temporal", "stripe", "knock", "simplelogin", "resend", "tokens"}, names(results))
	got := byName(results)
	assert.False(t, got["postgres"].OK)
	assert.True(t, strings.HasPrefix(got["postgres"].Detail, "cannot connect: "), got["postgres"].Detail)
	assert.Contains(t, got["postgres"].Fix, "CRMFLOW_DATABASE_URL")
	assert.False(t, got["temporal"].OK)
	assert.Contains(t, got["temporal"].Detail, "cannot reach "+s.cfg.Temporal.Address)
	assert.Contains(t, got["temporal"].Fix, "CRMFLOW_TEMPORAL_ADDRESS")
	assert.True(t, got["knock"].OK, out)
	assert.Equal(t, "key accepted (GET /v1/users/crmflow-key-check); key from config (knock.api_key; the credential store was not read)", got["knock"].Detail)
	assert.NotContains(t, out, "hunter2secret")
	assert.Equal(t, 2, doctor.Failed(results))
}

// TestUnknownNamespace: Temporal answers but the namespace is not there.
func TestUnknownNamespace(t *testing.T) {
	s := newSetup(t, testenv.DatabaseURL(t), "no-such-namespace")
	results, out := s.run(t)
	got := byName(results)
	assert.NotContains(t, names(results), "schedules")
	assert.False(t, got["temporal"].OK, out)
	assert.Equal(t, fmt.Sprintf(`%s answers, but namespace "no-such-namespace" does not exist`, s.cfg.Temporal.Address), got["temporal"].Detail)
	assert.Contains(t, got["temporal"].Fix, "temporal operator namespace create --namespace no-such-namespace")
}

// TestInvalidConfig: every problem is named and the other checks still run.
func TestInvalidConfig(t *testing.T) {
	s := newSetup(t, testenv.DatabaseURL(t), "default")
	s.cfg.MasterKey = ""
	s.cfg.LogLevel = "loud"
	results, _ := s.run(t)
	got := byName(results)
	assert.False(t, got["config"].OK)
	assert.Contains(t, got["config"].Detail, "master_key (CRMFLOW_MASTER_KEY): required")
	assert.Contains(t, got["config"].Detail, `log_level (CRMFLOW_LOG_LEVEL): must be debug, info, warn or error, got "loud"`)
	assert.True(t, got["postgres"].OK)
}

// TestCached: callers within the TTL share one run.
func TestCached(t *testing.T) {
	var runs atomic.Int64
	run := func(ctx context.Context) []doctor.Result {
		n := runs.Add(1)
		return []doctor.Result{{Name: "x", OK: true, Detail: fmt.Sprint(n)}}
	}
	cached := doctor.Cached(run, time.Hour)
	first := cached(context.Background())
	second := cached(context.Background())
	assert.Equal(t, first, second)
	assert.Equal(t, int64(1), runs.Load())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	uncached := doctor.Cached(func(ctx context.Context) []doctor.Result {
		return []doctor.Result{{Name: "ctx", OK: ctx.Err() == nil}}
	}, 0)
	assert.True(t, uncached(ctx)[0].OK, "a caller going away does not cancel the shared run")
}

// emptyDatabase creates a database with no migrations applied.
func emptyDatabase(t *testing.T) string {
	srv := testenv.Postgres(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	name := fmt.Sprintf("doctor_empty_%d", time.Now().UnixNano())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), srv.URL())
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(context.Background())
		}
	})
	cfg, err := pgx.ParseConfig(srv.URL())
	require.NoError(t, err)
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestConfiguredTokenNoLongerInTheStoreIsAWarning: the store decides which
// tokens are valid; a configured one it no longer accepts (rotated or
// revoked) is named as a warning, not a failure.
func TestConfiguredTokenNoLongerInTheStoreIsAWarning(t *testing.T) {
	ns, _ := doctortest.Namespace(t, false)
	s := newSetup(t, testenv.DatabaseURL(t), ns,
		"CRMFLOW_API_TOKENS=svc-token-doctor-0123456789", "CRMFLOW_OPERATOR_TOKENS=olga=olga-token-doctor-0123456789")
	creds := s.credentialStore(t)
	require.NoError(t, creds.SeedTokens(context.Background(), s.cfg.ServiceTokens(), s.cfg.Operators()))
	results, _ := s.run(t)
	assert.Equal(t, "every configured token (1 service, 1 operator) is valid in the credential store", byName(results)["tokens"].Detail)

	require.NoError(t, creds.Revoke(context.Background(), "crmflow_operator", "olga", 1))
	results, out := s.run(t)
	tokens := byName(results)["tokens"]
	assert.True(t, tokens.OK, out)
	assert.Equal(t, "warning: operator_tokens.olga no longer valid in the credential store (rotated or revoked there)", tokens.Detail)
	assert.NotContains(t, out, "olga-token-doctor", "no token in the report")
}
