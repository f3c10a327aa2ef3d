package workflows_test

import (
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// leanRun records what one order confirmation asked of the engine beyond
// its activities: the timers it started and each search-attribute upsert.
type leanRun struct {
	timers  []time.Duration
	upserts []temporal.SearchAttributes
}

// watch starts recording; startedWithOrderID sets CrmflowOrderID on the
// start, as crmflow's starter does.
func (s *orderSuite) watch(startedWithOrderID bool) *leanRun {
	r := &leanRun{}
	if startedWithOrderID {
		s.Require().NoError(s.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(contract.OrderIDKey.ValueSet("o1"))))
	}
	s.env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { r.timers = append(r.timers, d) })
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		r.upserts = append(r.upserts, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil).Maybe()
	return r
}

// steps lists the CrmflowStep values upserted, in order, and whether any
// upsert set CrmflowOrderID.
func (r *leanRun) steps() (steps []string, orderID bool) {
	for _, sa := range r.upserts {
		if step, ok := sa.GetKeyword(contract.StepKey); ok {
			steps = append(steps, step)
		}
		orderID = orderID || sa.ContainsKey(contract.OrderIDKey)
	}
	return steps, orderID
}

// customerWith returns the step whose upsert carried CrmflowCustomerID.
func (r *leanRun) customerWith() string {
	for _, sa := range r.upserts {
		if customer, ok := sa.GetKeyword(contract.CustomerIDKey); ok && customer == "cus_1" {
			step, _ := sa.GetKeyword(contract.StepKey)
			return step
		}
	}
	return ""
}

func (s *orderSuite) confirmed() {
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Len(s.notified, 1)
	s.Equal("o1", s.outcomes[0].OrderID)
}

// The usual run: the payment signal started it, so the payment is waiting
// when the run reaches its wait. It takes it without a deadline timer and
// without showing a wait it never made; the customer goes out with done,
// and CrmflowOrderID, which the start set, is not set again.
func (s *orderSuite) TestPaymentWaitingAtTheWaitTakesNoTimer() {
	r := s.watch(true)
	s.signalAt(0, succeeded("evt_ok"))
	s.confirmed()
	s.Empty(r.timers, "no deadline timer for a payment already waiting")
	steps, orderID := r.steps()
	s.Equal([]string{"done"}, steps)
	s.False(orderID, "the start set CrmflowOrderID")
	s.Equal("done", r.customerWith())
}

// A payment not yet sent is waited for as before: the deadline timer runs
// and the wait is shown, with the customer.
func (s *orderSuite) TestPaymentNotYetSentIsWaitedFor() {
	r := s.watch(true)
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.confirmed()
	s.Equal([]time.Duration{time.Hour}, r.timers)
	steps, orderID := r.steps()
	s.Equal([]string{"await-payment", "done"}, steps)
	s.False(orderID)
	s.Equal("await-payment", r.customerWith())
}

// A failed attempt waiting at the wait starts the wait as before: the
// customer is told, the deadline runs, and the later success confirms.
func (s *orderSuite) TestFailedAttemptWaitingStartsTheWait() {
	r := s.watch(true)
	s.signalAt(0, failed("evt_fail"))
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Require().Len(s.notified, 2)
	s.Equal(workflows.KnockOrderPaymentFailed, s.notified[0].Workflow)
	s.Equal(orderWorkflowID+"/notify-payment-failed/evt_fail", s.notified[0].IdempotencyKey)
	s.Equal(workflows.KnockOrderConfirmed, s.notified[1].Workflow)
	s.Equal([]time.Duration{time.Hour}, r.timers)
	steps, _ := r.steps()
	s.Equal([]string{"await-payment", "done"}, steps)
}

// A run started without CrmflowOrderID (by hand, say) sets it itself.
func (s *orderSuite) TestOrderIDSetWhenTheStartDidNot() {
	r := s.watch(false)
	s.signalAt(0, succeeded("evt_ok"))
	s.confirmed()
	_, orderID := r.steps()
	s.True(orderID)
}

// A run that recorded the baseline's version 1 does what it did: it sets
// CrmflowOrderID again, starts the deadline timer and shows the wait, even
// with the payment waiting.
func (s *orderSuite) TestBaselineVersion1RunsAsBefore() {
	s.env.OnGetVersion("order-confirmation-baseline", workflow.DefaultVersion, 2).Return(workflow.Version(1))
	r := s.watch(true)
	s.signalAt(0, succeeded("evt_ok"))
	s.confirmed()
	s.Equal([]time.Duration{time.Hour}, r.timers)
	steps, orderID := r.steps()
	s.Equal([]string{"await-payment", "done"}, steps)
	s.True(orderID)
}
