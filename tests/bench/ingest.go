package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
)

// parallel runs fn(0) … fn(n-1) on workers goroutines and returns the wall
// time taken; the first error stops the remaining work.
func parallel(n, workers int, fn func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// stripePayment is a payment_intent.succeeded event for an order, shaped
// like Stripe's (about 500 bytes, as small real events are).
func stripePayment(eventID, orderID string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","type":"payment_intent.succeeded","created":%d,`+
		`"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},`+
		`"data":{"object":{"id":"pi_%s","object":"payment_intent","amount":4200,"amount_received":4200,"currency":"eur",`+
		`"status":"succeeded","last_payment_error":null,"customer":null,"metadata":{"order_id":%q}}}}`,
		eventID, time.Now().Unix(), orderID, orderID)
}

// signedWebhook is one delivery ready to send.
type signedWebhook struct {
	body      []byte
	signature string
	// orderID is the order the payment is for; the dispatcher hands off
	// only payments for orders that exist (insertOrders).
	orderID string
}

// signWebhooks prepares n signed deliveries; signing happens before the
// clock starts, as it happens at Stripe.
func signWebhooks(prefix string, n int) []signedWebhook {
	out := make([]signedWebhook, n)
	now := time.Now()
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		body := stripePayment("evt_"+id, "o-"+id)
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeWebhookSecret, Timestamp: now})
		out[i] = signedWebhook{body: body, signature: signed.Header, orderID: "o-" + id}
	}
	return out
}

// postWebhook delivers one signed webhook and returns the HTTP status.
func postWebhook(ctx context.Context, hc *http.Client, url string, w signedWebhook) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/webhooks/stripe", bytes.NewReader(w.body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", w.signature)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	drain(resp)
	return resp.StatusCode, nil
}

// sendWebhooks posts every delivery from senders goroutines and returns how
// long it took; any answer but 200 is an error.
func sendWebhooks(ctx context.Context, hc *http.Client, url string, ws []signedWebhook, senders int) (time.Duration, error) {
	return parallel(len(ws), senders, func(i int) error {
		status, err := postWebhook(ctx, hc, url, ws[i])
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("webhook %d answered %d", i, status)
		}
		return nil
	})
}

// rawInsert is the baseline for the inbox write: the same row, with pgx and
// nothing else.
const rawInsert = `INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, now())`

// rawArgs are rawInsert's arguments for ev: the same columns the inbox
// writes, its route included.
func rawArgs(ev inbox.Event) []any {
	route, err := json.Marshal(ev.Route)
	if err != nil {
		panic(fmt.Sprintf("bench: encode route: %v", err))
	}
	return []any{ev.Source, ev.EventID, ev.EventType, ev.Target, string(route), ev.Payload}
}

// inboxEvents builds n inbox rows as the Stripe handler stores them, route
// included.
func inboxEvents(prefix string, n int) []inbox.Event {
	out := make([]inbox.Event, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		body := stripePayment("evt_"+id, "o-"+id)
		var ev stripego.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			panic(fmt.Sprintf("bench: stripePayment built an unreadable event: %v", err))
		}
		row, err := inbox.StripeEvent(ev, body)
		if err != nil || row.Target != contract.OrderConfirmationID("o-"+id) {
			panic(fmt.Sprintf("bench: payment %s not routed to its order: %v", id, err))
		}
		out[i] = row
	}
	return out
}

// rawSignalWithStart is Temporal's own rate: the same signal and input as
// the dispatcher sends, through the bare client, with only an ID and a task
// queue (no worker polls it, so only the start and signal are measured).
func rawSignalWithStart(ctx context.Context, c client.Client, queue, prefix string, n, concurrency int) (time.Duration, error) {
	d, _, err := rawSignalWithStartTimed(ctx, c, queue, prefix, n, concurrency)
	return d, err
}

// rawSignalWithStartTimed is rawSignalWithStart timing each call.
func rawSignalWithStartTimed(ctx context.Context, c client.Client, queue, prefix string, n, concurrency int) (time.Duration, workTiming, error) {
	return timedParallel(n, concurrency, func(i int) error {
		orderID := fmt.Sprintf("%s-%d", prefix, i)
		ev := contract.PaymentEvent{EventID: "evt_" + orderID, Succeeded: true, PaymentIntentID: "pi_" + orderID,
			AmountCents: 4200, AmountReceivedCents: 4200, Currency: "eur"}
		_, err := c.SignalWithStartWorkflow(ctx, contract.OrderConfirmationID(orderID), contract.PaymentSignal, ev,
			client.StartWorkflowOptions{ID: contract.OrderConfirmationID(orderID), TaskQueue: queue},
			contract.OrderConfirmationType, contract.OrderConfirmationInput{OrderID: orderID})
		if err != nil {
			return fmt.Errorf("signal with start %s: %w", orderID, err)
		}
		return nil
	})
}

// signalCapacity measures Temporal's capacity the one way M2, M8 and the
// engines table use it: SignalCalls raw SignalWithStart calls at the
// webhooks' concurrency (Senders), in calls/s.
func (e *Env) signalCapacity(ctx context.Context, c client.Client, queue, prefix string) (float64, error) {
	d, err := rawSignalWithStart(ctx, c, queue, prefix, e.Sizes.SignalCalls, e.Sizes.Senders)
	return rate(e.Sizes.SignalCalls, d), err
}

// warmUp fills the edge's connection pools (pgx and HTTP keep-alive) with
// a few inserts and webhooks that are not measured, so the first round does
// not pay for connecting. It returns how many rows it stored.
func warmUp(ctx context.Context, g *edge, hc *http.Client, senders int) (int, error) {
	n := 4 * senders
	rows := inboxEvents(fmt.Sprintf("warm-%d", time.Now().UnixNano()), n)
	if _, err := parallel(n, senders, func(i int) error {
		_, err := g.inbox.Insert(ctx, rows[i])
		return err
	}); err != nil {
		return 0, fmt.Errorf("warm up: %w", err)
	}
	if _, err := sendWebhooks(ctx, hc, g.url, signWebhooks(fmt.Sprintf("warm-hook-%d", time.Now().UnixNano()), n), senders); err != nil {
		return 0, fmt.Errorf("warm up: %w", err)
	}
	return 2 * n, nil
}

// rawBatchInsert is the batched baseline: the same columns as rawInsert,
// many rows in one statement and one commit, as the inbox's batcher writes
// them, without its row order and its expressions for the columns the
// benchmark's events leave unset.
const rawBatchInsert = `INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, next_attempt_at)
SELECT p, e, t, w, r, pl, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[]) AS x(p, e, t, w, r, pl)`

// batchesOf splits rows into batches of the given sizes, in order.
func batchesOf(rows []inbox.Event, sizes []int) [][]inbox.Event {
	var out [][]inbox.Event
	for _, n := range sizes {
		if len(rows) == 0 {
			break
		}
		n = min(n, len(rows))
		out = append(out, rows[:n])
		rows = rows[n:]
	}
	if len(rows) > 0 {
		out = append(out, rows)
	}
	return out
}

// commitSizes lists the rows of each commit the inbox made between two
// CommitSizes readings, largest first.
func commitSizes(before, after []int64) []int {
	var out []int
	for n := len(after) - 1; n >= 1; n-- {
		for range after[n] - before[n] {
			out = append(out, n)
		}
	}
	return out
}

// rawBaselines inserts rows three ways with raw pgx on the same pool and
// returns each rate: one row per commit from senders goroutines, and
// batches of the given sizes (the inbox's own, from the same run) from
// committers and from senders goroutines. The three take turns going first
// (round picks the order): a later way meets PostgreSQL's work after the
// thousands of rows before it (autovacuum of the new rows, the
// checkpointer), and a fixed order would hand that to the same way every
// round. It also returns how the batched way from committers goroutines
// spent its time, which the inbox's committers are compared with.
func rawBaselines(ctx context.Context, g *edge, prefix string, round, n int, sizes []int, senders, committers int) (
	single, batchedFew, batchedMany float64, fewTiming workTiming, err error) {
	ways := []func() error{
		func() (err error) {
			rows := inboxEvents(prefix+"-single", n)
			d, err := parallel(len(rows), senders, func(i int) error {
				if _, err := g.store.Pool().Exec(ctx, rawInsert, rawArgs(rows[i])...); err != nil {
					return fmt.Errorf("raw insert: %w", err)
				}
				return nil
			})
			single = rate(n, d)
			return err
		},
		func() (err error) {
			batchedFew, fewTiming, err = rawBatched(ctx, g, prefix+"-few", n, sizes, committers)
			return err
		},
		func() (err error) {
			batchedMany, _, err = rawBatched(ctx, g, prefix+"-many", n, sizes, senders)
			return err
		},
	}
	for i := range ways {
		if err := ways[(round+i)%len(ways)](); err != nil {
			return 0, 0, 0, workTiming{}, err
		}
	}
	return single, batchedFew, batchedMany, fewTiming, nil
}

// workTiming is how a phase whose goroutines each do one unit of work (a
// commit, a call) after another spent its time. A subject whose units take
// as long as the baseline's and whose goroutines are as busy runs at the
// baseline's rate: the two figures split a ratio into waiting and working.
type workTiming struct {
	// meanMillis is a unit's mean time in ms, not rounded to a whole
	// nanosecond: M1's parts multiply back to its ratio only unrounded.
	meanMillis float64
	// busy is the units' summed time over the goroutines' number times the
	// phase: the share of the phase they spent working.
	busy float64
}

// newWorkTiming is the timing of units that took spent in all, done by
// workers goroutines in a phase of d.
func newWorkTiming(spent time.Duration, units, workers int, d time.Duration) workTiming {
	if units <= 0 || workers <= 0 || d <= 0 {
		return workTiming{}
	}
	return workTiming{meanMillis: millis(spent) / float64(units), busy: float64(spent) / float64(time.Duration(workers)*d)}
}

// timingSeries collects a side's workTiming round by round: the busy
// share, and a unit's mean time in ms.
type timingSeries struct{ busy, mean []float64 }

func (ts *timingSeries) add(t workTiming) {
	ts.busy = append(ts.busy, t.busy)
	ts.mean = append(ts.mean, t.meanMillis)
}

// timedParallel is parallel timing each call of fn as a unit of work.
func timedParallel(n, workers int, fn func(i int) error) (time.Duration, workTiming, error) {
	var spent atomic.Int64
	d, err := parallel(n, workers, func(i int) error {
		started := time.Now()
		defer func() { spent.Add(int64(time.Since(started))) }()
		return fn(i)
	})
	return d, newWorkTiming(time.Duration(spent.Load()), n, min(workers, n), d), err
}

// rawBatched inserts n rows in batches of the given sizes with rawBatchInsert
// from workers goroutines and returns the rate and how the workers spent
// the phase, a commit timed from building its arrays until PostgreSQL
// answered: what the inbox's CommitTime counts of its own commits.
func rawBatched(ctx context.Context, g *edge, prefix string, n int, sizes []int, workers int) (float64, workTiming, error) {
	batches := batchesOf(inboxEvents(prefix, n), sizes)
	d, timing, err := timedParallel(len(batches), workers, func(i int) error {
		b := batches[i]
		p, e, t, w, r := make([]string, len(b)), make([]string, len(b)), make([]string, len(b)), make([]string, len(b)), make([]string, len(b))
		pl := make([][]byte, len(b))
		for k, ev := range b {
			a := rawArgs(ev)
			p[k], e[k], t[k], w[k], r[k], pl[k] = a[0].(string), a[1].(string), a[2].(string), a[3].(string), a[4].(string), a[5].([]byte)
		}
		if _, err := g.store.Pool().Exec(ctx, rawBatchInsert, p, e, t, w, r, pl); err != nil {
			return fmt.Errorf("raw batch insert: %w", err)
		}
		return nil
	})
	return rate(n, d), timing, err
}

// rawAsSubjectRatio names M1's calibration figure: the raw insert run in
// the subject's place, divided by the best raw insert.
const rawAsSubjectRatio = "that subject/best raw (what a subject as fast as the raw insert scores)"

// M1's figures on where the inbox's time goes, against the raw unnest
// insert from as many goroutines as the inbox has committers. Both write
// as many rows in about as many commits (the raw insert replays the latest
// inbox phase's), so in each round the inbox's rate over the raw insert's
// is about the ratio of their busy shares times the raw commit's mean over
// the inbox commit's (see workTiming). All but inboxCommitFigure
// and the two parts take the committers' number.
const (
	committersBusyFigure = "inbox: share of the phase its %d committers were committing"
	inboxCommitFigure    = "inbox: mean commit, from building its statement to answering its callers"
	rawBusyFigure        = "raw pgx, unnest at the inbox's commit sizes (%d concurrent): share of the phase its workers were committing"
	rawCommitFigure      = "raw pgx, unnest at the inbox's commit sizes (%d concurrent): mean commit, from building its arrays to PostgreSQL's answer"
	sameConcurrencyRatio = "inbox/raw unnest at the same concurrency (%d), per round"
	busyPartFigure       = "of which: committers' busy share/the raw workers'"
	commitPartFigure     = "of which: raw commit/inbox commit"
)

// rawSeries collects a raw baseline's three ways over the rounds.
type rawSeries struct {
	single, few, many []float64
	// fastest is the fastest of the three in each round: the log's figure
	// and a second ratio, never the target's (best).
	fastest []float64
	// sizes are the commit sizes of the subject phases the batched ways
	// replayed, all rounds together.
	sizes []int
}

func (rs *rawSeries) add(single, few, many float64, sizes []int) {
	rs.single = append(rs.single, single)
	rs.few = append(rs.few, few)
	rs.many = append(rs.many, many)
	rs.fastest = append(rs.fastest, max(single, few, many))
	rs.sizes = append(rs.sizes, sizes...)
}

// ways names the three ways with their per-round rates, in report order.
func (rs *rawSeries) ways(senders, committers int) []Figure {
	return []Figure{
		{Name: fmt.Sprintf("raw pgx, one row per commit (%d concurrent)", senders), Unit: "rows/s", Stats: summarise(rs.single)},
		{Name: fmt.Sprintf("raw pgx, unnest at the inbox's commit sizes (%d concurrent)", committers), Unit: "rows/s", Stats: summarise(rs.few)},
		{Name: fmt.Sprintf("raw pgx, unnest at the inbox's commit sizes (%d concurrent)", senders), Unit: "rows/s", Stats: summarise(rs.many)},
	}
}

// best is the way with the highest median over the run: the best raw
// insert the target compares with, round by round. Taking the fastest way
// of each round instead would compare one draw of the subject with the
// largest of three draws of the baseline, and the noise of those short
// phases alone puts that maximum above the best way's typical round.
func (rs *rawSeries) best(senders, committers int) Figure {
	ways := rs.ways(senders, committers)
	b := ways[0]
	for _, w := range ways[1:] {
		if w.Stats.Median > b.Stats.Median {
			b = w
		}
	}
	return b
}

func (rs *rawSeries) figures(senders, committers int) []Figure {
	b := rs.best(senders, committers)
	return append([]Figure{
		{Name: "best raw pgx: " + strings.TrimPrefix(b.Name, "raw pgx, ") + ", the way with the highest median of the three below", Unit: b.Unit, Stats: b.Stats},
		{Name: "fastest raw pgx of each round (the largest of the three below in each round)", Unit: "rows/s", Stats: summarise(rs.fastest)},
	}, rs.ways(senders, committers)...)
}

// sizeFigures describe the commits the batcher formed.
func sizeFigures(sizes []int, rounds int) []Figure {
	if len(sizes) == 0 {
		return nil
	}
	f := make([]float64, len(sizes))
	total := 0
	for i, n := range sizes {
		f[i] = float64(n)
		total += n
	}
	st := summarise(f)
	return []Figure{
		{Name: "inbox commits per round", Unit: "commits", Stats: summarise([]float64{float64(len(sizes)) / float64(rounds)})},
		{Name: "rows per inbox commit (median, min, max over all commits)", Unit: "rows", Stats: Stats{Median: st.Median, Min: st.Min, Max: st.Max}},
		{Name: "rows per inbox commit (mean)", Unit: "rows", Stats: summarise([]float64{float64(total) / float64(len(sizes))})},
	}
}

// IngestResults are M1, M2 and Temporal's SignalWithStart capacity, which
// M3 paces itself by.
type IngestResults struct {
	M1, M2 Result
	// SignalCapacity is the raw SignalWithStart rate at the webhooks'
	// concurrency (median per second).
	SignalCapacity float64
	// SignalConcurrency is that concurrency.
	SignalConcurrency int
	// PoolSize is the pgx pool size the edge ran with.
	PoolSize int32
}

// M1's and M2's targets: the inbox's rows/s over the best raw insert's,
// and the webhooks' over the best raw insert's and over SignalWithStart's
// calls/s.
const (
	insertTarget        ratioTarget = 0.85
	webhookInsertTarget ratioTarget = 0.6
	webhookSignalTarget ratioTarget = 10
)

// Ingest measures M1 and M2. Each round runs InsertInboxEvent (M1), its raw
// baselines, signed webhooks through the HTTP handler (M2), their raw
// baselines, and raw SignalWithStart at the webhooks' concurrency, in that
// order on even rounds and in reverse on odd ones (ABBA). The batched raw
// baselines replay the commit sizes the inbox formed in its latest phase.
// The dispatcher is not running: M2 is the ingest path alone; M3 adds the
// hand-off.
func (e *Env) Ingest(ctx context.Context, tb testing.TB) (IngestResults, error) {
	started := time.Now()
	c, err := e.dial(nil)
	if err != nil {
		return IngestResults{}, err
	}
	defer c.Close()
	g, err := e.newEdge(ctx, e.NewDatabase(tb), c, e.queue("ingest"), defaultDispatcher())
	if err != nil {
		return IngestResults{}, err
	}
	defer g.close()
	hc := httpClient(e.Sizes.Senders)
	noWorker := e.queue("no-worker")
	sz := e.Sizes

	warmed, err := warmUp(ctx, g, hc, sz.Senders)
	if err != nil {
		return IngestResults{}, err
	}
	if _, err := rawSignalWithStart(ctx, c, noWorker, fmt.Sprintf("sws-warm-%d", time.Now().UnixNano()), sz.Senders, sz.Senders); err != nil {
		return IngestResults{}, err
	}

	var inboxRates, hooks, sws []float64
	// rawAsSubject is the raw unnest insert at the subject's concurrency,
	// run in the subject's place: what a subject exactly as fast as the raw
	// insert scores against the baselines in this run.
	var rawAsSubject []float64
	// Where the inbox's time goes against the raw insert at its
	// concurrency: how its committers (the raw way's workers) spent each
	// phase.
	var inboxTiming, rawTiming timingSeries
	var rawM1, rawM2 rawSeries
	var inboxSizes, hookSizes []int // the latest subject phase's commits
	var allInboxSizes, allHookSizes []int
	written := warmed
	for r := range sz.Rounds {
		inboxPhase := func() error {
			rows := inboxEvents(fmt.Sprintf("inbox-%d", r), sz.InboxRows)
			before, busyBefore := g.inbox.CommitSizes(), g.inbox.CommitTime()
			d, err := parallel(len(rows), sz.Senders, func(i int) error {
				inserted, err := g.inbox.Insert(ctx, rows[i])
				if err == nil && !inserted {
					err = fmt.Errorf("event %s was not new", rows[i].EventID)
				}
				return err
			})
			if err != nil {
				return err
			}
			inboxSizes = commitSizes(before, g.inbox.CommitSizes())
			allInboxSizes = append(allInboxSizes, inboxSizes...)
			inboxTiming.add(newWorkTiming(g.inbox.CommitTime()-busyBefore, len(inboxSizes), inbox.Committers, d))
			inboxRates = append(inboxRates, rate(len(rows), d))
			written += len(rows)
			return nil
		}
		rawM1Phase := func() error {
			if inboxSizes == nil { // the first odd round runs it before its subject
				return fmt.Errorf("no inbox commit sizes to replay")
			}
			single, few, many, fewTiming, err := rawBaselines(ctx, g, fmt.Sprintf("raw1-%d", r), r, sz.InboxRows, inboxSizes, sz.Senders, inbox.Committers)
			rawM1.add(single, few, many, inboxSizes)
			rawTiming.add(fewTiming)
			written += 3 * sz.InboxRows
			return err
		}
		rawAsSubjectPhase := func() error {
			if inboxSizes == nil {
				return fmt.Errorf("no inbox commit sizes to replay")
			}
			v, _, err := rawBatched(ctx, g, fmt.Sprintf("raw1s-%d", r), sz.InboxRows, inboxSizes, sz.Senders)
			rawAsSubject = append(rawAsSubject, v)
			written += sz.InboxRows
			return err
		}
		hookPhase := func() error {
			ws := signWebhooks(fmt.Sprintf("hook-%d", r), sz.Webhooks)
			before := g.inbox.CommitSizes()
			d, err := sendWebhooks(ctx, hc, g.url, ws, sz.Senders)
			if err != nil {
				return err
			}
			hookSizes = commitSizes(before, g.inbox.CommitSizes())
			allHookSizes = append(allHookSizes, hookSizes...)
			hooks = append(hooks, rate(len(ws), d))
			written += len(ws)
			return nil
		}
		rawM2Phase := func() error {
			if hookSizes == nil {
				return fmt.Errorf("no webhook commit sizes to replay")
			}
			single, few, many, _, err := rawBaselines(ctx, g, fmt.Sprintf("raw2-%d", r), r, sz.Webhooks, hookSizes, sz.Senders, inbox.Committers)
			rawM2.add(single, few, many, hookSizes)
			written += 3 * sz.Webhooks
			return err
		}
		swsPhase := func() error {
			capacity, err := e.signalCapacity(ctx, c, noWorker, fmt.Sprintf("sws-%d-%d", time.Now().UnixNano(), r))
			sws = append(sws, capacity)
			return err
		}
		if err := alternate(r,
			e.profiled("M1", 0, "InsertInboxEvent", inboxPhase), rawAsSubjectPhase, e.profiled("M1", 1, "raw pgx (its three variants, 3× the rows)", rawM1Phase),
			e.profiled("M2", 0, "webhooks", hookPhase), e.profiled("M2", 1, "raw pgx (its three variants, 3× the rows)", rawM2Phase), swsPhase); err != nil {
			return IngestResults{}, err
		}
		e.logf("ingest round %d: inbox %.0f/s (fastest raw %.0f/s), webhooks %.0f/s (fastest raw %.0f/s), SignalWithStart %.0f/s",
			r+1, inboxRates[r], rawM1.fastest[r], hooks[r], rawM2.fastest[r], sws[r])
	}

	// Every row the rounds claimed to write is there.
	var stored int
	if err := g.store.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_inbox`).Scan(&stored); err != nil {
		return IngestResults{}, fmt.Errorf("count inbox: %w", err)
	}
	if stored != written {
		return IngestResults{}, fmt.Errorf("inbox holds %d rows, the rounds wrote %d", stored, written)
	}

	poolSize := g.store.Pool().Config().MaxConns
	elapsed := time.Since(started)
	swsF := Figure{Name: fmt.Sprintf("raw SignalWithStart (%d concurrent)", sz.Senders), Unit: "calls/s", Stats: summarise(sws)}
	m1Best := rawM1.best(sz.Senders, inbox.Committers).Stats.Values
	m1Ratio := summarise(ratios(inboxRates, m1Best))
	m1 := Result{
		ID: "M1", What: "inbox write (InsertInboxEvent)",
		Subject:   Figure{Name: "InsertInboxEvent", Unit: "rows/s", Stats: summarise(inboxRates)},
		Baselines: rawM1.figures(sz.Senders, inbox.Committers),
		Ratios: []Figure{{Name: "inbox/best raw", Unit: "×", Stats: m1Ratio, Bound: float64(insertTarget)},
			{Name: "inbox/fastest raw of each round (no target)", Unit: "×", Stats: summarise(ratios(inboxRates, rawM1.fastest))}},
		Extra: append([]Figure{
			{Name: fmt.Sprintf("raw unnest (%d concurrent) run as a subject", sz.Senders), Unit: "rows/s", Stats: summarise(rawAsSubject)},
			{Name: rawAsSubjectRatio, Unit: "×", Stats: summarise(ratios(rawAsSubject, m1Best))},
			{Name: "that subject/fastest raw of each round", Unit: "×", Stats: summarise(ratios(rawAsSubject, rawM1.fastest))},
			{Name: fmt.Sprintf(committersBusyFigure, inbox.Committers), Unit: "share", Stats: summarise(inboxTiming.busy)},
			{Name: inboxCommitFigure, Unit: "ms", Stats: summarise(inboxTiming.mean)},
			{Name: fmt.Sprintf(rawBusyFigure, inbox.Committers), Unit: "share", Stats: summarise(rawTiming.busy)},
			{Name: fmt.Sprintf(rawCommitFigure, inbox.Committers), Unit: "ms", Stats: summarise(rawTiming.mean)},
			{Name: fmt.Sprintf(sameConcurrencyRatio, inbox.Committers), Unit: "×", Stats: summarise(ratios(inboxRates, rawM1.few))},
			{Name: busyPartFigure, Unit: "×", Stats: summarise(ratios(inboxTiming.busy, rawTiming.busy))},
			{Name: commitPartFigure, Unit: "×", Stats: summarise(ratios(rawTiming.mean, inboxTiming.mean))},
		}, sizeFigures(allInboxSizes, sz.Rounds)...),
		Target: insertTarget.String(), Pass: insertTarget.met(m1Ratio),
		Headline: fmt.Sprintf("%s rows/s", num(summarise(inboxRates).Median)),
		Rounds:   sz.Rounds, Elapsed: elapsed,
		Notes: []string{
			fmt.Sprintf("%d rows per phase from %d goroutines sharing the store's pgx pool (%d connections, read from the pool's config); "+
				"the inbox lets %d commits run at once and writes whatever queued meanwhile in one statement. "+
				"The raw baselines insert the same columns on the same pool: one row per commit from %d goroutines, and multi-row INSERT … SELECT FROM unnest "+
				"in batches of exactly the sizes the inbox's commits had in the latest inbox phase (from %d and from %d goroutines), the three taking turns to go first. The ratio is to the best of the three: the way with the highest median, taken round by round. "+
				"The fastest of the three in each round is also shown, with its ratio, for comparison with earlier reports; it is the largest of three noisy draws, "+
				"so it sits above the best way's typical round and a ratio to it reads low. "+
				"To show where a perfect subject would land, each round also runs the raw unnest insert from %d goroutines in the subject's place and scores it both ways.",
				sz.InboxRows, sz.Senders, poolSize, inbox.Committers, sz.Senders, inbox.Committers, sz.Senders, sz.Senders),
			"Commit sizes of the inbox phases: " + sizeHistogram(allInboxSizes) + ".",
		},
	}
	hookRatio := summarise(ratios(hooks, rawM2.best(sz.Senders, inbox.Committers).Stats.Values))
	swsRatio := summarise(ratios(hooks, sws))
	m2 := Result{
		ID: "M2", What: "signed Stripe webhooks acknowledged",
		Subject:   Figure{Name: "webhooks acknowledged", Unit: "webhooks/s", Stats: summarise(hooks)},
		Baselines: append(rawM2.figures(sz.Senders, inbox.Committers), swsF),
		Ratios: []Figure{{Name: "webhooks/best raw", Unit: "×", Stats: hookRatio, Bound: float64(webhookInsertTarget)},
			{Name: "webhooks/SignalWithStart", Unit: "×", Stats: swsRatio, Bound: float64(webhookSignalTarget)},
			{Name: "webhooks/fastest raw of each round (no target)", Unit: "×", Stats: summarise(ratios(hooks, rawM2.fastest))}},
		Extra:    sizeFigures(allHookSizes, sz.Rounds),
		Target:   fmt.Sprintf("%s of the best raw insert and %s× SignalWithStart", webhookInsertTarget, webhookSignalTarget),
		Pass:     webhookInsertTarget.met(hookRatio) && webhookSignalTarget.met(swsRatio),
		Headline: fmt.Sprintf("%s webhooks/s", num(summarise(hooks).Median)),
		Rounds:   sz.Rounds, Elapsed: elapsed,
		Notes: []string{
			fmt.Sprintf("%d payment_intent.succeeded deliveries per phase, signed with stripe-go's GenerateTestSignedPayload before the clock starts, "+
				"POSTed by %d concurrent senders over loopback HTTP (keep-alive) to the API handler `crmflow serve` builds; "+
				"the signing secret comes from the credential store as in `crmflow serve`. The load generator runs in the same process and on the same cores. "+
				"The raw baselines are M1's three, with the commit sizes of the latest webhook phase.",
				sz.Webhooks, sz.Senders),
			"Commit sizes of the webhook phases: " + sizeHistogram(allHookSizes) + ".",
			fmt.Sprintf("SignalWithStart: %d calls per phase at %d concurrent (the webhooks' concurrency), the same signal and input as the dispatcher's, to a task queue no worker polls.",
				sz.SignalCalls, sz.Senders),
		},
	}
	return IngestResults{M1: m1, M2: m2, SignalCapacity: summarise(sws).Median, SignalConcurrency: sz.Senders, PoolSize: poolSize}, nil
}

// sizeHistogram prints commit sizes as "rows×commits" pairs, largest first.
func sizeHistogram(sizes []int) string {
	if len(sizes) == 0 {
		return "none"
	}
	counts := map[int]int{}
	var keys []int
	for _, n := range sizes {
		if counts[n] == 0 {
			keys = append(keys, n)
		}
		counts[n]++
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d rows×%d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// PoolTuning is the ingest rate at one pgx pool size.
type PoolTuning struct {
	PoolSize int
	// RawInsert and Webhooks are medians over the tuning rounds.
	RawInsert, Webhooks Stats
}

// TunePool measures raw inserts and webhooks at each pool size in
// Sizes.PoolSizes (pool_max_conns in the database URL), interleaving the
// sizes within each round.
func (e *Env) TunePool(ctx context.Context, tb testing.TB) ([]PoolTuning, error) {
	sz := e.Sizes
	if len(sz.PoolSizes) == 0 {
		return nil, nil
	}
	c, err := e.dial(nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	url := e.NewDatabase(tb)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	edges := make([]*edge, len(sz.PoolSizes))
	for i, p := range sz.PoolSizes {
		g, err := e.newEdge(ctx, fmt.Sprintf("%s%spool_max_conns=%d", url, sep, p), c, e.queue("pool"), defaultDispatcher())
		if err != nil {
			return nil, err
		}
		defer g.close()
		edges[i] = g
	}
	hc := httpClient(sz.Senders)
	for _, g := range edges {
		if _, err := warmUp(ctx, g, hc, sz.Senders); err != nil {
			return nil, err
		}
	}
	raw := make([][]float64, len(edges))
	hooks := make([][]float64, len(edges))
	rounds := max(sz.Rounds-3, 1)
	for r := range rounds {
		for i, g := range edges {
			rows := inboxEvents(fmt.Sprintf("pool-%d-%d-raw", i, r), sz.InboxRows)
			d, err := parallel(len(rows), sz.Senders, func(k int) error {
				ev := rows[k]
				_, err := g.store.Pool().Exec(ctx, rawInsert, rawArgs(ev)...)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("raw insert: %w", err)
			}
			raw[i] = append(raw[i], rate(len(rows), d))
			ws := signWebhooks(fmt.Sprintf("pool-%d-%d-hook", i, r), sz.Webhooks)
			d, err = sendWebhooks(ctx, hc, g.url, ws, sz.Senders)
			if err != nil {
				return nil, err
			}
			hooks[i] = append(hooks[i], rate(len(ws), d))
		}
	}
	out := make([]PoolTuning, len(edges))
	for i, p := range sz.PoolSizes {
		out[i] = PoolTuning{PoolSize: p, RawInsert: summarise(raw[i]), Webhooks: summarise(hooks[i])}
		e.logf("pool_max_conns=%d: raw insert %.0f/s, webhooks %.0f/s", p, out[i].RawInsert.Median, out[i].Webhooks.Median)
	}
	return out, nil
}
