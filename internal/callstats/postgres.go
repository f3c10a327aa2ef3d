package callstats

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresTracer records every PostgreSQL query, batch and failed
// connection attempt of a pool as a call to Postgres. Give it to the pool
// (store.WithTracer). Queries of an Unmeasured context are left out, and
// so are those cancelled by crmflow's side.
func PostgresTracer(r *Recorder) pgx.QueryTracer { return &pgTracer{r: r} }

type pgTracer struct{ r *Recorder }

type pgStartKey struct{}

func (t *pgTracer) start(ctx context.Context) context.Context {
	if isUnmeasured(ctx) {
		return ctx
	}
	return context.WithValue(ctx, pgStartKey{}, time.Now())
}

func (t *pgTracer) end(ctx context.Context, err error) {
	start, ok := ctx.Value(pgStartKey{}).(time.Time)
	if !ok || errors.Is(err, context.Canceled) {
		return
	}
	t.r.Record(Postgres, time.Since(start), pgClass(err))
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return t.start(ctx)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(ctx, data.Err)
}

// TraceBatchStart implements pgx.BatchTracer: a batch is one call.
func (t *pgTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx)
}

// TraceBatchQuery implements pgx.BatchTracer.
func (t *pgTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *pgTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(ctx, data.Err)
}

// TraceAcquireStart implements pgxpool.AcquireTracer: a connection that
// cannot be had is a failed call (PostgreSQL down never reaches a query).
func (t *pgTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return t.start(ctx)
}

// TraceAcquireEnd implements pgxpool.AcquireTracer; a successful acquire
// is no call.
func (t *pgTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Err != nil {
		t.end(ctx, data.Err)
	}
}

// pgClass names a PostgreSQL error: its SQLSTATE, or how no answer came.
func pgClass(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pgErr):
		return "SQLSTATE " + pgErr.Code
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return "timeout"
	}
	return "connection"
}
