package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/worker"
)

// StorageCounts are what M10 observed beyond its sizes.
type StorageCounts struct {
	// Events is how many events each table received.
	Events int
	// Purged and Deleted are what the DataRetention runs reported removing.
	Purged, Deleted int64
	// Whole and Compact are the retained table's rows at the end, with and
	// without their payload; Kept is the kept table's rows.
	Whole, Compact, Kept int64
	// KeptBytes and RetainedBytes are the two tables' sizes at the end.
	KeptBytes, RetainedBytes int64
}

// inboxTable is a webhook inbox on a database of its own, sized as a whole
// (heap, TOAST and indexes).
type inboxTable struct {
	store *store.Store
	inbox *inbox.Store
	// empty is the table's size before any row: its indexes' metapages.
	empty int64
}

func (e *Env) newInboxTable(ctx context.Context, tb testing.TB) (*inboxTable, error) {
	st, err := store.Open(ctx, e.NewDatabase(tb))
	if err != nil {
		return nil, err
	}
	t := &inboxTable{store: st, inbox: inbox.NewStore(st.Pool())}
	if t.empty, err = t.size(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return t, nil
}

// size is pg_total_relation_size of the inbox: rows, TOAST, every index.
func (t *inboxTable) size(ctx context.Context) (int64, error) {
	var n int64
	if err := t.store.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('webhook_inbox')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("inbox size: %w", err)
	}
	return n, nil
}

// exec runs a maintenance statement (VACUUM cannot run in a transaction).
func (t *inboxTable) exec(ctx context.Context, q string) error {
	if _, err := t.store.Pool().Exec(ctx, q); err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	return nil
}

// perRow is the table's bytes above its empty size per row.
func (t *inboxTable) perRow(ctx context.Context) (float64, int64, error) {
	size, err := t.size(ctx)
	if err != nil {
		return 0, 0, err
	}
	var rows int64
	if err := t.store.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_inbox`).Scan(&rows); err != nil {
		return 0, 0, fmt.Errorf("count inbox: %w", err)
	}
	return float64(size-t.empty) / float64(max(rows, 1)), rows, nil
}

// receive commits n payment events through InsertInboxEvent from senders
// goroutines, then marks them handed off with the dispatcher's own Claim
// and MarkDone. The Temporal call between the two writes nothing to
// PostgreSQL, so it is left out.
func (t *inboxTable) receive(ctx context.Context, prefix string, n, senders int) error {
	rows := inboxEvents(prefix, n)
	if _, err := parallel(n, senders, func(i int) error {
		_, err := t.inbox.Insert(ctx, rows[i])
		return err
	}); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	for {
		claimed, err := t.inbox.Claim(ctx, 500, time.Minute)
		if err != nil || len(claimed) == 0 {
			return err
		}
		ids := make([]int64, len(claimed))
		for i, ev := range claimed {
			ids[i] = ev.ID
		}
		if err := t.inbox.MarkDone(ctx, ids, inbox.StatusDelivered, ""); err != nil {
			return err
		}
	}
}

// Storage measures M10: what the inbox costs on disk per event, and that
// retention bounds it. Two inboxes on databases of their own receive the
// same events, StorageEvents per compressed "day" of StorageDay for
// StorageDays days: one keeps everything, the other runs crmflow's
// DataRetention workflow (on crmflow's worker, with its real activities)
// after each day, with retention.inbox and retention.dedup shrunk to days
// of StorageDay in the ratio of their defaults. Both are vacuumed after
// each day, as autovacuum would be once enough rows changed.
func (e *Env) Storage(ctx context.Context, tb testing.TB) (Result, StorageCounts, error) {
	started := time.Now()
	sz := e.Sizes
	var counts StorageCounts
	def := e.Defaults.Retention
	if def.Inbox <= 0 || def.Dedup < def.Inbox {
		return Result{}, counts, fmt.Errorf("storage: default retention (inbox %s, dedup %s) has no window to compress", def.Inbox, def.Dedup)
	}
	// retention.inbox becomes one day and retention.dedup as many days as
	// the defaults' ratio, each plus half a day: a window's edge then falls
	// between two days' rows, so which rows it takes does not depend on how
	// long a day's work ran (up to half a day). A run keeps the newest two
	// days whole and dedupDays+1 days of records.
	dedupDays := int(def.Dedup / def.Inbox)
	day := sz.StorageDay
	windows := contract.DataRetentionInput{Inbox: day + day/2, Dedup: time.Duration(dedupDays)*day + day/2}
	if sz.StorageDays <= dedupDays+1 {
		return Result{}, counts, fmt.Errorf("storage: %d days do not fill the %d-day dedup window", sz.StorageDays, dedupDays)
	}

	kept, err := e.newInboxTable(ctx, tb)
	if err != nil {
		return Result{}, counts, err
	}
	defer kept.store.Close()
	retained, err := e.newInboxTable(ctx, tb)
	if err != nil {
		return Result{}, counts, err
	}
	defer retained.store.Close()
	c, err := e.dial(nil)
	if err != nil {
		return Result{}, counts, err
	}
	defer c.Close()
	queue := e.queue("retention")
	_, stop, err := startConsoleWorker(c, retained.store, starter.New(c, starter.Options{TaskQueue: queue}), queue,
		func(a *worker.Activities) { a.Retention = &activities.RetentionActivities{Store: retained.store} })
	if err != nil {
		return Result{}, counts, err
	}
	defer stop()

	var keptSizes, retainedSizes []float64
	t0 := time.Now()
	for d := range sz.StorageDays {
		if wait := time.Until(t0.Add(time.Duration(d) * day)); wait > 0 {
			time.Sleep(wait)
		}
		prefix := fmt.Sprintf("storage-%d-%d", t0.UnixNano(), d)
		err := alternate(d,
			func() error { return kept.receive(ctx, prefix, sz.StorageEvents, sz.Senders) },
			func() error { return retained.receive(ctx, prefix, sz.StorageEvents, sz.Senders) })
		if err != nil {
			return Result{}, counts, err
		}
		res, err := runRetention(ctx, c, queue, fmt.Sprintf("%s-retention", prefix), windows)
		if err != nil {
			return Result{}, counts, err
		}
		counts.Purged += res.InboxPurged
		counts.Deleted += res.InboxDeleted
		var ks, rs int64
		for _, t := range []struct {
			table *inboxTable
			size  *int64
		}{{kept, &ks}, {retained, &rs}} {
			if err := t.table.exec(ctx, "VACUUM webhook_inbox"); err != nil {
				return Result{}, counts, err
			}
			if *t.size, err = t.table.size(ctx); err != nil {
				return Result{}, counts, err
			}
		}
		keptSizes, retainedSizes = append(keptSizes, float64(ks)), append(retainedSizes, float64(rs))
		e.logf("storage day %d: kept %d kB, retained %d kB (purged %d, deleted %d)", d+1, ks/1024, rs/1024, res.InboxPurged, res.InboxDeleted)
	}
	counts.Events = sz.StorageDays * sz.StorageEvents
	if counts.Purged == 0 || counts.Deleted == 0 {
		return Result{}, counts, fmt.Errorf("storage: retention purged %d and deleted %d rows; the compressed windows removed nothing", counts.Purged, counts.Deleted)
	}
	if err := retained.store.Pool().QueryRow(ctx,
		`SELECT count(*) FILTER (WHERE purged_at IS NULL), count(*) FILTER (WHERE purged_at IS NOT NULL) FROM webhook_inbox`).
		Scan(&counts.Whole, &counts.Compact); err != nil {
		return Result{}, counts, fmt.Errorf("count retained rows: %w", err)
	}
	keptPerRow, keptRows, err := kept.perRow(ctx)
	if err != nil {
		return Result{}, counts, err
	}
	retainedPerRow, _, err := retained.perRow(ctx)
	if err != nil {
		return Result{}, counts, err
	}
	counts.Kept = keptRows
	counts.KeptBytes, counts.RetainedBytes = int64(keptSizes[len(keptSizes)-1]), int64(retainedSizes[len(retainedSizes)-1])

	// Packed sizes: the kept table rewritten (VACUUM FULL) whole, then with
	// every payload purged, as a compact record.
	packed := func() (float64, error) {
		if err := kept.exec(ctx, "VACUUM FULL webhook_inbox"); err != nil {
			return 0, err
		}
		v, _, err := kept.perRow(ctx)
		return v, err
	}
	packedWhole, err := packed()
	if err != nil {
		return Result{}, counts, err
	}
	for {
		n, err := kept.store.PurgeInboxPayloads(ctx, time.Millisecond, activities.MaxRetentionBatch)
		if err != nil {
			return Result{}, counts, err
		}
		if n < activities.MaxRetentionBatch {
			break
		}
	}
	packedCompact, err := packed()
	if err != nil {
		return Result{}, counts, err
	}

	// Once the dedup window is full (after dedupDays+1 days) every day
	// adds as many rows as it deletes: the retained table should stop
	// growing.
	full := dedupDays
	last := len(keptSizes) - 1
	keptGrowth := keptSizes[last] - keptSizes[full]
	retainedGrowth := retainedSizes[last] - retainedSizes[full]
	bounded := counts.RetainedBytes < counts.KeptBytes && retainedGrowth <= keptGrowth/4
	kib := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = x / 1024
		}
		return out
	}
	one := func(v float64) Stats { return summarise([]float64{v}) }
	return Result{
		ID: "M10", What: "inbox storage and retention",
		Subject: Figure{Name: "bytes per stored event (row, TOAST and indexes), handed off, vacuumed", Unit: "bytes", Stats: one(keptPerRow)},
		Baselines: []Figure{
			{Name: "table size, every event kept", Unit: "KiB", Stats: one(float64(counts.KeptBytes) / 1024)},
			{Name: "table size, with retention", Unit: "KiB", Stats: one(float64(counts.RetainedBytes) / 1024)},
		},
		Ratios: []Figure{{Name: "with retention/kept", Unit: "×", Stats: one(float64(counts.RetainedBytes) / float64(counts.KeptBytes))}},
		Extra: []Figure{
			{Name: "bytes per row of the retained table (whole and compact rows)", Unit: "bytes", Stats: one(retainedPerRow)},
			{Name: "bytes per event, table rewritten (VACUUM FULL)", Unit: "bytes", Stats: one(packedWhole)},
			{Name: "bytes per compact dedup record, table rewritten (VACUUM FULL)", Unit: "bytes", Stats: one(packedCompact)},
			{Name: "table size after each day, every event kept", Unit: "KiB", Stats: summarise(kib(keptSizes))},
			{Name: "table size after each day, with retention", Unit: "KiB", Stats: summarise(kib(retainedSizes))},
			{Name: "growth once the dedup window was full, every event kept", Unit: "KiB", Stats: one(keptGrowth / 1024)},
			{Name: "growth once the dedup window was full, with retention", Unit: "KiB", Stats: one(retainedGrowth / 1024)},
			{Name: "whole rows at the end, with retention", Unit: "rows", Stats: one(float64(counts.Whole))},
			{Name: "compact dedup records at the end, with retention", Unit: "rows", Stats: one(float64(counts.Compact))},
		},
		Target: "bounded: with retention the table ends smaller than with every event kept, " +
			"and once the dedup window is full it grows by at most a quarter of what the kept table grows",
		Pass:     bounded,
		Headline: fmt.Sprintf("%s B/event; %s KiB vs %s KiB kept", num(keptPerRow), num(float64(counts.RetainedBytes)/1024), num(float64(counts.KeptBytes)/1024)),
		Rounds:   1, Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("Two inboxes on databases of their own each received %d payment events (about 500-byte Stripe bodies) as %d compressed days of %s, %d events a day, "+
				"through InsertInboxEvent, and were marked handed off with the dispatcher's own Claim and MarkDone (the Temporal call between them writes nothing to PostgreSQL). "+
				"After each day one table kept everything; the other ran crmflow's DataRetention workflow on crmflow's worker with retention.inbox %s and retention.dedup %s "+
				"(the defaults' %s and %s compressed to 1 and %d days of %s, plus half a day so that a window's edge falls between two days' rows). "+
				"Both tables were vacuumed (plain VACUUM, as autovacuum does once enough rows changed) after each day; sizes are pg_total_relation_size (rows, TOAST and every index), "+
				"bytes per row are above the empty table's %d bytes. The runs purged %d payloads and deleted %d records; at the end the retained table held %d whole rows and %d compact records, the kept one %d rows.",
				counts.Events, sz.StorageDays, day, sz.StorageEvents, windows.Inbox, windows.Dedup, def.Inbox, def.Dedup, dedupDays, day, kept.empty,
				counts.Purged, counts.Deleted, counts.Whole, counts.Compact, counts.Kept),
			fmt.Sprintf("The per-day rows list the sizes in day order. From the end of day %d, when the dedup window was full and each day began to delete as many records as it added rows, "+
				"to the end of day %d the kept table grew by %s KiB and the retained one by %s KiB (%s of it). "+
				"Ideally the retained table stops growing there: a day's purge and delete free (once vacuumed) as much space as the next day's rows take; "+
				"VACUUM makes the space reusable and does not return it to the operating system. The target allows a quarter of the kept table's growth "+
				"because that reuse is page-granular: free space is found per page, and emptied index pages are recycled only a VACUUM later.",
				full+1, last+1, num(keptGrowth/1024), num(retainedGrowth/1024), fmt.Sprintf("%.0f%%", 100*retainedGrowth/max(keptGrowth, 1))),
		},
	}, counts, nil
}

// runRetention runs DataRetention once with the given windows and waits for
// its result.
func runRetention(ctx context.Context, c client.Client, queue, id string, in contract.DataRetentionInput) (*contract.DataRetentionResult, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, contract.DataRetentionType, in)
	if err != nil {
		return nil, fmt.Errorf("start data retention: %w", err)
	}
	var res contract.DataRetentionResult
	if err := run.Get(ctx, &res); err != nil {
		return nil, fmt.Errorf("data retention %s: %w", id, err)
	}
	return &res, nil
}
