package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/pgserver"
	"github.com/crmflow/crmflow/internal/store"
)

// One PostgreSQL server for the whole test binary, its crmflow database
// migrated; tests use unique ids so they can share it and run in parallel.
var (
	serverURL string
	db        *store.Store
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "crmflow-store-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "pg")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start postgres:", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop postgres:", err)
		}
	}()
	serverURL = srv.URL()

	if err := store.Migrate(ctx, serverURL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if db, err = store.Open(ctx, serverURL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	return m.Run()
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := newDatabase(t)

	require.NoError(t, store.Migrate(ctx, dbURL))
	first, err := store.MigrationStatus(ctx, dbURL)
	require.NoError(t, err)
	require.NotEmpty(t, first)
	for _, m := range first {
		require.True(t, m.Applied, "%s not applied", m.Name)
		require.False(t, m.AppliedAt.IsZero())
	}
	require.Equal(t, "00001_crm_tables.sql", first[0].Name)
	rowsBefore := versionRows(t, dbURL)

	require.NoError(t, store.Migrate(ctx, dbURL))
	second, err := store.MigrationStatus(ctx, dbURL)
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Equal(t, rowsBefore, versionRows(t, dbURL), "second run recorded migrations again")
}

func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := newDatabase(t)

	const runners = 2
	errs := make([]error, runners)
	var wg sync.WaitGroup
	for i := range runners {
		wg.Go(func() { errs[i] = store.Migrate(ctx, dbURL) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "runner %d", i)
	}

	status, err := store.MigrationStatus(ctx, dbURL)
	require.NoError(t, err)
	// Each migration applied exactly once, plus goose's version-0 row.
	require.Equal(t, int64(len(status)+1), versionRows(t, dbURL))
}

func TestOpenFailsFastWhenUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close()) // nothing listens there now

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = store.Open(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/crmflow?sslmode=disable", port))
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "Open should fail on its own, not by our deadline")
}

func TestPing(t *testing.T) {
	t.Parallel()
	require.NoError(t, db.Ping(t.Context()))
}

func TestInboxRejectsDuplicateEvent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	eventID := uniqueID(t, "evt")
	const q = `
		INSERT INTO webhook_inbox (provider, event_id, event_type, payload)
		VALUES ($1, $2, 'payment_intent.succeeded', '{}')
		ON CONFLICT (provider, event_id) DO NOTHING`

	tag, err := db.Pool().Exec(ctx, q, "stripe", eventID)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	tag, err = db.Pool().Exec(ctx, q, "stripe", eventID)
	require.NoError(t, err)
	require.EqualValues(t, 0, tag.RowsAffected(), "a redelivered event must not be stored twice")

	// The same id from another provider is a different event.
	tag, err = db.Pool().Exec(ctx, q, "clerk", eventID)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	_, err = db.Pool().Exec(ctx, `
		INSERT INTO webhook_inbox (provider, event_id, event_type, payload)
		VALUES ('stripe', $1, 'payment_intent.succeeded', '{}')`, eventID)
	requirePgError(t, err, "23505", "webhook_inbox_provider_event_id_key")

	var pending int
	require.NoError(t, db.Pool().QueryRow(ctx,
		`SELECT count(*) FROM webhook_inbox WHERE event_id = $1 AND handed_off_at IS NULL`, eventID).Scan(&pending))
	require.Equal(t, 2, pending)
}

func TestRewardLedgerOnePerReferral(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	referrer, referred := seedCustomer(t), seedCustomer(t)
	referralID := uniqueID(t, "ref")
	_, err := db.Pool().Exec(ctx,
		`INSERT INTO referrals (id, referrer_id, referred_id) VALUES ($1, $2, $3)`, referralID, referrer, referred)
	require.NoError(t, err)

	const q = `
		INSERT INTO reward_ledger (referral_id, referrer_id, amount_cents, currency, stripe_balance_transaction_id)
		VALUES ($1, $2, 500, 'usd', $3)`
	_, err = db.Pool().Exec(ctx, q, referralID, referrer, uniqueID(t, "cbtxn"))
	require.NoError(t, err)
	_, err = db.Pool().Exec(ctx, q, referralID, referrer, uniqueID(t, "cbtxn"))
	requirePgError(t, err, "23505", "reward_ledger_referral_id_key")

	var n int
	require.NoError(t, db.Pool().QueryRow(ctx,
		`SELECT count(*) FROM reward_ledger WHERE referral_id = $1`, referralID).Scan(&n))
	require.Equal(t, 1, n)
}

func TestReferralRejectsSelfReferral(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)

	_, err := db.Pool().Exec(ctx,
		`INSERT INTO referrals (id, referrer_id, referred_id) VALUES ($1, $2, $2)`, uniqueID(t, "ref"), customer)
	requirePgError(t, err, "23514", "referrals_no_self_referral")

	_, err = db.Pool().Exec(ctx, `UPDATE customers SET referred_by = id WHERE id = $1`, customer)
	requirePgError(t, err, "23514", "customers_not_self_referred")
}

func TestAtMostOneActiveCredential(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	provider := uniqueID(t, "resend")
	insert := func(version int, status string) error {
		_, err := db.Pool().Exec(ctx, `
			INSERT INTO credentials (provider, name, version, ciphertext, nonce, master_key_id, status)
			VALUES ($1, 'api_key', $2, '\x00', '\x00', 'k1', $3)`, provider, version, status)
		return err
	}

	require.NoError(t, insert(1, "active"))
	requirePgError(t, insert(2, "active"), "23505", "credentials_one_active_idx")
	requirePgError(t, insert(1, "pending"), "23505", "credentials_provider_name_version_key")
	require.NoError(t, insert(2, "pending"))

	// The rotation step: retire the old version and activate the new one in
	// one transaction.
	tx, err := db.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `UPDATE credentials SET status = 'retiring' WHERE provider = $1 AND version = 1`, provider)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE credentials SET status = 'active', activated_at = now() WHERE provider = $1 AND version = 2`, provider)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	var active int
	require.NoError(t, db.Pool().QueryRow(ctx,
		`SELECT version FROM credentials WHERE provider = $1 AND status = 'active'`, provider).Scan(&active))
	require.Equal(t, 2, active)

	// Activating the old one again without retiring the new one is refused.
	_, err = db.Pool().Exec(ctx, `UPDATE credentials SET status = 'active' WHERE provider = $1 AND version = 1`, provider)
	requirePgError(t, err, "23505", "credentials_one_active_idx")
}

func TestOrderCurrencyMustBeLowercaseISO(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	insert := func(currency string) error {
		_, err := db.Pool().Exec(ctx,
			`INSERT INTO orders (id, customer_id, amount_cents, currency) VALUES ($1, $2, 1999, $3)`,
			uniqueID(t, "ord"), customer, currency)
		return err
	}

	require.NoError(t, insert("usd"))
	for _, bad := range []string{"USD", "us", "u$d"} {
		requirePgError(t, insert(bad), "23514", "orders_currency_check")
	}

	_, err := db.Pool().Exec(ctx,
		`INSERT INTO orders (id, customer_id, amount_cents, currency, status) VALUES ($1, $2, 1, 'eur', 'shipped')`,
		uniqueID(t, "ord"), customer)
	requirePgError(t, err, "23514", "orders_status_check")
}

// newDatabase creates an empty database on the test server and returns its
// URL, for tests that must watch migrations run from scratch.
func newDatabase(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(uniqueID(t, "db"))
	conn, err := pgx.Connect(t.Context(), serverURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(t.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)

	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func versionRows(t *testing.T, dbURL string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var n int64
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM goose_db_version").Scan(&n))
	return n
}

func seedCustomer(t *testing.T) string {
	t.Helper()
	id := uniqueID(t, "cus")
	_, err := db.Pool().Exec(t.Context(),
		`INSERT INTO customers (id, email, name) VALUES ($1, $1 || '@example.com', 'Test Customer')`, id)
	require.NoError(t, err)
	return id
}

var seq atomic.Int64

// uniqueID keeps rows of parallel tests apart in the shared database.
func uniqueID(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s_%s_%d", prefix, strings.ReplaceAll(t.Name(), "/", "_"), seq.Add(1))
}

func requirePgError(t *testing.T, err error, code, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want PostgreSQL error %s (%s), got %v", code, constraint, err)
	require.Equal(t, code, pgErr.Code, pgErr.Message)
	require.Equal(t, constraint, pgErr.ConstraintName, pgErr.Message)
}

// TestPoolSizeDefaultsTo16: a URL without pool_max_conns gets 16
// connections (pgx alone would give max(4, CPUs)); one with it keeps it.
func TestPoolSizeDefaultsTo16(t *testing.T) {
	url := newDatabase(t)
	st, err := store.Open(context.Background(), url)
	require.NoError(t, err)
	defer st.Close()
	assert.Equal(t, int32(16), st.Pool().Config().MaxConns)

	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	st2, err := store.Open(context.Background(), url+sep+"pool_max_conns=3")
	require.NoError(t, err)
	defer st2.Close()
	assert.Equal(t, int32(3), st2.Pool().Config().MaxConns)
}

// freshStore opens a newly created and migrated database of its own, for
// tests that look at a whole table (dead letters) and so must not see the
// rows of tests running in parallel.
func freshStore(t *testing.T) *store.Store {
	t.Helper()
	dbURL := newDatabase(t)
	require.NoError(t, store.Migrate(t.Context(), dbURL))
	s, err := store.Open(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}
