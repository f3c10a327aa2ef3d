// Package store is crmflow's PostgreSQL store: the connection pool the
// activities and the webhooks server share, and the versioned schema
// migrations embedded in the binary.
//
// Constraints in the schema do the idempotency work the rest of crmflow
// relies on (unique webhook event ids, one reward per referral, one active
// credential per provider key), so a retried activity or a redelivered
// webhook cannot do its work twice.
//
// It is a library: it imports no crmflow package. The inbox table's queries
// live with the inbox (package inbox).
package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// connectTimeout bounds dialing PostgreSQL when the URL sets no
	// connect_timeout. Without it a dial to an unreachable host waits for the
	// kernel's TCP timeout (minutes), so webhook handlers and /readyz would
	// hang instead of answering 503 and letting the provider retry.
	connectTimeout = 5 * time.Second

	// pingTimeout caps Ping even when the caller's context has no deadline:
	// a readiness probe must answer while the database is unreachable. It
	// leaves room for one fresh connection (connectTimeout) plus a round trip.
	pingTimeout = connectTimeout + time.Second

	applicationName = "crmflow"
)

// Store holds the connection pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// defaultMaxConns sizes the pool when the URL does not (pool_max_conns).
const defaultMaxConns = 16

// Option adjusts how Open builds the pool.
type Option func(*pgxpool.Config)

// WithTracer traces every query of the pool with t (the operator
// console's call statistics, internal/callstats.PostgresTracer); a t that
// is also a pgxpool.AcquireTracer sees failed connection attempts too.
func WithTracer(t pgx.QueryTracer) Option {
	return func(c *pgxpool.Config) { c.ConnConfig.Tracer = t }
}

// Open connects to the database at databaseURL and checks it answers, so a
// wrong URL fails at start rather than at the first webhook. Pool settings
// may be tuned in the URL (pool_max_conns, connect_timeout, ...); the pool
// holds up to 16 connections unless pool_max_conns says otherwise.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		// pgx defaults to max(4, CPUs); webhook bursts wait on commits, not
		// on CPU, and make bench measured 2.2× the insert rate at 16.
		cfg.MaxConns = defaultMaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		// Makes crmflow's sessions recognisable in pg_stat_activity.
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Pool is the underlying pgx pool, for queries and transactions.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close waits for acquired connections to be released and closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers a round trip; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}
