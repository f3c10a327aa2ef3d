package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// Knock workflow keys the order confirmation triggers.
const (
	KnockOrderConfirmed     = "order-confirmation"
	KnockOrderPaymentFailed = "order-payment-failed"
	KnockOrderMismatch      = "order-payment-mismatch"
)

// OperatorsRecipient is the Knock recipient (a user standing for the
// operators' shared inbox) of alerts that need a human.
const OperatorsRecipient = "crmflow-operators"

var (
	orders *activities.OrderActivities
	stripe *activities.StripeActivities
	knock  *activities.KnockActivities
)

// orderConfirmation is one run's state; its methods are the steps.
type orderConfirmation struct {
	input  contract.OrderConfirmationInput
	status contract.Status
	parker *parker
	order  *activities.Order
	// seen holds the payment event ids already handled (a few per order).
	seen     []string
	payments workflow.ReceiveChannel
	// lastFailure is the latest failed attempt, kept while waiting for a
	// successful retry of the same PaymentIntent.
	lastFailure *contract.PaymentEvent
	// store runs the run's short PostgreSQL steps (see localStoreSteps).
	store activityPolicy
	// current: the run recorded orderBaseline, so every change it stands
	// for is made without asking.
	current bool
	// lean: the run recorded orderBaseline's version 2 (see leanStart).
	lean bool
}

// orderBaseline is the GetVersion change id of orders started from this
// release on. Its one marker stands for every earlier change of the
// workflow (payment-belongs-to-order, payment-receipt,
// step-attribute-on-waits, order-store-steps-local), which such runs take
// as made without asking for each: each GetVersion is a marker and a
// search-attribute upsert in every new run's history, engine work that
// M6 (BENCHMARKS.md) measures. Runs from before ask for each change as they
// did. Such runs also set CrmflowCustomerID with their first wait's
// CrmflowStep, in one command. A later change is a new version of this
// change id (see leanStart), not an id of its own: a new id would be one
// more marker and upsert in every new run.
const orderBaseline = "order-confirmation-baseline"

// leanStart is orderBaseline's version 2. Such a run
//   - does not set CrmflowOrderID when its start already did (crmflow's
//     starter sets it on every start), and
//   - takes a successful payment that is already waiting when it reaches
//     its wait (the usual case: the payment signal started it) without
//     starting the deadline timer or showing the wait in CrmflowStep; its
//     CrmflowCustomerID then goes out with the next step shown, a park or
//     done.
//
// That is one search-attribute upsert (a visibility write) and a timer's
// two events fewer per confirmed order (BENCHMARKS.md, M6). Runs at
// version 1 do as they did.
const leanStart workflow.Version = 2

// localStoreSteps is the GetVersion change id of orders whose PostgreSQL
// steps (load the order and its receipt, set its outcome, find the
// referral) run as local activities. Each was an activity task and a
// workflow task more for the engine, which is what limits how many orders a
// second it confirms (BENCHMARKS.md, M6); they run on the workflow's own
// queue, in the worker that already holds the database pool, and a retry
// waits out a database outage as before (storeOptions' timeouts).
const localStoreSteps = "order-store-steps-local"

// OrderConfirmation loads the order, waits for the payment outcome, checks
// it against the PaymentIntent at Stripe, marks the order, notifies the
// customer (Knock's in-app notice, then the receipt email through Resend:
// payment_receipt.go), and starts the referral reward for a referred
// customer's first paid order.
//
// A failed payment attempt does not end the wait: a Stripe PaymentIntent
// returns to requires_payment_method and the customer may pay again, so the
// customer is told at once and the order is marked payment_failed only if no
// payment succeeds before the deadline.
func OrderConfirmation(ctx workflow.Context, in contract.OrderConfirmationInput) (_ *contract.OrderConfirmationResult, err error) {
	if err := contract.ValidateKey("order ID", in.OrderID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	if in.PaymentTimeout <= 0 {
		in.PaymentTimeout = contract.DefaultPaymentTimeout
	}
	w := &orderConfirmation{input: in, status: contract.Status{Step: "start", State: "pending"}}
	p, err := newParker(ctx, &w.status, nil)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	w.parker = p
	w.payments = workflow.GetSignalChannel(ctx, contract.PaymentSignal)
	// Asked before the first upsert, which version 2 may leave out. A
	// version marker is not matched against commands on replay, so runs
	// that recorded it after that upsert replay unchanged.
	baseline := workflow.GetVersion(ctx, orderBaseline, workflow.DefaultVersion, leanStart)
	w.current, w.lean = baseline >= 1, baseline >= leanStart
	if !w.lean || !startedWith(ctx, contract.OrderIDKey, in.OrderID) {
		upsert(ctx, contract.OrderIDKey.ValueSet(in.OrderID))
	}
	res, err := w.run(ctx)
	awaitHandlers(ctx)
	if errors.Is(err, errSkipped) {
		return w.finish(ctx, "skipped", "an operator skipped a step the run could not continue without"), nil
	}
	return res, err
}

func (w *orderConfirmation) run(ctx workflow.Context) (*contract.OrderConfirmationResult, error) {
	w.store = storeOptions
	switch {
	case w.current:
		w.store = storeLocalOptions
		w.parker.steps.decide(false)
	case workflow.GetVersion(ctx, localStoreSteps, workflow.DefaultVersion, 1) >= 1:
		w.store = storeLocalOptions
	}
	if err := w.loadOrder(ctx); err != nil {
		return nil, err
	}
	if w.input.LatePayment != nil {
		// Only the inbox starts such a run, after the order's own run ended.
		return w.paidAfterClose(ctx, w.input.LatePayment)
	}
	if w.order.Status != "pending" {
		// A rerun for an order already decided changes nothing.
		return w.finish(ctx, w.order.Status, "order was already "+w.order.Status), nil
	}

	payment, err := w.awaitPayment(ctx)
	if err != nil {
		return nil, err
	}
	if payment == nil {
		outcome, reason := "expired", "no payment within "+w.input.PaymentTimeout.String()
		if w.lastFailure != nil {
			outcome, reason = "payment_failed", "payment failed: "+w.lastFailure.FailureMessage
		}
		if err := w.setOutcome(ctx, outcome, ""); err != nil {
			return nil, err
		}
		data := w.orderData()
		data["reason"] = outcome
		if err := w.notify(ctx, "notify-"+outcome, KnockOrderPaymentFailed, w.order.CustomerID, data); err != nil {
			return nil, err
		}
		return w.finish(ctx, outcome, reason), nil
	}

	if mismatch, err := w.verifyPayment(ctx, payment); err != nil {
		return nil, err
	} else if mismatch != "" {
		if err := w.setOutcome(ctx, "mismatch", payment.PaymentIntentID); err != nil {
			return nil, err
		}
		data := w.orderData()
		data["payment_intent_id"], data["mismatch"] = payment.PaymentIntentID, mismatch
		if err := w.notify(ctx, "notify-mismatch", KnockOrderMismatch, OperatorsRecipient, data); err != nil {
			return nil, err
		}
		return w.finish(ctx, "mismatch", mismatch), nil
	}

	if err := w.setOutcome(ctx, "confirmed", payment.PaymentIntentID); err != nil {
		return nil, err
	}
	if err := w.notify(ctx, "notify-confirmation", KnockOrderConfirmed, w.order.CustomerID, w.orderData()); err != nil {
		return nil, err
	}
	if err := w.sendReceipt(ctx); err != nil {
		return nil, err
	}
	referralID, err := w.startReferralReward(ctx)
	if err != nil {
		return nil, err
	}
	res := w.finish(ctx, "confirmed", "")
	res.ReferralID = referralID
	return res, nil
}

func (w *orderConfirmation) loadOrder(ctx workflow.Context) error {
	in := activities.LoadOrderInput{OrderID: w.input.OrderID}
	err := w.parker.step(ctx, "load-order", w.store, in, func(ctx workflow.Context) error {
		return w.store.execute(ctx, orders.LoadOrder, in).Get(ctx, &w.order)
	})
	if err != nil {
		return err
	}
	if w.current {
		w.parker.steps.also(contract.CustomerIDKey.ValueSet(w.order.CustomerID))
	} else {
		upsert(ctx, contract.CustomerIDKey.ValueSet(w.order.CustomerID))
	}
	memo := map[string]any{"order_id": w.order.ID, "customer_id": w.order.CustomerID,
		"amount_cents": w.order.AmountCents, "currency": w.order.Currency}
	if err := workflow.UpsertMemo(ctx, memo); err != nil {
		workflow.GetLogger(ctx).Error("Could not set memo", "error", err)
	}
	return nil
}

// awaitPayment waits for a successful payment event until the deadline and
// returns it, or nil when the deadline passed. Failed attempts are recorded
// and the customer is told about each one.
func (w *orderConfirmation) awaitPayment(ctx workflow.Context) (*contract.PaymentEvent, error) {
	var waiting *contract.PaymentEvent
	if w.lean {
		var ev contract.PaymentEvent
		if w.payments.ReceiveAsync(&ev) {
			if ev.Succeeded {
				w.seenBefore(ev.EventID)
				return &ev, nil
			}
			waiting = &ev // a failed attempt: the wait begins as before
		}
	}
	w.parker.setStep(ctx, "await-payment")
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	deadline := workflow.NewTimer(timerCtx, w.input.PaymentTimeout)
	for {
		var ev contract.PaymentEvent
		expired := false
		if waiting != nil {
			ev, waiting = *waiting, nil
		} else {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(w.payments, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &ev) })
			sel.AddFuture(deadline, func(workflow.Future) { expired = true })
			sel.Select(ctx)
		}
		if expired {
			return nil, nil
		}
		if w.seenBefore(ev.EventID) {
			continue
		}
		if ev.Succeeded {
			return &ev, nil
		}
		w.lastFailure = &ev
		w.status.State, w.status.Detail = "payment_failed_awaiting_retry", ev.FailureMessage
		// One notice per failed attempt: the event id keeps it idempotent.
		data := w.orderData()
		data["reason"], data["message"] = "attempt_failed", ev.FailureMessage
		if err := w.notify(ctx, "notify-payment-failed/"+ev.EventID, KnockOrderPaymentFailed, w.order.CustomerID, data); err != nil {
			return nil, err
		}
		w.parker.setStep(ctx, "await-payment")
	}
}

// seenBefore reports whether the event was handled already, remembering it.
func (w *orderConfirmation) seenBefore(eventID string) bool {
	for _, id := range w.seen {
		if id == eventID {
			return true
		}
	}
	w.seen = append(w.seen, eventID)
	return false
}

// paymentBelongsToOrder versions the check that a PaymentIntent pays this
// order: Stripe's metadata.order_id names it and, when the order's customer
// has a Stripe customer, the PaymentIntent is theirs. Before it, any
// succeeded PaymentIntent of the right amount and currency confirmed any
// order it was signalled to; runs that verified a payment before the change
// replay the old comparison (DefaultVersion).
const paymentBelongsToOrder = "payment-belongs-to-order"

// verifyPayment retrieves the PaymentIntent from Stripe and compares it with
// the order; it returns why they differ, or "".
func (w *orderConfirmation) verifyPayment(ctx workflow.Context, ev *contract.PaymentEvent) (string, error) {
	// Asked before the activity: from version 1 its input changes too.
	version := workflow.Version(1)
	if !w.current {
		version = workflow.GetVersion(ctx, paymentBelongsToOrder, workflow.DefaultVersion, 1)
	}
	in := activities.RetrievePaymentIntentInput{
		PaymentIntentID: ev.PaymentIntentID,
		Snapshot: &activities.PaymentIntentSnapshot{
			ID: ev.PaymentIntentID, Amount: ev.AmountCents, AmountReceived: ev.AmountReceivedCents,
			Currency: ev.Currency, Status: "succeeded", CustomerID: ev.CustomerID,
		},
	}
	if version >= 1 {
		// The signed event was routed to this run by its metadata.order_id
		// (the workflow ID is built from it), so the webhook's snapshot,
		// which console mode answers with and a skipped check trusts, names
		// this order as the event did.
		in.Snapshot.Metadata = map[string]string{"order_id": w.order.ID}
	}
	var pi *activities.PaymentIntentSnapshot
	err := w.parker.step(ctx, "verify-payment", stripeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, stripe.RetrievePaymentIntent, in).Get(ctx, &pi)
	})
	switch {
	case errors.Is(err, errSkipped):
		// The operator vouched for the payment; trust the signed webhook.
		pi = in.Snapshot
	case err != nil:
		return "", err
	}
	switch {
	case pi.Status != "succeeded":
		return fmt.Sprintf("PaymentIntent %s is %s, not succeeded", pi.ID, pi.Status), nil
	case pi.Currency != w.order.Currency:
		return fmt.Sprintf("currency %s, order is in %s", pi.Currency, w.order.Currency), nil
	case pi.AmountReceived != w.order.AmountCents:
		return fmt.Sprintf("received %d, order is %d", pi.AmountReceived, w.order.AmountCents), nil
	case version >= 1:
		return w.paymentOwnerMismatch(pi), nil
	}
	return "", nil
}

// paymentOwnerMismatch says why the PaymentIntent, as Stripe holds it, is not
// this order's payment, or "" when it is: the right amount is not enough,
// since any succeeded PaymentIntent of that amount could be signalled here.
func (w *orderConfirmation) paymentOwnerMismatch(pi *activities.PaymentIntentSnapshot) string {
	switch orderID := pi.Metadata["order_id"]; {
	case orderID != w.order.ID:
		return fmt.Sprintf("PaymentIntent %s is for order %q (metadata.order_id), not %s", pi.ID, orderID, w.order.ID)
	case w.order.StripeCustomerID != "" && pi.CustomerID != w.order.StripeCustomerID:
		return fmt.Sprintf("PaymentIntent %s belongs to Stripe customer %q, not the order's customer %s",
			pi.ID, pi.CustomerID, w.order.StripeCustomerID)
	}
	return ""
}

func (w *orderConfirmation) setOutcome(ctx workflow.Context, status, paymentIntentID string) error {
	in := activities.SetOrderOutcomeInput{OrderID: w.order.ID, Status: status, PaymentIntentID: paymentIntentID}
	err := w.parker.step(ctx, "mark-order", w.store, in, func(ctx workflow.Context) error {
		return w.store.execute(ctx, orders.SetOrderOutcome, in).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil // the operator will set the order by hand
	}
	return err
}

// orderData is the Knock data every order notification carries.
func (w *orderConfirmation) orderData() map[string]any {
	return map[string]any{"order_id": w.order.ID, "amount_cents": w.order.AmountCents, "currency": w.order.Currency}
}

// notify triggers a Knock workflow for one recipient. The idempotency key is
// the workflow ID plus the step, so a retried activity, a replayed history or
// a retried step never notifies twice.
func (w *orderConfirmation) notify(ctx workflow.Context, step, knockWorkflow, recipient string, data map[string]any) error {
	in := activities.NotifyInput{
		Workflow:       knockWorkflow,
		Recipients:     []string{recipient},
		Data:           data,
		IdempotencyKey: workflow.GetInfo(ctx).WorkflowExecution.ID + "/" + step,
	}
	err := w.parker.step(ctx, step, knockOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, in).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil // a notification an operator chose to drop
	}
	return err
}

// startReferralReward starts the referral's reward as a child that outlives
// this run, when the customer was referred and this is their first paid
// order. A reward already started (by a rerun or a backfill) is fine.
func (w *orderConfirmation) startReferralReward(ctx workflow.Context) (string, error) {
	in := activities.FindReferralInput{OrderID: w.order.ID}
	var found activities.FindReferralOutput
	err := w.parker.step(ctx, "find-referral", w.store, in, func(ctx workflow.Context) error {
		return w.store.execute(ctx, orders.FindReferral, in).Get(ctx, &found)
	})
	if errors.Is(err, errSkipped) || (err == nil && found.ReferralID == "") {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	w.parker.enterStep(ctx, "start-referral-reward")
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        contract.ReferralRewardID(found.ReferralID),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	child := workflow.ExecuteChildWorkflow(cctx, contract.ReferralRewardType, contract.ReferralRewardInput{
		ReferralID: found.ReferralID, OrderID: w.order.ID, ReferredCustomerID: w.order.CustomerID,
	})
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return "", fmt.Errorf("start referral reward %s: %w", found.ReferralID, err)
	}
	return found.ReferralID, nil
}

func (w *orderConfirmation) finish(ctx workflow.Context, state, detail string) *contract.OrderConfirmationResult {
	w.status.State, w.status.Detail = state, detail
	w.parker.setStep(ctx, "done")
	return &contract.OrderConfirmationResult{State: state}
}

// startedWith reports whether the keyword search attribute key is value.
// Asked before the run's first upsert, that is what its start set, which
// replay reads from the same start event.
func startedWith(ctx workflow.Context, key temporal.SearchAttributeKeyKeyword, value string) bool {
	got, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(key)
	return ok && got == value
}
