package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/worker"
)

// recoveredSink stores the events the Stripe reconciliation found in the
// inbox exactly as the Stripe webhook does (webhooks/stripe.go): the
// event's JSON as Stripe returned it is the payload, inbox.StripeEvent
// routes it, and the inbox's (provider, event id) key makes an event its
// webhook did deliver a duplicate. Rows are marked recovered. It lives in
// the binary's wiring because the worker's rooms may not import the inbox.
type recoveredSink struct {
	inbox *inbox.Store
	// dispatcher, when this process runs one, is poked after each new
	// routed row so the hand-off does not wait for its sweep; a worker-only
	// process leaves the rows to the HTTP processes' sweeps.
	dispatcher *atomic.Pointer[inbox.Dispatcher]
}

// StoreRecovered implements activities.RecoveredEventSink.
func (s recoveredSink) StoreRecovered(ctx context.Context, ev activities.RecoveredEvent) (bool, error) {
	if ev.Provider != contract.ProviderStripe {
		return false, fmt.Errorf("%w: no inbox route for recovered %s events", activities.ErrUnusableEvent, ev.Provider)
	}
	var se stripego.Event
	if err := json.Unmarshal(ev.Raw, &se); err != nil {
		return false, fmt.Errorf("%w: stripe event %s does not decode: %w", activities.ErrUnusableEvent, ev.ID, err)
	}
	if se.ID == "" || se.Type == "" || se.Data == nil {
		return false, fmt.Errorf("%w: stripe event %q has no id, type or data", activities.ErrUnusableEvent, ev.ID)
	}
	row, err := inbox.StripeEvent(se, ev.Raw)
	if err != nil {
		return false, fmt.Errorf("%w: %w", activities.ErrUnusableEvent, err)
	}
	row.Recovered = true
	inserted, err := s.inbox.Insert(ctx, row)
	switch {
	case store.IsDataException(err):
		return false, fmt.Errorf("%w: stripe event %s holds text the inbox cannot store: %w", activities.ErrUnusableEvent, ev.ID, err)
	case err != nil:
		return false, err
	}
	if inserted && row.Ignored == "" && s.dispatcher != nil {
		if d := s.dispatcher.Load(); d != nil {
			d.Poke()
		}
	}
	return inserted, nil
}

// withReconciliation wires the Stripe reconciliation to the inbox and
// registers crmflow_reconcile_recovered_total on reg.
func withReconciliation(ib *inbox.Store, dispatcher *atomic.Pointer[inbox.Dispatcher], reg prometheus.Registerer) worker.ActivityOption {
	return worker.WithReconciliation(recoveredSink{inbox: ib, dispatcher: dispatcher}, appmetrics.NewReconcileMetrics(reg))
}
