package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// demoWaitTimeout bounds each wait for a workflow to reach a state.
const demoWaitTimeout = 60 * time.Second

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Seed demo data and drive the workflows of a running `crmflow dev` through signed webhooks and API calls",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := signalContext(cmd.Context())
			cfg, err := g.load(true)
			if err != nil {
				return err
			}
			base := httpBaseURL(cfg.HTTPAddr)
			// Check the stack first, so a stopped stack gets a clear message
			// rather than a database connection error.
			if err := checkReady(ctx, &http.Client{Timeout: 10 * time.Second}, base); err != nil {
				return err
			}
			env, err := g.connect(ctx, false, true)
			if err != nil {
				return err
			}
			defer env.Close()
			return runDemo(ctx, env.cfg, env.store, cmd.OutOrStdout(), base)
		},
	}
}

// runDemo seeds demo data into st and drives the order confirmation of the
// crmflow HTTP server at httpBase (e.g. "http://127.0.0.1:8080") through the
// start API and signed Stripe webhooks, writing what happens to out. Every
// run uses fresh ids, so it can run any number of times against one stack.
func runDemo(ctx context.Context, cfg *config.Config, st *store.Store, out io.Writer, httpBase string) error {
	if len(cfg.APITokens) == 0 {
		return errors.New("no start-API token configured (api_tokens); `crmflow dev` uses " + config.DevAPIToken)
	}
	d := &demo{
		cfg:   cfg,
		out:   out,
		http:  &http.Client{Timeout: 10 * time.Second},
		base:  strings.TrimSuffix(httpBase, "/"),
		token: cfg.APITokens[0].Reveal(),
		ids:   newDemoIDs(demoSuffix(time.Now())),
	}
	if err := checkReady(ctx, d.http, d.base); err != nil {
		return err
	}
	fmt.Fprintf(out, "crmflow demo, run %s, against %s\n", d.ids.suffix, d.base)
	if err := d.seed(ctx, st); err != nil {
		return err
	}
	if err := d.happyPath(ctx); err != nil {
		return err
	}
	if err := d.paymentFailure(ctx); err != nil {
		return err
	}
	d.whereToLook()
	return nil
}

// demo is one run of the demo.
type demo struct {
	cfg   *config.Config
	out   io.Writer
	http  *http.Client
	base  string
	token string
	ids   demoIDs
}

// demoIDs are the run-unique ids of one demo run's data.
type demoIDs struct {
	suffix                 string
	referrer, referred     string
	referral               string
	order1, order2         string
	referrerStripeCustomer string
}

func newDemoIDs(suffix string) demoIDs {
	p := "demo-" + suffix
	return demoIDs{
		suffix:                 suffix,
		referrer:               p + "-alice",
		referred:               p + "-bob",
		referral:               p + "-referral",
		order1:                 p + "-order-1",
		order2:                 p + "-order-2",
		referrerStripeCustomer: "cus_demo_" + suffix,
	}
}

// demoSuffix is a short id unique to one run: the time in base 36 plus a
// little randomness, so runs in the same millisecond do not collide.
func demoSuffix(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 36) + hex.EncodeToString(b[:])
}

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
	ns := d.cfg.Temporal.Namespace
	fmt.Fprintf(d.out, `
Where to look:
  Temporal UI      %s
                   %s
  Referral reward  %s  (Bob's first paid order started it for Alice;
                   it holds for the refund window before crediting her)
                   %s
  CLI              crmflow status %s
                   crmflow status %s
                   crmflow status %s
                   crmflow dlq list
`, temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, order1), temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, order2),
		reward, temporalUIWorkflowURL(d.cfg.Dev.UIAddr, ns, reward), order1, order2, reward)
}

// temporalUIWorkflowURL links to a workflow in the Temporal UI. The UI
// encodes the workflow ID as one path segment (encodeURIComponent), so "/"
// becomes %2F; without a run ID it opens the latest run.
func temporalUIWorkflowURL(uiAddr, namespace, workflowID string) string {
	return httpBaseURL(uiAddr) + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// workflowStatusPath is the start API path of a workflow's status. The route
// takes the rest of the path as the ID, so its "/" stays a raw "/".
func workflowStatusPath(workflowID string) string {
	segs := strings.Split(workflowID, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/workflows/" + strings.Join(segs, "/")
}

// httpBaseURL turns a listen address into a URL to reach it: a wildcard
// host (":8080", "0.0.0.0:8080") is reached on loopback.
func httpBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// checkReady fails with a hint when the crmflow stack does not answer ready.
func checkReady(ctx context.Context, c *http.Client, base string) error {
	u := strings.TrimSuffix(base, "/") + "/readyz"
	fail := func(format string, args ...any) error {
		return fmt.Errorf("is `crmflow dev` running? GET %s failed: %s", u, fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail("%v", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fail("%s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// api calls the start API with the bearer token.
func (d *demo) api(ctx context.Context, method, path string) (int, []byte, error) {
	return d.do(ctx, method, path, nil, http.Header{"Authorization": {"Bearer " + d.token}})
}

// do sends one request to the crmflow server and returns the status code and
// body.
func (d *demo) do(ctx context.Context, method, path string, body []byte, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// httpError describes an unexpected answer, using crmflow's JSON error body
// when there is one.
func httpError(what string, code int, body []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return fmt.Errorf("%s: %d %s: %s", what, code, e.Error.Code, e.Error.Message)
	}
	return fmt.Errorf("%s: %d %s", what, code, bytes.TrimSpace(body))
}
