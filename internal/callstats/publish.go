package callstats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// QueueState is a provider activity queue as this process's breaker sees
// it (worker.QueueState, without importing the worker).
type QueueState struct {
	Provider string
	// Paused is true while this process does not poll the queue.
	Paused bool
	// PausedSince is when the current pause began.
	PausedSince *time.Time
	// Pauses counts pauses since the process started.
	Pauses int
	// Failures counts outage failures in a row.
	Failures int
}

// Defaults of PublisherOptions.
const (
	// DefaultEvery is how often a process publishes: the console is at
	// most this far behind.
	DefaultEvery = 10 * time.Second
	// Keep is how long minutes are kept: the console shows 24 hours.
	Keep = 25 * time.Hour
)

// PublisherOptions tune a Publisher.
type PublisherOptions struct {
	// Replica names this process in provider_queue_states; default host
	// name, pid and a random suffix, so a restarted process is a new one.
	Replica string
	// Every is the publishing interval; 0 means DefaultEvery.
	Every time.Duration
	// Queues, when set, reports the process's provider queues (a process
	// that runs the worker).
	Queues func() []QueueState
	// Logger receives failed publishes (optional).
	Logger *slog.Logger
}

// Publisher adds a Recorder's minutes and the process's queue states to
// PostgreSQL every few seconds.
type Publisher struct {
	db   *pgxpool.Pool
	rec  *Recorder
	opts PublisherOptions
}

// NewPublisher returns a publisher of rec into db.
func NewPublisher(db *pgxpool.Pool, rec *Recorder, opts PublisherOptions) *Publisher {
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	if opts.Replica == "" {
		opts.Replica = defaultReplica()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Publisher{db: db, rec: rec, opts: opts}
}

// defaultReplica is host name, pid and a random suffix.
func defaultReplica() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
}

// Run publishes every interval until ctx ends, then publishes what is left
// and withdraws this process's queue states, so the console stops counting
// a stopped worker at once. A failed publish keeps its minutes for the
// next one: PostgreSQL being away loses nothing the process still holds.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := p.Flush(final); err != nil {
				p.opts.Logger.Warn("Could not publish the last call statistics", "error", err)
			}
			if err := p.withdraw(final); err != nil {
				p.opts.Logger.Warn("Could not withdraw this process's queue states", "error", err)
			}
			return nil
		case <-t.C:
			if err := p.Flush(ctx); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("Could not publish call statistics; kept for the next try", "error", err)
			}
		}
	}
}

// Flush publishes now: every pending minute, the queue states, and the
// deletion of minutes older than Keep, in one transaction.
func (p *Publisher) Flush(ctx context.Context) error {
	ctx = Unmeasured(ctx)
	minutes := p.rec.take()
	var queues []QueueState
	if p.opts.Queues != nil {
		queues = p.opts.Queues()
	}
	if len(minutes) == 0 && len(queues) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for k, m := range minutes {
			queueMinute(b, k, m)
		}
		for _, q := range queues {
			b.Queue(`
INSERT INTO provider_queue_states (replica, provider, paused, paused_since, pauses, failures, reported_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (replica, provider) DO UPDATE SET paused = EXCLUDED.paused, paused_since = EXCLUDED.paused_since,
    pauses = EXCLUDED.pauses, failures = EXCLUDED.failures, reported_at = now()`,
				p.opts.Replica, q.Provider, q.Paused, q.PausedSince, q.Pauses, q.Failures)
		}
		b.Queue(`DELETE FROM provider_call_minutes WHERE minute < $1`, time.Now().Add(-Keep))
		b.Queue(`DELETE FROM provider_queue_states WHERE reported_at < now() - interval '1 day'`)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		p.rec.giveBack(minutes)
		return fmt.Errorf("publish call statistics: %w", err)
	}
	return nil
}

// queueMinute adds one minute's upsert to b: counts add up, so every
// process's calls of that minute end up in the one row.
func queueMinute(b *pgx.Batch, k key, m *Bucket) {
	var errClass *string
	var errAt *time.Time
	if !m.LastErrorAt.IsZero() {
		errClass, errAt = &m.LastErrorClass, &m.LastErrorAt
	}
	b.Queue(`
INSERT INTO provider_call_minutes AS t (provider, minute, requests, errors, latency, last_error_class, last_error_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (provider, minute) DO UPDATE SET
    requests = t.requests + EXCLUDED.requests,
    errors = t.errors + EXCLUDED.errors,
    latency = ARRAY(SELECT coalesce(a, 0) + coalesce(e, 0)
                    FROM unnest(t.latency, EXCLUDED.latency) WITH ORDINALITY AS u(a, e, i) ORDER BY i),
    last_error_class = CASE WHEN EXCLUDED.last_error_at > coalesce(t.last_error_at, '-infinity')
                            THEN EXCLUDED.last_error_class ELSE t.last_error_class END,
    last_error_at = greatest(t.last_error_at, EXCLUDED.last_error_at)`,
		k.provider, k.minute, m.Requests, m.Errors, m.Latency[:], errClass, errAt)
}

// withdraw deletes this process's queue states.
func (p *Publisher) withdraw(ctx context.Context) error {
	if p.opts.Queues == nil {
		return nil
	}
	if _, err := p.db.Exec(Unmeasured(ctx), `DELETE FROM provider_queue_states WHERE replica = $1`, p.opts.Replica); err != nil {
		return fmt.Errorf("withdraw queue states: %w", err)
	}
	return nil
}

type unmeasuredKey struct{}

// Unmeasured marks ctx's PostgreSQL calls as not to be recorded: the
// publisher's own writes would otherwise count themselves.
func Unmeasured(ctx context.Context) context.Context {
	return context.WithValue(ctx, unmeasuredKey{}, true)
}

func isUnmeasured(ctx context.Context) bool {
	v, _ := ctx.Value(unmeasuredKey{}).(bool)
	return v
}
