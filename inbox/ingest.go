package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// Committers is how many inbox commits may run at once. Callers that
	// arrive while they are all busy queue up, and the next committer to
	// free up writes the whole queue in one statement and one commit.
	Committers = 4
	// maxBatch caps the rows of one such statement.
	maxBatch = 128
	// batchTimeout bounds a batch's statement. It runs for several callers,
	// so it cannot use one caller's context; each caller still stops
	// waiting when its own context ends.
	batchTimeout = 15 * time.Second
)

// Insert commits the event and reports whether it is new; a redelivery of
// the same (source, event id) inserts nothing and returns false. Ignored
// events are stored already done, with the reason. Concurrent calls share
// commits (batcher); each returns once its own row is durable.
func (s *Store) Insert(ctx context.Context, e Event) (bool, error) {
	return s.batch.insert(ctx, s, e)
}

// batcher turns concurrent Insert calls into shared commits. Under load
// every commit costs PostgreSQL a WAL flush and a round trip, and many
// webhook requests wait on commits at once; one statement for all of them
// pays that once. A caller that finds a committer free commits at once,
// after one yield to the scheduler, so a lone webhook waits for nothing.
// There is no background goroutine: whichever caller takes a committer
// slot writes what is queued, and goes on while more queues.
type batcher struct {
	slots chan struct{}

	mu    sync.Mutex
	queue []*pendingInsert

	// commitsBySize[n] counts the commits that wrote n rows, for the
	// benchmark's baseline (it replays the same rows per commit) and for
	// anyone asking how much sharing the load produced.
	commitsBySize [maxBatch + 1]atomic.Int64
	// committing sums how long commits took, in nanoseconds (CommitTime).
	committing atomic.Int64
}

// CommitSizes returns how many commits wrote n rows, indexed by n, since
// the store was made.
func (s *Store) CommitSizes() []int64 {
	out := make([]int64, maxBatch+1)
	for n := range out {
		out[n] = s.batch.commitsBySize[n].Load()
	}
	return out
}

// CommitTime returns how long the store's commits have taken in all,
// summed over commits that ran at once, since the store was made: each from
// building its statement until its callers are answered. Over a busy
// stretch, divided by Committers times the stretch, it is the share of the
// time the committers spent writing rather than waiting for rows.
func (s *Store) CommitTime() time.Duration {
	return time.Duration(s.batch.committing.Load())
}

func newBatcher() *batcher {
	return &batcher{slots: make(chan struct{}, Committers)}
}

// pendingInsert is one caller's row and, once written, its outcome.
type pendingInsert struct {
	event Event
	done  chan struct{}
	// Set under the batcher's mutex.
	taken, abandoned bool
	// Set before done is closed.
	inserted bool
	err      error
}

// insert queues the row and returns once a commit has written it (or
// failed), or when ctx ends first. A caller that gets a committer slot
// starts the commit of everything queued; the slot is free again once its
// committer finds nothing queued.
func (b *batcher) insert(ctx context.Context, s *Store, e Event) (bool, error) {
	req := &pendingInsert{event: e, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	b.mu.Unlock()
	slots := b.slots
	for {
		select {
		case <-req.done:
			return req.inserted, req.err
		case <-ctx.Done():
			b.mu.Lock()
			// A row no commit has taken yet is never written; one that a
			// commit holds may still be, and a redelivery then finds it.
			req.abandoned = !req.taken
			b.mu.Unlock()
			return false, fmt.Errorf("insert inbox event %s/%s: %w", e.Source, e.EventID, ctx.Err())
		case slots <- struct{}{}:
			// Under load other callers are often runnable but not queued
			// yet (requests just verified, senders a commit just
			// answered); one yield lets them queue, so this commit
			// carries their rows instead of leaving with one (about a
			// fifth more rows/s in the benchmark). With nothing else to
			// run it returns at once.
			runtime.Gosched()
			batch := b.take()
			if len(batch) == 0 {
				<-b.slots
				// Another commit holds this row: only wait for its outcome
				// (a nil channel is never ready).
				slots = nil
				continue
			}
			go b.commitWhileQueued(context.WithoutCancel(ctx), s, batch)
		}
	}
}

// commitWhileQueued commits batch, then whatever queued meanwhile, until
// it finds the queue empty, and then frees the committer slot it holds.
// Under load rows queue during every commit; going on spares each further
// commit handing the slot to a waiting caller and starting a goroutine
// (about 5% more rows/s in the benchmark). A caller that queues after the
// last look gets the freed slot, or a slot another committer frees, so no
// row waits for a commit that will not come.
func (b *batcher) commitWhileQueued(ctx context.Context, s *Store, batch []*pendingInsert) {
	defer func() { <-b.slots }()
	for len(batch) > 0 {
		b.commitsBySize[len(batch)].Add(1)
		s.commit(ctx, batch)
		// As the caller that took the slot did: the callers this commit
		// answered, and others about to queue, get to run first.
		runtime.Gosched()
		batch = b.take()
	}
}

// take removes up to maxBatch rows from the queue, in arrival order,
// skipping callers that gave up.
func (b *batcher) take() []*pendingInsert {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*pendingInsert
	n := 0
	for ; n < len(b.queue) && len(batch) < maxBatch; n++ {
		req := b.queue[n]
		if req.abandoned {
			continue
		}
		req.taken = true
		batch = append(batch, req)
	}
	b.queue = append(b.queue[:0:0], b.queue[n:]...)
	return batch
}

// commit writes a batch and hands every caller its outcome. A statement
// PostgreSQL refuses (one caller's body it cannot store, say) is retried
// row by row, so each caller gets its own answer.
func (s *Store) commit(ctx context.Context, batch []*pendingInsert) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	defer func() {
		// Counted before the callers hear: one that reads CommitTime
		// after its answer finds its own commit in it.
		s.batch.committing.Add(int64(time.Since(started)))
		for _, req := range batch {
			close(req.done)
		}
	}()
	if len(batch) > 1 {
		inserted, err := s.insertRows(ctx, batch)
		if err == nil {
			for i, req := range batch {
				req.inserted = inserted[i]
			}
			return
		}
		// Only PostgreSQL's own refusal is worth a try row by row; a lost
		// connection or a timeout would fail each row the same way.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			for _, req := range batch {
				req.err = err
			}
			return
		}
	}
	for _, req := range batch {
		req.inserted, req.err = s.insertRow(ctx, req.event)
	}
}

// routeJSON is the route column's value: NULL for an event with no route
// (an ignored one).
func routeJSON(r Route) (*string, error) {
	if r == (Route{}) {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode route: %w", err)
	}
	s := string(b)
	return &s, nil
}

// cleanText makes text read from a verified body storable in a text
// column, which holds neither NUL nor invalid UTF-8: a signed event is
// never refused for what PostgreSQL cannot store. Ids and targets are
// checked business keys already; the body itself is stored as bytes.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// insertRow writes one row; false when its (source, event id) is stored
// already.
func (s *Store) insertRow(ctx context.Context, e Event) (bool, error) {
	const q = `
INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status, handed_off_at,
                           last_error, next_attempt_at, trace_parent, recovered)
VALUES ($1, $2, $3, nullif($4, ''), $5, $6, CASE WHEN $4 = '' THEN 'ignored' ELSE 'pending' END,
        CASE WHEN $4 = '' THEN now() END, nullif($7, ''), now() + $8 * interval '1 millisecond', nullif($9, ''), $10)
ON CONFLICT (provider, event_id) DO NOTHING`
	route, err := routeJSON(e.Route)
	if err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, q, e.Source, e.EventID, cleanText(e.EventType), e.Target, route, e.Payload, cleanText(e.Ignored),
		e.DueIn.Milliseconds(), e.TraceParent, e.Recovered)
	if err != nil {
		return false, fmt.Errorf("insert inbox event %s/%s: %w", e.Source, e.EventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// insertRows writes a batch in one commit, rows in batch order so their
// ids keep arrival order, and reports which rows are new. Of two rows with
// the same (source, event id) only the first can be new.
//
// It first tries a plain INSERT: almost every batch holds only new events,
// and PostgreSQL checks the unique key anyway, while ON CONFLICT with
// RETURNING costs every row a speculative insertion and a returned key
// (a tenth more rows/s without them in the benchmark). Only when the key
// refuses a row (a redelivery, or the same event twice in the batch) does
// the batch go again with ON CONFLICT DO NOTHING, which says row by row what
// was new; nothing of the refused statement stays.
func (s *Store) insertRows(ctx context.Context, batch []*pendingInsert) ([]bool, error) {
	n := len(batch)
	sources, ids, types, targets := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	routes, payloads, ignored := make([]*string, n), make([][]byte, n), make([]string, n)
	due, trace, recovered := make([]int64, n), make([]string, n), make([]bool, n)
	var shape batchShape
	for i, req := range batch {
		e := req.event
		route, err := routeJSON(e.Route)
		if err != nil {
			return nil, err
		}
		sources[i], ids[i], types[i], targets[i], routes[i] = e.Source, e.EventID, cleanText(e.EventType), e.Target, route
		payloads[i], ignored[i], due[i], trace[i] = e.Payload, cleanText(e.Ignored), e.DueIn.Milliseconds(), e.TraceParent
		recovered[i] = e.Recovered
		shape.unusual = shape.unusual || e.Target == "" || ignored[i] != "" || due[i] != 0 || e.Recovered
		shape.traced = shape.traced || e.TraceParent != ""
	}
	args := []any{sources, ids, types, targets, routes, payloads}
	if shape.unusual {
		args = append(args, ignored, due, recovered)
	}
	if shape.traced {
		args = append(args, trace)
	}
	allNew := batchInserts[shape]
	out := make([]bool, n)
	_, err := s.pool.Exec(ctx, allNew, args...)
	if err == nil {
		for i := range out {
			out[i] = true
		}
		return out, nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation || pgErr.ConstraintName != eventKey {
		return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
	}
	rows, err := s.pool.Query(ctx, allNew+`
ON CONFLICT (provider, event_id) DO NOTHING
RETURNING provider, event_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
	}
	defer rows.Close()
	type key struct{ source, eventID string }
	stored := map[key]bool{}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.source, &k.eventID); err != nil {
			return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
		}
		stored[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
	}
	for i := range batch {
		k := key{sources[i], ids[i]}
		out[i] = stored[k]
		delete(stored, k) // a later row with the same key is a duplicate
	}
	return out, nil
}

// batchShape says which of the columns only some events set a batch
// sends. Every array a statement sends costs pgx an encoding and
// PostgreSQL a function scan, whatever the array holds, and most batches
// are routed events with nothing to hold back: a column goes only with a
// batch where some row sets it, and otherwise the statement writes the
// value such an event stores (a tenth more rows/s in the benchmark than
// sending all four for every batch).
type batchShape struct {
	// unusual: some row is ignored, held back (DueIn) or recovered.
	unusual bool
	// traced: some row carries a trace context.
	traced bool
}

// batchInserts holds the INSERT for each batch shape.
var batchInserts = map[batchShape]string{
	{}:                            batchInsertSQL(batchShape{}),
	{unusual: true}:               batchInsertSQL(batchShape{unusual: true}),
	{traced: true}:                batchInsertSQL(batchShape{traced: true}),
	{unusual: true, traced: true}: batchInsertSQL(batchShape{unusual: true, traced: true}),
}

// batchInsertSQL builds the INSERT of a batch of the given shape. Its
// parameters are arrays, one element per row: source, event id, type,
// target, route, payload; then, if unusual, the ignored reason, DueIn in
// milliseconds and recovered; then, if traced, the traceparent.
func batchInsertSQL(shape batchShape) string {
	arrays := []string{"text", "text", "text", "text", "text", "bytea"}
	names := []string{"p", "e", "t", "w", "r", "pl"}
	// What a routed event that is not held back, recovered or traced stores.
	status, handedOff, note, next, recovered, trace := "'pending'", "NULL", "NULL", "now()", "false", "NULL"
	if shape.unusual {
		arrays = append(arrays, "text", "bigint", "boolean")
		names = append(names, "ig", "d", "rc")
		status = "CASE WHEN w = '' THEN 'ignored' ELSE 'pending' END"
		handedOff = "CASE WHEN w = '' THEN now() END"
		note, next, recovered = "nullif(ig, '')", "now() + d * interval '1 millisecond'", "rc"
	}
	if shape.traced {
		arrays = append(arrays, "text")
		names = append(names, "tp")
		trace = "nullif(tp, '')"
	}
	params := make([]string, len(arrays))
	for i, typ := range arrays {
		params[i] = fmt.Sprintf("$%d::%s[]", i+1, typ)
	}
	return fmt.Sprintf(`
INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status, handed_off_at,
                           last_error, next_attempt_at, trace_parent, recovered)
SELECT p, e, t, nullif(w, ''), r, pl, %s, %s, %s, %s, %s, %s
FROM unnest(%s) WITH ORDINALITY AS x(%s, n)
ORDER BY n`, status, handedOff, note, next, trace, recovered, strings.Join(params, ", "), strings.Join(names, ", "))
}

const (
	// uniqueViolation is PostgreSQL's SQLSTATE for a refused unique key.
	uniqueViolation = "23505"
	// eventKey is the inbox's unique (provider, event_id) constraint: the
	// one refusal that means "stored already".
	eventKey = "webhook_inbox_provider_event_id_key"
)
