package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// A low-stock entity parked on a step keeps taking stock levels; when its
// history reaches its bound it continues as new, and the next run takes
// the dead letter over and applies the operator's decision to that step.

// knockDown makes the next notification fail for good, which parks it.
func (s *lowStockSuite) knockDown() {
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("knock: 401", "KnockAuthFailed", errors.New("bad key"))).Once()
}

// takesOver expects the next run to take dead letter 7 over.
func (s *lowStockSuite) takesOver(moved bool) *[]activities.MoveDeadLetterInput {
	var got []activities.MoveDeadLetterInput
	s.env.OnActivity(dl.MoveDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MoveDeadLetterInput) (*activities.MoveDeadLetterOutput, error) {
			got = append(got, in)
			return &activities.MoveDeadLetterOutput{Moved: moved}, nil
		}).Once()
	return &got
}

// sendDecision sends the decision on dead letter 7 at offset at, once the
// run is parked on step.
func (s *lowStockSuite) sendDecision(at time.Duration, step, action string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "parked at %s", at)
		s.Equal(step, st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("decision rejected", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: action, Operator: "ops"})
	}, at)
}

// parkedInput is a run continued while parked on the alert, which was due
// at stockT0.
func parkedInput(level int) contract.LowStockInput {
	return contract.LowStockInput{SKU: stockSKU, MaxHistoryEvents: 50,
		State: &contract.LowStockState{Known: true, Level: level, ObservedAt: stockT0.Add(-time.Minute),
			Alert: contract.StockLowPending, AlertAt: stockT0, Seen: []string{"e1"}},
		Parked: &contract.ParkedStep{DeadLetterID: 7, Step: "notify-low-stock"}}
}

func (s *lowStockSuite) TestContinuesAsNewWhileParkedAtTheHistoryBound() {
	s.knockDown()
	s.signal(time.Minute, contract.StockLevel{Level: 4, ObservedAt: stockT0.Add(time.Minute), EventID: "e1"})
	// Levels keep coming while parked, and wait in the channel...
	s.signal(15*time.Minute, contract.StockLevel{Level: 3, ObservedAt: stockT0.Add(15 * time.Minute), EventID: "e2"})
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked)
		s.Equal("notify-low-stock", st.Step)
		// ...until the history is full.
		s.env.SetCurrentHistoryLength(51)
	}, 20*time.Minute)
	next := s.runToContinueAsNew(contract.LowStockInput{SKU: stockSKU, MaxHistoryEvents: 50})
	s.Empty(s.notified)
	s.Empty(s.decided, "the dead letter stays parked for the next run")
	s.Equal(&contract.ParkedStep{DeadLetterID: 7, Step: "notify-low-stock"}, next.Parked)
	s.Equal(50, next.MaxHistoryEvents)
	s.Require().NotNil(next.State)
	st := *next.State
	s.True(st.AlertAt.Equal(stockT0.Add(11*time.Minute)), "alert at %s", st.AlertAt)
	st.AlertAt, st.ObservedAt = time.Time{}, time.Time{}
	s.Equal(contract.LowStockState{Known: true, Level: 3, Alert: contract.StockLowPending, Seen: []string{"e1", "e2"}}, st,
		"the alert is still due, as episode 1 when it goes out; the level that came while parked is kept")
}

func (s *lowStockSuite) TestNextRunRetriesTheParkedStepOnDecision() {
	moves := s.takesOver(true)
	s.expectStatus(time.Minute, contract.StockLowPending, "level 3")
	s.sendDecision(5*time.Minute, "notify-low-stock", contract.DecisionRetry)
	s.runUntil(time.Hour, parkedInput(3))
	s.Equal([]activities.MoveDeadLetterInput{{DeadLetterID: 7, WorkflowID: stockWorkflowID, RunID: "default-test-run-id"}}, *moves)
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 5 * time.Minute, Level: 3}}, s.notified,
		"sent once decided, with the key the parked run had")
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 7, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 7, Status: "resolved"},
	}, s.decided)
	s.Equal(1, s.loads, "settings are loaded once the decision is in")
}

func (s *lowStockSuite) TestNextRunSkipsTheParkedStepOnDecision() {
	s.takesOver(true)
	s.sendDecision(5*time.Minute, "notify-low-stock", contract.DecisionSkip)
	s.expectStatus(10*time.Minute, contract.StockAlerted, "level 3")
	s.runUntil(time.Hour, parkedInput(3))
	s.Empty(s.notified)
	s.Equal([]activities.DecideDeadLetterInput{{DeadLetterID: 7, Status: "skipped", Operator: "ops"}}, s.decided)
}

func (s *lowStockSuite) TestRetriedStepNoLongerNeededIsResolved() {
	s.takesOver(true)
	s.sendDecision(5*time.Minute, "notify-low-stock", contract.DecisionRetry)
	s.expectStatus(10*time.Minute, contract.StockOK, "level 20")
	s.runUntil(time.Hour, parkedInput(20))
	s.Empty(s.notified, "the level recovered while parked: no alert")
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 7, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 7, Status: "resolved"},
	}, s.decided)
}

func (s *lowStockSuite) TestNextRunAbortedEnds() {
	s.takesOver(true)
	s.sendDecision(5*time.Minute, "notify-low-stock", contract.DecisionAbort)
	s.defaults()
	s.env.ExecuteWorkflow(workflows.LowStockAlert, parkedInput(3))
	s.Require().True(s.env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(contract.ErrorTypeOperatorAborted, appErr.Type())
	s.Empty(s.notified)
	s.Equal(0, s.loads)
}

func (s *lowStockSuite) TestDecidedMeanwhileTheStepJustRuns() {
	s.takesOver(false)
	s.runUntil(time.Hour, parkedInput(3))
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 0, Level: 3}}, s.notified)
	s.Empty(s.decided)
}

func (s *lowStockSuite) TestStillParkedAtTheBoundContinuesAgain() {
	s.takesOver(true)
	s.signal(4*time.Minute, contract.StockLevel{Level: 2, ObservedAt: stockT0.Add(4 * time.Minute), EventID: "e3"})
	s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(51) }, 5*time.Minute)
	next := s.runToContinueAsNew(parkedInput(3))
	s.Equal(&contract.ParkedStep{DeadLetterID: 7, Step: "notify-low-stock"}, next.Parked)
	s.Equal(2, next.State.Level)
	s.Equal([]string{"e1", "e3"}, next.State.Seen)
	s.Empty(s.notified)
}

// TestOlderRunsStayParked: a run from before the change waits in the run
// it is in, whatever its history, and continues as new only once decided.
func (s *lowStockSuite) TestOlderRunsStayParked() {
	s.env.OnGetVersion("continue-as-new-while-parked", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.knockDown()
	s.level(time.Minute, 4)
	s.signal(15*time.Minute, contract.StockLevel{Level: 3, ObservedAt: stockT0.Add(15 * time.Minute), EventID: "e2"})
	s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(51) }, 20*time.Minute)
	s.sendDecision(30*time.Minute, "notify-low-stock", contract.DecisionRetry)
	next := s.runToContinueAsNew(contract.LowStockInput{SKU: stockSKU, MaxHistoryEvents: 50})
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 30 * time.Minute, Level: 4}}, s.notified,
		"the parked step retried as it was")
	s.Nil(next.Parked)
	s.Equal(contract.StockAlerted, next.State.Alert)
}
