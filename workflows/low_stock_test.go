package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var inventory *activities.InventoryActivities

const (
	stockSKU        = "SKU-1"
	stockWorkflowID = "low-stock/SKU-1"
)

// stockT0 is the test workflow's start; times below are offsets from it.
var stockT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// stockNotice is one Knock trigger, as the assertions compare it.
type stockNotice struct {
	Key        string
	Recipients []string
	At         time.Duration
	// Level is the alert's data; JSON makes every number a float64.
	Level float64
}

type lowStockSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env      *testsuite.TestWorkflowEnvironment
	settings activities.StockSettings
	loads    int
	notified []stockNotice
	decided  []activities.DecideDeadLetterInput
}

func TestLowStockAlert(t *testing.T) { suite.Run(t, new(lowStockSuite)) }

func (s *lowStockSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartTime(stockT0)
	s.env.SetStartWorkflowOptions(clientStartOptions(stockWorkflowID))
	s.env.RegisterWorkflow(workflows.LowStockAlert)
	s.env.RegisterActivity(inventory)
	s.env.RegisterActivity(knock)
	s.env.RegisterActivity(dl)
	// Low at or below 5, restocked above 8.
	s.settings = activities.StockSettings{
		SKU: stockSKU, Name: "Widget", Threshold: 5, Hysteresis: 3,
		Debounce: 10 * time.Minute, Cooldown: time.Hour, EscalateAfter: 2 * time.Hour,
		Audience: []string{"ops"}, EscalationAudience: []string{"boss"},
	}
	s.loads, s.notified, s.decided = 0, nil, nil
}

// defaults registers the happy-path mocks after a test's own, because the
// first matching expectation wins.
func (s *lowStockSuite) defaults() {
	s.env.OnActivity(inventory.LoadStockSettings, mock.Anything, activities.LoadStockSettingsInput{SKU: stockSKU}).Return(
		func(context.Context, activities.LoadStockSettingsInput) (*activities.StockSettings, error) {
			s.loads++
			st := s.settings
			return &st, nil
		}).Maybe()
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
			level, ok := in.Data["level"].(float64)
			s.True(ok, "level is %T", in.Data["level"])
			s.notified = append(s.notified, stockNotice{
				Key: in.Workflow + " " + in.IdempotencyKey, Recipients: in.Recipients,
				At: s.env.Now().Sub(stockT0), Level: level,
			})
			return &activities.NotifyOutput{WorkflowRunID: "run"}, nil
		}).Maybe()
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 7}, nil).Maybe()
	s.env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DecideDeadLetterInput) error {
			s.decided = append(s.decided, in)
			return nil
		}).Maybe()
}

func (s *lowStockSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

var stockEventSeq int

// level sends a fresh observation at offset at, observed at that moment.
func (s *lowStockSuite) level(at time.Duration, level int) {
	stockEventSeq++
	s.signal(at, contract.StockLevel{Level: level, ObservedAt: stockT0.Add(at), EventID: fmt.Sprintf("evt-%d", stockEventSeq)})
}

func (s *lowStockSuite) signal(at time.Duration, sl contract.StockLevel) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(contract.StockLevelSignal, sl) }, at)
}

// expectStatus checks the status query at offset at.
func (s *lowStockSuite) expectStatus(at time.Duration, state, detail string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(state, st.State, "state at %s", at)
		s.Contains(st.Detail, detail, "detail at %s", at)
	}, at)
}

func (s *lowStockSuite) status() contract.Status {
	v, err := s.env.QueryWorkflow(contract.StatusQuery)
	s.Require().NoError(err)
	var st contract.Status
	s.Require().NoError(v.Get(&st))
	return st
}

// runUntil runs the entity with in until it is cancelled at offset end.
func (s *lowStockSuite) runUntil(end time.Duration, in contract.LowStockInput) {
	s.defaults()
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, end)
	s.env.ExecuteWorkflow(workflows.LowStockAlert, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().True(temporal.IsCanceledError(err), "want cancelled, got %v", err)
}

func (s *lowStockSuite) run(end time.Duration) {
	s.runUntil(end, contract.LowStockInput{SKU: stockSKU})
}

// runToContinueAsNew runs until the entity continues as new and returns
// the next run's input.
func (s *lowStockSuite) runToContinueAsNew(in contract.LowStockInput) contract.LowStockInput {
	s.defaults()
	s.env.ExecuteWorkflow(workflows.LowStockAlert, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().True(workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can))
	s.Equal(contract.LowStockAlertType, can.WorkflowType.Name)
	var next contract.LowStockInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

func stockKey(step string, episode int) string {
	knockKey := map[string]string{
		"notify-low-stock": workflows.KnockLowStock, "notify-escalation": workflows.KnockLowStockEscalation,
		"notify-restocked": workflows.KnockRestocked,
	}[step]
	return fmt.Sprintf("%s %s/%s/%d", knockKey, stockWorkflowID, step, episode)
}

func (s *lowStockSuite) TestSingleAlertAfterDebounce() {
	s.level(time.Minute, 10)
	s.expectStatus(90*time.Second, contract.StockOK, "level 10")
	s.level(2*time.Minute, 4)
	s.expectStatus(5*time.Minute, contract.StockLowPending, "alert due at 2026-03-02T09:12:00Z")
	s.level(6*time.Minute, 3)
	s.expectStatus(13*time.Minute, contract.StockAlerted, "level 3")
	s.level(30*time.Minute, 2)
	s.level(40*time.Minute, 5)
	s.run(time.Hour)
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 12 * time.Minute, Level: 3}}, s.notified)
}

func (s *lowStockSuite) TestFlappingInsideDebounceAlertsAtMostOnce() {
	for i, lvl := range []int{4, 6, 5, 6, 4, 6} { // low, ok, low (at threshold), ok, low, ok
		s.level(time.Duration(1+2*i)*time.Minute, lvl)
	}
	s.expectStatus(25*time.Minute, contract.StockOK, "level 6")
	s.level(30*time.Minute, 4) // and now it stays low
	s.run(2 * time.Hour)
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 40 * time.Minute, Level: 4}}, s.notified)
}

func (s *lowStockSuite) TestCooldownDelaysTheNextAlert() {
	s.level(time.Minute, 4)     // alert at 11m, cooldown until 71m
	s.level(20*time.Minute, 20) // restocked
	s.level(30*time.Minute, 3)  // low again inside the cooldown
	s.expectStatus(60*time.Minute, contract.StockLowPending, "alert due at 2026-03-02T10:11:00Z")
	s.level(80*time.Minute, 20) // restocked; cooldown until 131m
	s.level(90*time.Minute, 3)  // low inside the cooldown...
	s.level(100*time.Minute, 9) // ...and back before it ends: no alert
	s.expectStatus(3*time.Hour, contract.StockOK, "level 9")
	s.run(4 * time.Hour)
	s.Equal([]stockNotice{
		{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 4},
		{Key: stockKey("notify-restocked", 1), Recipients: []string{"ops"}, At: 20 * time.Minute, Level: 20},
		{Key: stockKey("notify-low-stock", 2), Recipients: []string{"ops"}, At: 71 * time.Minute, Level: 3},
		{Key: stockKey("notify-restocked", 2), Recipients: []string{"ops"}, At: 80 * time.Minute, Level: 20},
	}, s.notified)
}

func (s *lowStockSuite) TestEscalationOnceThenRestockedToBoth() {
	s.level(time.Minute, 4)
	s.level(time.Hour, 1)
	s.expectStatus(2*time.Hour, contract.StockAlerted, "escalates at 2026-03-02T11:11:00Z")
	s.expectStatus(150*time.Minute, contract.StockEscalated, "level 1")
	s.level(170*time.Minute, 0)
	s.level(3*time.Hour, 30)
	s.run(6 * time.Hour)
	s.Equal([]stockNotice{
		{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 4},
		{Key: stockKey("notify-escalation", 1), Recipients: []string{"boss"}, At: 131 * time.Minute, Level: 1},
		{Key: stockKey("notify-restocked", 1), Recipients: []string{"ops", "boss"}, At: 3 * time.Hour, Level: 30},
	}, s.notified)
}

func (s *lowStockSuite) TestEscalationWaitsForALowLevel() {
	s.level(time.Minute, 4) // alert at 11m, escalation due at 131m
	s.level(time.Hour, 7)   // above the threshold, not restocked
	s.level(3*time.Hour, 5) // low again, past the deadline: escalate now
	s.run(4 * time.Hour)
	s.Equal([]stockNotice{
		{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 4},
		{Key: stockKey("notify-escalation", 1), Recipients: []string{"boss"}, At: 3 * time.Hour, Level: 5},
	}, s.notified)
}

func (s *lowStockSuite) TestNoEscalationWithoutAudience() {
	s.settings.EscalationAudience = []string{}
	s.level(time.Minute, 4)
	s.run(10 * time.Hour)
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 4}}, s.notified)
}

func (s *lowStockSuite) TestRestockedNeedsMoreThanHysteresis() {
	s.level(time.Minute, 4)
	s.level(20*time.Minute, 8) // threshold + hysteresis: not restocked
	s.expectStatus(21*time.Minute, contract.StockAlerted, "restocked above 8")
	s.level(25*time.Minute, 6)
	s.level(30*time.Minute, 9) // above: restocked once
	s.level(40*time.Minute, 12)
	s.expectStatus(41*time.Minute, contract.StockOK, "level 12")
	s.run(4 * time.Hour)
	s.Equal([]stockNotice{
		{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 4},
		{Key: stockKey("notify-restocked", 1), Recipients: []string{"ops"}, At: 30 * time.Minute, Level: 9},
	}, s.notified)
}

func (s *lowStockSuite) TestOutOfOrderAndDuplicateSignals() {
	s.signal(time.Minute, contract.StockLevel{Level: 3, ObservedAt: stockT0.Add(time.Minute), EventID: "e1"})
	// Older than the newest observation: ignored for the level, but seen.
	s.signal(2*time.Minute, contract.StockLevel{Level: 20, ObservedAt: stockT0.Add(30 * time.Second), EventID: "e2"})
	// A redelivered id, even with a newer time: ignored.
	s.signal(3*time.Minute, contract.StockLevel{Level: 20, ObservedAt: stockT0.Add(3 * time.Minute), EventID: "e1"})
	s.expectStatus(5*time.Minute, contract.StockLowPending, "level 3")
	s.signal(20*time.Minute, contract.StockLevel{Level: 20, ObservedAt: stockT0.Add(20 * time.Minute), EventID: "e2"})
	s.expectStatus(20*time.Minute+time.Second, contract.StockAlerted, "level 3")
	s.signal(21*time.Minute, contract.StockLevel{Level: 20, ObservedAt: stockT0.Add(21 * time.Minute), EventID: "e3"})
	s.run(time.Hour)
	s.Equal([]stockNotice{
		{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 3},
		{Key: stockKey("notify-restocked", 1), Recipients: []string{"ops"}, At: 21 * time.Minute, Level: 20},
	}, s.notified)
}

func (s *lowStockSuite) TestSettingsReloadedWhenStale() {
	s.level(time.Minute, 8) // not low at threshold 5
	s.env.RegisterDelayedCallback(func() { s.settings.Threshold = 10 }, 10*time.Minute)
	s.level(20*time.Minute, 8) // settings are 20m old: reloaded, now low
	s.run(time.Hour)
	s.Equal(2, s.loads)
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 30 * time.Minute, Level: 8}}, s.notified)
}

func (s *lowStockSuite) TestContinueAsNewCarriesState() {
	s.signal(time.Minute, contract.StockLevel{Level: 4, ObservedAt: stockT0.Add(time.Minute), EventID: "e1"})
	s.env.RegisterDelayedCallback(func() {
		s.env.SetCurrentHistoryLength(51)
		// Delivered together: the first wakes the run, which continues as
		// new and must not lose the other two.
		s.env.SignalWorkflow(contract.StockLevelSignal, contract.StockLevel{Level: 3, ObservedAt: stockT0.Add(20 * time.Minute), EventID: "e2"})
		s.env.SignalWorkflow(contract.StockLevelSignal, contract.StockLevel{Level: 2, ObservedAt: stockT0.Add(21 * time.Minute), EventID: "e3"})
		s.env.SignalWorkflow(contract.StockLevelSignal, contract.StockLevel{Level: 9, ObservedAt: stockT0.Add(22 * time.Minute), EventID: "e1"})
	}, 20*time.Minute)
	next := s.runToContinueAsNew(contract.LowStockInput{SKU: stockSKU, MaxHistoryEvents: 50})
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 11 * time.Minute, Level: 4}}, s.notified)
	s.Equal(stockSKU, next.SKU)
	s.Equal(50, next.MaxHistoryEvents)
	s.Require().NotNil(next.State)
	st := *next.State
	s.True(st.ObservedAt.Equal(stockT0.Add(21*time.Minute)), "observed at %s", st.ObservedAt)
	s.True(st.EscalateAt.Equal(stockT0.Add(131*time.Minute)), "escalate at %s", st.EscalateAt)
	s.True(st.CooldownUntil.Equal(stockT0.Add(71*time.Minute)), "cooldown until %s", st.CooldownUntil)
	st.ObservedAt, st.EscalateAt, st.CooldownUntil = time.Time{}, time.Time{}, time.Time{}
	s.Equal(contract.LowStockState{
		Known: true, Level: 2, Alert: contract.StockAlerted, Episode: 1, Seen: []string{"e1", "e2", "e3"},
	}, st)
}

func (s *lowStockSuite) TestContinueAsNewWhenSuggestedKeepsPendingDeadline() {
	s.level(time.Minute, 4) // alert due at 11m
	s.env.RegisterDelayedCallback(func() {
		s.env.SetContinueAsNewSuggested(true)
		s.env.SignalWorkflow(contract.StockLevelSignal, contract.StockLevel{Level: 3, ObservedAt: stockT0.Add(5 * time.Minute), EventID: "e2"})
	}, 5*time.Minute)
	next := s.runToContinueAsNew(contract.LowStockInput{SKU: stockSKU})
	s.Empty(s.notified)
	s.Zero(next.MaxHistoryEvents, "the default is not frozen into the chain")
	s.Require().NotNil(next.State)
	s.Equal(contract.StockLowPending, next.State.Alert)
	s.True(next.State.AlertAt.Equal(stockT0.Add(11*time.Minute)), "alert at %s", next.State.AlertAt)
}

func (s *lowStockSuite) TestResumesFromCarriedState() {
	in := contract.LowStockInput{SKU: stockSKU, State: &contract.LowStockState{
		Known: true, Level: 2, ObservedAt: stockT0.Add(-time.Hour), Alert: contract.StockAlerted, Episode: 4,
		EscalateAt: stockT0.Add(30 * time.Minute), CooldownUntil: stockT0.Add(10 * time.Minute), Seen: []string{"old"},
	}}
	s.expectStatus(time.Minute, contract.StockAlerted, "level 2")
	// Seen by the previous run: ignored.
	s.signal(10*time.Minute, contract.StockLevel{Level: 20, ObservedAt: stockT0.Add(10 * time.Minute), EventID: "old"})
	s.level(40*time.Minute, 20)
	s.level(50*time.Minute, 1)
	s.runUntil(2*time.Hour, in)
	s.Equal([]stockNotice{
		{Key: stockKey("notify-escalation", 4), Recipients: []string{"boss"}, At: 30 * time.Minute, Level: 2},
		{Key: stockKey("notify-restocked", 4), Recipients: []string{"ops", "boss"}, At: 40 * time.Minute, Level: 20},
		{Key: stockKey("notify-low-stock", 5), Recipients: []string{"ops"}, At: 60 * time.Minute, Level: 1},
	}, s.notified)
}

func (s *lowStockSuite) TestSeenSetIsBounded() {
	s.env.RegisterDelayedCallback(func() {
		for i := range 300 {
			s.env.SignalWorkflow(contract.StockLevelSignal,
				contract.StockLevel{Level: 50, ObservedAt: stockT0.Add(time.Minute), EventID: fmt.Sprintf("id-%d", i)})
		}
	}, time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.env.SetCurrentHistoryLength(10_000)
		s.env.SignalWorkflow(contract.StockLevelSignal, contract.StockLevel{Level: 50, ObservedAt: stockT0.Add(2 * time.Minute), EventID: "last"})
	}, 2*time.Minute)
	next := s.runToContinueAsNew(contract.LowStockInput{SKU: stockSKU})
	seen := next.State.Seen
	s.Require().Len(seen, 256)
	s.Equal("id-45", seen[0], "the oldest ids are evicted first")
	s.Equal("last", seen[255])
}

func (s *lowStockSuite) TestFailedAlertParksThenRetriesWithSameKey() {
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("knock: 401", "KnockAuthFailed", errors.New("bad key"))).Once()
	s.level(time.Minute, 4)
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "run is parked")
		s.Equal("notify-low-stock", st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { s.Fail("decision rejected", err) },
			OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: contract.DecisionRetry, Operator: "ops@x"})
	}, 20*time.Minute)
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.False(st.Parked)
		s.Equal(contract.StockAlerted, st.State)
		s.Equal("await-stock-level", st.Step)
	}, 30*time.Minute)
	s.run(time.Hour)
	s.Equal([]stockNotice{{Key: stockKey("notify-low-stock", 1), Recipients: []string{"ops"}, At: 20 * time.Minute, Level: 4}}, s.notified)
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 7, Status: "retrying", Operator: "ops@x"},
		{DeadLetterID: 7, Status: "resolved"},
	}, s.decided)
}

func (s *lowStockSuite) TestUnknownSKUParksAndSkipStops() {
	s.env.OnActivity(inventory.LoadStockSettings, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("Store: not found", "StoreNotFound", nil)).Once()
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked)
		s.Equal("load-settings", st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("decision rejected", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: contract.DecisionSkip})
	}, time.Minute)
	s.defaults()
	s.env.ExecuteWorkflow(workflows.LowStockAlert, contract.LowStockInput{SKU: stockSKU})
	s.Require().True(s.env.IsWorkflowCompleted())
	var res contract.LowStockResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(contract.StockStopped, res.State)
	s.Empty(s.notified)
}

func TestLowStockRejectsInvalidSKU(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(workflows.LowStockAlert, contract.LowStockInput{SKU: "a b"})
	require.True(t, env.IsWorkflowCompleted())
	require.ErrorContains(t, env.GetWorkflowError(), "must not contain whitespace")
}
