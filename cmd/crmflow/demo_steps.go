package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// seed creates the demo's customers, referral and orders. Every write is an
// upsert or insert-if-absent, so seeding the same ids twice is harmless.
func (d *demo) seed(ctx context.Context, st *store.Store) error {
	ids := d.ids
	customers := []store.Customer{
		{ID: ids.referrer, Email: "alice+" + ids.suffix + "@example.com", Name: "Alice (demo referrer)",
			StripeCustomerID: ids.referrerStripeCustomer},
		{ID: ids.referred, Email: "bob+" + ids.suffix + "@example.com", Name: "Bob (demo, referred by Alice)",
			ReferredBy: ids.referrer},
	}
	for _, c := range customers {
		if err := st.UpsertCustomer(ctx, c); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if err := st.InsertReferral(ctx, ids.referral, ids.referrer, ids.referred); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for _, id := range []string{ids.order1, ids.order2} {
		if err := st.InsertOrder(ctx, store.Order{ID: id, CustomerID: ids.referred, AmountCents: 4200, Currency: "eur"}); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	fmt.Fprintf(d.out, "\nSeeded:\n")
	for _, c := range customers {
		fmt.Fprintf(d.out, "  customer  %-30s %s\n", c.ID, c.Email)
	}
	fmt.Fprintf(d.out, "  referral  %-30s %s referred %s\n", ids.referral, ids.referrer, ids.referred)
	for _, id := range []string{ids.order1, ids.order2} {
		fmt.Fprintf(d.out, "  order     %-30s 42.00 EUR for %s (pending)\n", id, ids.referred)
	}
	return nil
}

// happyPath starts order 1's confirmation through the start API, pays it
// with a signed payment_intent.succeeded webhook and waits for "confirmed".
func (d *demo) happyPath(ctx context.Context) error {
	orderID := d.ids.order1
	fmt.Fprintf(d.out, "\n1. Happy path: order %s is placed, then paid\n", orderID)
	path := "/v1/orders/" + url.PathEscape(orderID) + "/confirmation"
	code, body, err := d.api(ctx, http.MethodPost, path)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return httpError("POST "+path, code, body)
	}
	var run struct {
		WorkflowID string `json:"workflow_id"`
		RunID      string `json:"run_id"`
	}
	if err := json.Unmarshal(body, &run); err != nil {
		return fmt.Errorf("POST %s: unexpected answer %s", path, body)
	}
	fmt.Fprintf(d.out, "  POST %s -> %d workflow_id=%s run_id=%s\n", path, code, run.WorkflowID, run.RunID)

	if err := d.sendPayment(ctx, stripego.EventTypePaymentIntentSucceeded, orderID, "1"); err != nil {
		return err
	}
	_, err = d.waitForState(ctx, contract.OrderConfirmationID(orderID), "confirmed")
	return err
}

// receipt waits for order 1's receipt email, which its confirmation sends
// through Resend once the order is confirmed, and shows its emails row.
func (d *demo) receipt(ctx context.Context, st *store.Store) error {
	key := contract.OrderConfirmationID(d.ids.order1) + "/send-receipt"
	ctx, cancel := context.WithTimeout(ctx, demoWaitTimeout)
	defer cancel()
	for {
		e, err := st.EmailByKey(ctx, key)
		switch {
		case err == nil && e.Status != store.EmailSending:
			mode := "sent through Resend"
			if e.Console {
				mode = "recorded, not sent: Resend is in console mode"
			}
			fmt.Fprintf(d.out, "  receipt email %s to %s: status=%s (%s)\n", e.Template+"."+e.TemplateVersion, e.Recipient, e.Status, mode)
			return nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("read the receipt's emails row: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no receipt email for %s within %s (see `crmflow dlq list`)", d.ids.order1, demoWaitTimeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// paymentFailure declines order 2's card: the confirmation, started by the
// webhook itself, waits for the customer to pay again.
func (d *demo) paymentFailure(ctx context.Context) error {
	orderID := d.ids.order2
	fmt.Fprintf(d.out, "\n2. Payment failure: the card for order %s is declined\n", orderID)
	if err := d.sendPayment(ctx, stripego.EventTypePaymentIntentPaymentFailed, orderID, "2"); err != nil {
		return err
	}
	if _, err := d.waitForState(ctx, contract.OrderConfirmationID(orderID), "payment_failed_awaiting_retry"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  The customer was told; the run now waits for the customer to pay again until the payment\n"+
		"  deadline (orders.payment_timeout: %s), and marks the order payment_failed only if none succeeds.\n",
		d.cfg.Orders.PaymentTimeout)
	return nil
}

// sendPayment posts a signed PaymentIntent event for the order to the Stripe
// webhook endpoint; n makes the event and PaymentIntent ids unique per order.
func (d *demo) sendPayment(ctx context.Context, eventType stripego.EventType, orderID, n string) error {
	eventID := "evt_demo_" + d.ids.suffix + "_" + n
	pi := demoPaymentIntent("pi_demo_"+d.ids.suffix+"_"+n, orderID, eventType)
	payload, sig, err := signedStripeEvent(d.cfg.Stripe.WebhookSecret.Reveal(), eventID, eventType, pi, time.Now())
	if err != nil {
		return err
	}
	const path = "/webhooks/stripe"
	code, body, err := d.do(ctx, http.MethodPost, path, payload, http.Header{
		"Content-Type":     {"application/json"},
		"Stripe-Signature": {sig},
	})
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return httpError("POST "+path, code, body)
	}
	fmt.Fprintf(d.out, "  POST %s %s (%s, %s) -> %d\n", path, eventType, eventID, pi["id"], code)
	return nil
}

// demoPaymentIntent is the PaymentIntent a Stripe event of eventType carries
// for a 42.00 EUR order.
func demoPaymentIntent(id, orderID string, eventType stripego.EventType) map[string]any {
	pi := map[string]any{
		"id":              id,
		"object":          "payment_intent",
		"amount":          4200,
		"amount_received": 4200,
		"currency":        "eur",
		"status":          "succeeded",
		"metadata":        map[string]string{"order_id": orderID},
	}
	if eventType == stripego.EventTypePaymentIntentPaymentFailed {
		pi["amount_received"] = 0
		pi["status"] = "requires_payment_method"
		pi["last_payment_error"] = map[string]any{"message": "Your card was declined."}
	}
	return pi
}

// signedStripeEvent builds a Stripe event around object and signs it the way
// Stripe does, with stripe-go's own helper. It returns the body and the
// Stripe-Signature header.
func signedStripeEvent(secret, eventID string, eventType stripego.EventType, object map[string]any, now time.Time) ([]byte, string, error) {
	payload, err := json.Marshal(map[string]any{
		"id":          eventID,
		"object":      "event",
		"api_version": stripego.APIVersion,
		"type":        eventType,
		"created":     now.Unix(),
		"livemode":    false,
		"data":        map[string]any{"object": object},
	})
	if err != nil {
		return nil, "", fmt.Errorf("encode stripe event: %w", err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: now})
	return signed.Payload, signed.Header, nil
}

// waitForState polls the workflow's status until its state is want, printing
// each change of step or state. It fails at once when the run parks or ends
// in another state, and after demoWaitTimeout.
func (d *demo) waitForState(ctx context.Context, workflowID, want string) (contract.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, demoWaitTimeout)
	defer cancel()
	path := workflowStatusPath(workflowID)
	var last contract.Status
	var lastProblem string
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return last, fmt.Errorf("%s did not reach state %q within %s (last: step=%q state=%q%s)",
					workflowID, want, demoWaitTimeout, last.Step, last.State, lastProblem)
			case <-time.After(250 * time.Millisecond):
			}
		}
		code, body, err := d.api(ctx, http.MethodGet, path)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				continue // reported as the timeout above
			}
			return last, err
		case code == http.StatusNotFound || code == http.StatusServiceUnavailable:
			// Not handed to Temporal yet, or Temporal busy: keep polling.
			lastProblem = "; GET " + path + " answered " + strconv.Itoa(code)
			continue
		case code != http.StatusOK:
			return last, httpError("GET "+path, code, body)
		}
		var res struct {
			Status contract.Status `json:"status"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return last, fmt.Errorf("GET %s: unexpected answer %s", path, body)
		}
		st := res.Status
		lastProblem = ""
		if st != last {
			d.printStatus(workflowID, st)
			last = st
		}
		switch {
		case st.State == want:
			return st, nil
		case st.Parked:
			return st, fmt.Errorf("%s is parked at step %s (%s): see `crmflow dlq list`", workflowID, st.Step, st.Detail)
		case st.Step == "done":
			return st, fmt.Errorf("%s ended in state %q, not %q: %s", workflowID, st.State, want, st.Detail)
		}
	}
}

func (d *demo) printStatus(workflowID string, st contract.Status) {
	line := fmt.Sprintf("  %s: step=%s state=%s", workflowID, st.Step, st.State)
	if st.Parked {
		line += " PARKED"
	}
	if st.Detail != "" {
		line += " (" + st.Detail + ")"
	}
	fmt.Fprintln(d.out, line)
}

// whereToLook tells the user where the runs can be inspected.
func (d *demo) whereToLook() {
	order1 := contract.OrderConfirmationID(d.ids.order1)
	order2 := contract.OrderConfirmationID(d.ids.order2)
	reward := contract.ReferralRewardID(d.ids.referral)
	user := contract.UserID(d.ids.user)
	ns := d.cfg.Temporal.Namespace
	fmt.Fprintf(d.out, `
Where to look:
  Temporal UI      %s
                   %s
  Referral reward  %s  (Bob's first paid order started it for Alice;
                   it holds for the refund window before crediting her)
                   %s
  New user         %s  (lives on, following Clerk's user events)
                   %s
  CLI              crmflow status %s
                   crmflow status %s
                   crmflow status %s
                   crmflow status %s
                   crmflow dlq list
`, temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, order1), temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, order2),
		reward, temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, reward), user, temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, user),
		order1, order2, reward, user)
}
