package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	return parallel(n, concurrency, func(i int) error {
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

// IngestResults are M1, M2 and Temporal's SignalWithStart capacity, which
// M3 paces itself by.
type IngestResults struct {
	M1, M2 Result
	// SignalCapacity is the raw SignalWithStart rate at SignalConcurrency
	// (median per second).
	SignalCapacity float64
	// PoolSize is the pgx pool size the edge ran with.
	PoolSize int32
}

// Ingest measures M1 and M2. Each round runs, in this order: raw pgx insert
// (baseline), InsertInboxEvent (M1), signed webhooks through the HTTP
// handler (M2), raw SignalWithStart (M2's second baseline). The dispatcher is
// not running: M2 is the ingest path alone; M3 adds the hand-off.
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
	if _, err := rawSignalWithStart(ctx, c, noWorker, fmt.Sprintf("sws-warm-%d", time.Now().UnixNano()), sz.SignalConcurrency, sz.SignalConcurrency); err != nil {
		return IngestResults{}, err
	}

	var raw, inbox, hooks, sws []float64
	for r := range sz.Rounds {
		rows := inboxEvents(fmt.Sprintf("raw-%d", r), sz.InboxRows)
		d, err := parallel(len(rows), sz.Senders, func(i int) error {
			ev := rows[i]
			if _, err := g.store.Pool().Exec(ctx, rawInsert, rawArgs(ev)...); err != nil {
				return fmt.Errorf("raw insert: %w", err)
			}
			return nil
		})
		if err != nil {
			return IngestResults{}, err
		}
		raw = append(raw, rate(len(rows), d))

		rows = inboxEvents(fmt.Sprintf("inbox-%d", r), sz.InboxRows)
		d, err = parallel(len(rows), sz.Senders, func(i int) error {
			inserted, err := g.inbox.Insert(ctx, rows[i])
			if err == nil && !inserted {
				err = fmt.Errorf("event %s was not new", rows[i].EventID)
			}
			return err
		})
		if err != nil {
			return IngestResults{}, err
		}
		inbox = append(inbox, rate(len(rows), d))

		ws := signWebhooks(fmt.Sprintf("hook-%d", r), sz.Webhooks)
		d, err = sendWebhooks(ctx, hc, g.url, ws, sz.Senders)
		if err != nil {
			return IngestResults{}, err
		}
		hooks = append(hooks, rate(len(ws), d))

		d, err = rawSignalWithStart(ctx, c, noWorker, fmt.Sprintf("sws-%d-%d", time.Now().UnixNano(), r), sz.SignalCalls, sz.SignalConcurrency)
		if err != nil {
			return IngestResults{}, err
		}
		sws = append(sws, rate(sz.SignalCalls, d))
		e.logf("ingest round %d: raw insert %.0f/s, inbox %.0f/s, webhooks %.0f/s, SignalWithStart %.0f/s",
			r+1, raw[r], inbox[r], hooks[r], sws[r])
	}

	// Every row the round claimed to write is there.
	var stored int
	if err := g.store.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_inbox`).Scan(&stored); err != nil {
		return IngestResults{}, fmt.Errorf("count inbox: %w", err)
	}
	if want := warmed + sz.Rounds*(2*sz.InboxRows+sz.Webhooks); stored != want {
		return IngestResults{}, fmt.Errorf("inbox holds %d rows, the rounds wrote %d", stored, want)
	}

	poolSize := g.store.Pool().Config().MaxConns
	elapsed := time.Since(started)
	rawF := Figure{"raw pgx insert", "rows/s", summarise(raw)}
	swsF := Figure{fmt.Sprintf("raw SignalWithStart (%d concurrent)", sz.SignalConcurrency), "calls/s", summarise(sws)}
	m1Ratio := summarise(ratios(inbox, raw))
	m1 := Result{
		ID: "M1", What: "inbox write (InsertInboxEvent)",
		Subject:   Figure{"InsertInboxEvent", "rows/s", summarise(inbox)},
		Baselines: []Figure{rawF},
		Ratios:    []Figure{{"inbox/raw", "×", m1Ratio}},
		Target:    ">= 0.85", Pass: m1Ratio.Median >= 0.85,
		Headline: fmt.Sprintf("%s rows/s", num(summarise(inbox).Median)),
		Rounds:   sz.Rounds, Elapsed: elapsed,
		Notes: []string{
			fmt.Sprintf("%d rows per phase from %d goroutines sharing the store's pgx pool (%d connections); "+
				"the baseline inserts the same columns with a plain INSERT on the same pool.", sz.InboxRows, sz.Senders, poolSize),
		},
	}
	hookRatio := summarise(ratios(hooks, raw))
	swsRatio := summarise(ratios(hooks, sws))
	m2 := Result{
		ID: "M2", What: "signed Stripe webhooks acknowledged",
		Subject:   Figure{"webhooks acknowledged", "webhooks/s", summarise(hooks)},
		Baselines: []Figure{rawF, swsF},
		Ratios:    []Figure{{"webhooks/raw insert", "×", hookRatio}, {"webhooks/SignalWithStart", "×", swsRatio}},
		Target:    ">= 0.6 of raw insert and >= 10× SignalWithStart",
		Pass:      hookRatio.Median >= 0.6 && swsRatio.Median >= 10,
		Headline:  fmt.Sprintf("%s webhooks/s", num(summarise(hooks).Median)),
		Rounds:    sz.Rounds, Elapsed: elapsed,
		Notes: []string{
			fmt.Sprintf("%d payment_intent.succeeded deliveries per phase, signed with stripe-go's GenerateTestSignedPayload before the clock starts, "+
				"POSTed by %d concurrent senders over loopback HTTP (keep-alive) to webhooks.NewServer(...).Handler(); "+
				"the signing secret comes from the credential store as in `crmflow serve`. The load generator runs in the same process and on the same cores.",
				sz.Webhooks, sz.Senders),
			fmt.Sprintf("SignalWithStart: %d calls per phase at %d concurrent, the same signal and input as the dispatcher's, to a task queue no worker polls.",
				sz.SignalCalls, sz.SignalConcurrency),
		},
	}
	return IngestResults{M1: m1, M2: m2, SignalCapacity: summarise(sws).Median, PoolSize: poolSize}, nil
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
