package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/worker"
	"github.com/crmflow/crmflow/workflows"
)

// workerStopTimeout is what worker.New uses when none is given; the baseline
// worker gets the same.
const workerStopTimeout = 10 * time.Second

// knockCounter is a console-mode Knock recorder that counts triggers by
// Knock workflow key.
type knockCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

// Record counts the call; it never fails.
func (k *knockCounter) Record(_ context.Context, call knock.Call) error {
	key := strings.TrimSuffix(strings.TrimPrefix(call.Path, "/v1/workflows/"), "/trigger")
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.calls == nil {
		k.calls = map[string]int{}
	}
	k.calls[key]++
	return nil
}

func (k *knockCounter) count(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[key]
}

// consoleActivities are the worker's activities with every provider in
// console mode (nothing leaves the process) and the store for real.
func consoleActivities(st *store.Store, s *starter.Starter, kc *knockCounter) (worker.Activities, error) {
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	if err != nil {
		return worker.Activities{}, fmt.Errorf("keyring: %w", err)
	}
	creds := credentials.NewStore(st, keys, credentials.Options{})
	resend := &activities.ResendActivities{Console: true}
	return worker.Activities{
		Orders:      &activities.OrderActivities{Store: st},
		Referrals:   &activities.ReferralActivities{Store: st, StripeConsole: true},
		Inventory:   &activities.InventoryActivities{Store: st, Signaller: s},
		Aliases:     &activities.AliasStoreActivities{Store: st},
		SimpleLogin: &activities.SimpleLoginActivities{SL: simplelogin.NewConsole(simplelogin.LogRecorder{Logger: discardSlog})},
		Credentials: &activities.CredentialActivities{Store: creds},
		KeyVerifier: &activities.KeyVerifier{Verify: func(context.Context, string, string) (bool, string, error) {
			return false, "no provider in the benchmark", nil
		}},
		Resend:      resend,
		Email:       &activities.EmailActivities{Resend: resend, Store: st},
		Receipts:    &activities.ReceiptActivities{Store: st},
		Stripe:      &activities.StripeActivities{Console: true},
		Knock:       &activities.KnockActivities{Knock: knock.NewConsole(kc)},
		DeadLetters: &activities.DeadLetterActivities{Store: st},
	}, nil
}

// startConsoleWorker starts crmflow's worker (worker.New) on queue with
// every provider in console mode and the store for real, as M6 runs it;
// tune, when set, adjusts the activities first. It returns the Knock
// recorder and a func stopping the worker.
func startConsoleWorker(c client.Client, st *store.Store, s *starter.Starter, queue string,
	tune func(*worker.Activities)) (*knockCounter, func(), error) {
	kc := &knockCounter{}
	acts, err := consoleActivities(st, s, kc)
	if err != nil {
		return nil, nil, err
	}
	if tune != nil {
		tune(&acts)
	}
	w := worker.New(c, worker.Options{TaskQueue: queue, Activities: acts})
	if err := w.Start(); err != nil {
		return nil, nil, fmt.Errorf("start crmflow worker: %w", err)
	}
	return kc, w.Stop, nil
}

// minimalOrderType is the baseline workflow of M6.
const minimalOrderType = "BenchMinimalOrder"

// minimalOrderInput says how many activities the baseline runs, of each
// kind.
type minimalOrderInput struct {
	OrderID         string `json:"order_id"`
	Activities      int    `json:"activities"`
	LocalActivities int    `json:"local_activities"`
	// ActivityQueues, when set, carry the activities in turn instead of the
	// workflow's own queue (see orderRig.minimalApart).
	ActivityQueues []string `json:"activity_queues,omitempty"`
}

// minimalOrder is the least a workflow doing the order confirmation's job
// could do: wait for the payment signal, then run as many activities of
// each kind as the real one, each doing nothing. A local activity costs the
// engine far less than an activity task, so a fair baseline makes the same
// choice the real workflow made.
func minimalOrder(ctx workflow.Context, in minimalOrderInput) (string, error) {
	var ev contract.PaymentEvent
	workflow.GetSignalChannel(ctx, contract.PaymentSignal).Receive(ctx, &ev)
	for i := range in.Activities {
		opts := workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second}
		if len(in.ActivityQueues) > 0 {
			opts.TaskQueue = in.ActivityQueues[i%len(in.ActivityQueues)]
		}
		actx := workflow.WithActivityOptions(ctx, opts)
		if err := workflow.ExecuteActivity(actx, noopActivity, i).Get(ctx, nil); err != nil {
			return "", err
		}
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for i := range in.LocalActivities {
		if err := workflow.ExecuteLocalActivity(lctx, noopActivity, i).Get(ctx, nil); err != nil {
			return "", err
		}
	}
	return "confirmed", nil
}

// noopActivity does nothing; it stands for one step of a workflow.
func noopActivity(_ context.Context, step int) (int, error) { return step, nil }

// seedOrders creates n pending orders (one customer each) named prefix-i.
func seedOrders(ctx context.Context, st *store.Store, prefix string, n int) ([]string, error) {
	ids := make([]string, n)
	_, err := parallel(n, 4, func(i int) error {
		id := fmt.Sprintf("%s-%d", prefix, i)
		ids[i] = id
		if err := st.UpsertCustomer(ctx, store.Customer{ID: "c-" + id, Email: "c-" + id + "@example.com"}); err != nil {
			return err
		}
		return st.InsertOrder(ctx, store.Order{ID: id, CustomerID: "c-" + id, AmountCents: 4200, Currency: "eur"})
	})
	return ids, err
}

// paymentFor is the signal a payment_intent.succeeded webhook for the order
// becomes.
func paymentFor(orderID string) contract.PaymentEvent {
	return contract.PaymentEvent{EventID: "evt_" + orderID, Succeeded: true, PaymentIntentID: "pi_" + orderID,
		AmountCents: 4200, AmountReceivedCents: 4200, Currency: "eur"}
}

// waitAll waits for every workflow's result and checks it.
func waitAll(ctx context.Context, c client.Client, ids []string, check func(id string, get func(any) error) error) error {
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := c.GetWorkflow(ctx, id, "")
			if err := check(id, func(v any) error { return run.Get(ctx, v) }); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

// OrderCounts are what M6 observed beyond its rates.
type OrderCounts struct {
	// Confirmed counts orders the subject confirmed (in PostgreSQL);
	// Notified counts console-mode Knock order-confirmation triggers.
	Confirmed, Notified int
	// Activities and LocalActivities are how many activities of each kind
	// one confirmation ran, and so how many the baseline runs.
	Activities, LocalActivities int
	// Minimal counts baseline runs completed, MinimalApart those of the
	// baseline with its activities on queues of their own.
	Minimal, MinimalApart int
	// ActivityQueues is how many task queues one confirmation's activities
	// ran on, none of them the workflow's own.
	ActivityQueues int
	// Events and MinimalEvents are the history lengths of one confirmation
	// and one baseline run.
	Events, MinimalEvents int
	// Upserts are the search-attribute upserts in one confirmation.
	Upserts int
}

// ordersTarget is M6's target: confirmations over minimal workflows.
const ordersTarget ratioTarget = 0.8

// orderRig runs M6's two workloads on one Temporal server: order
// confirmations on crmflow's worker (every provider in console mode,
// PostgreSQL for real) and the minimal workflow on a bare SDK worker with the
// same options, each polling a queue of its own, both started by
// signal-with-start as the dispatcher starts them.
type orderRig struct {
	c         client.Client
	st        *store.Store
	s         *starter.Starter
	kc        *knockCounter
	baseQueue string
	// apartQueues carry the activities of minimalApart's runs.
	apartQueues []string
	senders     int
	stops       []func()
	// shape describes one confirmation (the warm-up's history): how many
	// activities of each kind it ran, and so how many the minimal workflow
	// runs, its history length and its search-attribute upserts.
	shape historyCounts
}

// newOrderRig starts both workers on c, with the orders in a fresh
// database, and runs one confirmation to count the activities it runs.
func (e *Env) newOrderRig(ctx context.Context, tb testing.TB, c client.Client) (*orderRig, error) {
	st, err := store.Open(ctx, e.NewDatabase(tb))
	if err != nil {
		return nil, err
	}
	o := &orderRig{c: c, st: st, baseQueue: e.queue("minimal"), senders: e.Sizes.OrderSenders, stops: []func(){st.Close}}
	ready := false
	defer func() {
		if !ready {
			o.close()
		}
	}()
	queue := e.queue("orders")
	o.s = starter.New(c, starter.Options{TaskQueue: queue, PaymentTimeout: time.Hour})
	kc, stop, err := startConsoleWorker(c, st, o.s, queue, nil)
	if err != nil {
		return nil, err
	}
	o.kc, o.stops = kc, append(o.stops, stop)
	bw := sdkworker.New(c, o.baseQueue, sdkworker.Options{WorkerStopTimeout: workerStopTimeout})
	bw.RegisterWorkflowWithOptions(minimalOrder, workflow.RegisterOptions{Name: minimalOrderType})
	bw.RegisterActivity(noopActivity)
	if err := bw.Start(); err != nil {
		return nil, fmt.Errorf("start baseline worker: %w", err)
	}
	o.stops = append(o.stops, bw.Stop)

	warm := fmt.Sprintf("warm-%d", time.Now().UnixNano())
	if _, err := o.confirm(ctx, warm, 1); err != nil {
		return nil, err
	}
	if o.shape, err = historyShape(ctx, c, contract.OrderConfirmationID(warm+"-0")); err != nil {
		return nil, err
	}
	// As many activity-only workers as the confirmation used activity
	// queues, the way crmflow's worker polls each provider's queue.
	for i := range o.shape.ActivityQueues {
		q := fmt.Sprintf("%s-apart-%d", o.baseQueue, i)
		aw := sdkworker.New(c, q, sdkworker.Options{WorkerStopTimeout: workerStopTimeout, DisableWorkflowWorker: true})
		aw.RegisterActivity(noopActivity)
		if err := aw.Start(); err != nil {
			return nil, fmt.Errorf("start baseline activity worker: %w", err)
		}
		o.apartQueues, o.stops = append(o.apartQueues, q), append(o.stops, aw.Stop)
	}
	ready = true
	return o, nil
}

// close stops the workers, then closes the store.
func (o *orderRig) close() {
	for i := len(o.stops) - 1; i >= 0; i-- {
		o.stops[i]()
	}
}

// confirm seeds n pending orders, then times their confirmations from the
// first payment signal until the last result is in.
func (o *orderRig) confirm(ctx context.Context, prefix string, n int) (time.Duration, error) {
	ids, err := seedOrders(ctx, o.st, prefix, n)
	if err != nil {
		return 0, fmt.Errorf("seed orders: %w", err)
	}
	t0 := time.Now()
	if _, err := parallel(n, o.senders, func(i int) error {
		_, err := o.s.SignalPayment(ctx, ids[i], paymentFor(ids[i]))
		return err
	}); err != nil {
		return 0, err
	}
	wfIDs := make([]string, n)
	for i, id := range ids {
		wfIDs[i] = contract.OrderConfirmationID(id)
	}
	err = waitAll(ctx, o.c, wfIDs, func(id string, get func(any) error) error {
		var res contract.OrderConfirmationResult
		if err := get(&res); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if res.State != "confirmed" {
			return fmt.Errorf("%s ended %s, not confirmed", id, res.State)
		}
		return nil
	})
	return time.Since(t0), err
}

// minimalID is the workflow ID of the i-th minimal run of a phase.
func minimalID(prefix string, i int) string { return fmt.Sprintf("minimal/%s-%d", prefix, i) }

// minimal times n minimal workflows from the first signal-with-start until
// the last result is in.
func (o *orderRig) minimal(ctx context.Context, prefix string, n int) (time.Duration, error) {
	return o.runMinimal(ctx, prefix, n, nil)
}

// minimalApart is minimal with the activities on queues other than the
// workflow's, as many as the confirmation used, each polled by an
// activity-only worker. crmflow runs each provider's activities on that
// provider's queue, so that its breaker can pause one provider; the engine
// then cannot hand an activity to the worker that scheduled it in the
// answer to its workflow task (eager activity dispatch, which the minimal
// workflow's activities get on its own queue), and each activity task goes
// through matching. This baseline makes the same choice.
func (o *orderRig) minimalApart(ctx context.Context, prefix string, n int) (time.Duration, error) {
	return o.runMinimal(ctx, prefix+"-apart", n, o.apartQueues)
}

func (o *orderRig) runMinimal(ctx context.Context, prefix string, n int, queues []string) (time.Duration, error) {
	t0 := time.Now()
	ids := make([]string, n)
	if _, err := parallel(n, o.senders, func(i int) error {
		ids[i] = minimalID(prefix, i)
		_, err := o.c.SignalWithStartWorkflow(ctx, ids[i], contract.PaymentSignal, paymentFor(ids[i]),
			client.StartWorkflowOptions{ID: ids[i], TaskQueue: o.baseQueue},
			minimalOrderType, minimalOrderInput{OrderID: ids[i], Activities: o.shape.Activities, LocalActivities: o.shape.LocalActivities,
				ActivityQueues: queues})
		return err
	}); err != nil {
		return 0, fmt.Errorf("start minimal workflow: %w", err)
	}
	err := waitAll(ctx, o.c, ids, func(id string, get func(any) error) error {
		var state string
		if err := get(&state); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		return nil
	})
	return time.Since(t0), err
}

// outcome counts the orders the rig's store holds confirmed and the Knock
// order-confirmation triggers recorded.
func (o *orderRig) outcome(ctx context.Context) (confirmed, notified int, err error) {
	if err := o.st.Pool().QueryRow(ctx, `SELECT count(*) FROM orders WHERE status = 'confirmed'`).Scan(&confirmed); err != nil {
		return 0, 0, fmt.Errorf("count confirmed orders: %w", err)
	}
	return confirmed, o.kc.count(workflows.KnockOrderConfirmed), nil
}

// Orders measures M6: order confirmations completed per second, each
// started by the payment signal (signal-with-start, as the dispatcher
// does) and run by crmflow's worker with every provider in console mode,
// against a minimal workflow with the same number of activities on a worker
// with the same options, started the same way at the same concurrency.
func (e *Env) Orders(ctx context.Context, tb testing.TB) (Result, OrderCounts, error) {
	started := time.Now()
	sz := e.Sizes
	var counts OrderCounts
	c, err := e.dial(nil)
	if err != nil {
		return Result{}, counts, err
	}
	defer c.Close()
	o, err := e.newOrderRig(ctx, tb, c)
	if err != nil {
		return Result{}, counts, err
	}
	defer o.close()
	counts.Events, counts.Activities, counts.LocalActivities, counts.Upserts, counts.ActivityQueues =
		o.shape.Events, o.shape.Activities, o.shape.LocalActivities, o.shape.Upserts, o.shape.ActivityQueues

	var base, apart, subj []float64
	for r := range sz.Rounds {
		prefix := fmt.Sprintf("o%d-%d", time.Now().UnixNano(), r)
		err := alternate(r,
			e.profiled("M6", 1, "minimal workflow", func() error {
				d, err := o.minimal(ctx, prefix, sz.Orders)
				if err != nil {
					return err
				}
				base = append(base, rate(sz.Orders, d))
				counts.Minimal += sz.Orders
				if r == 0 {
					var minimal historyCounts
					minimal, err = historyShape(ctx, c, minimalID(prefix, 0))
					counts.MinimalEvents = minimal.Events
				}
				return err
			}),
			e.profiled("M6", 0, "OrderConfirmation", func() error {
				d, err := o.confirm(ctx, prefix, sz.Orders)
				subj = append(subj, rate(sz.Orders, d))
				return err
			}),
			// Not profiled: the profile compares the target's two sides.
			func() error {
				d, err := o.minimalApart(ctx, prefix, sz.Orders)
				apart = append(apart, rate(sz.Orders, d))
				counts.MinimalApart += sz.Orders
				return err
			})
		if err != nil {
			return Result{}, counts, err
		}
		e.logf("orders round %d: minimal workflow %.1f/s, its activities apart %.1f/s, order confirmation %.1f/s", r+1, base[r], apart[r], subj[r])
	}
	if counts.Confirmed, counts.Notified, err = o.outcome(ctx); err != nil {
		return Result{}, counts, err
	}
	ratio, apartRatio := summarise(ratios(subj, base)), summarise(ratios(subj, apart))
	return Result{
		ID: "M6", What: "order confirmations completed",
		Subject: Figure{Name: "OrderConfirmation completed", Unit: "orders/s", Stats: summarise(subj)},
		Baselines: []Figure{
			{Name: fmt.Sprintf("minimal workflow, %d no-op activities and %d local", counts.Activities, counts.LocalActivities), Unit: "workflows/s", Stats: summarise(base)},
			{Name: fmt.Sprintf("minimal workflow, its activities on %d queues of their own", counts.ActivityQueues), Unit: "workflows/s", Stats: summarise(apart)},
		},
		Ratios: []Figure{
			{Name: "crmflow/minimal", Unit: "×", Stats: ratio, Bound: float64(ordersTarget)},
			{Name: "crmflow/minimal with its activities apart (no eager dispatch)", Unit: "×", Stats: apartRatio},
		},
		Extra: []Figure{
			{Name: "history events of one OrderConfirmation", Unit: "events", Stats: summarise([]float64{float64(counts.Events)})},
			{Name: "history events of one minimal run", Unit: "events", Stats: summarise([]float64{float64(counts.MinimalEvents)})},
			{Name: "search-attribute upserts in one OrderConfirmation", Unit: "events", Stats: summarise([]float64{float64(counts.Upserts)})},
		},
		Target: ordersTarget.String(), Pass: ordersTarget.met(ratio),
		Headline: fmt.Sprintf("%s orders/s", num(summarise(subj).Median)),
		Rounds:   sz.Rounds, Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("%d orders per phase, started %d at a time with signal-with-start of the payment event; the clock stops when the last run's result is in. "+
				"crmflow's worker is worker.New with every provider in console mode (Stripe trusts the signed event, Knock records), PostgreSQL for real; "+
				"the baseline worker is a bare SDK worker with the same options (default pollers and slots, stop timeout %s). "+
				"A confirmation ran %d activities and %d local activities (read from its history), so the baseline runs as many of each. "+
				"%d orders confirmed in PostgreSQL, %d Knock order-confirmation triggers recorded.",
				sz.Orders, sz.OrderSenders, workerStopTimeout, counts.Activities, counts.LocalActivities, counts.Confirmed, counts.Notified),
			fmt.Sprintf("The target is on the first baseline. The second runs the same workflow with its activities on %d queues other than its own, "+
				"as the confirmation's %d activities were (its providers' queues), each polled by an activity-only worker, in the same rounds; its phase is not profiled. "+
				"What the gap between the two ratios means is under \"What the numbers say\".",
				counts.ActivityQueues, counts.Activities),
		},
	}, counts, nil
}

// historyCounts describes a closed run's history.
type historyCounts struct {
	// Events is the history's length.
	Events int
	// Activities are the activity tasks it scheduled, LocalActivities the
	// local activities it recorded.
	Activities, LocalActivities int
	// Upserts are its search-attribute upserts.
	Upserts int
	// ActivityQueues counts the task queues other than the workflow's own
	// that its activities were scheduled on.
	ActivityQueues int
}

// localActivityMarker is the marker name the SDK records a local
// activity's result under.
const localActivityMarker = "LocalActivity"

// historyShape counts the events of a closed run.
func historyShape(ctx context.Context, c client.Client, workflowID string) (historyCounts, error) {
	var h historyCounts
	var own string
	apart := map[string]bool{}
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return historyCounts{}, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		h.Events++
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			own = ev.GetWorkflowExecutionStartedEventAttributes().GetTaskQueue().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			h.Activities++
			if q := ev.GetActivityTaskScheduledEventAttributes().GetTaskQueue().GetName(); q != own {
				apart[q] = true
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == localActivityMarker {
				h.LocalActivities++
			}
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			h.Upserts++
		}
	}
	h.ActivityQueues = len(apart)
	return h, nil
}
