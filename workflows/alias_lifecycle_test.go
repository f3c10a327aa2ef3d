package workflows_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var (
	aliasStore  *activities.AliasStoreActivities
	simpleLogin *activities.SimpleLoginActivities
)

const (
	aliasWorkflowID = "alias/al-1"
	aliasSLID       = int64(42)
	aliasAddress    = "shop.x1@alias.example"
)

// aliasT0 is the test workflow's start; times below are offsets from it.
var aliasT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type aliasSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// calls lists every activity call in order, as "Activity arg".
	calls    []string
	recorded []activities.RecordAliasCreatingInput
	created  []activities.CreateAliasInput
	toggles  []activities.SetAliasEnabledInput
	deleted  []time.Duration
	decided  []activities.DecideDeadLetterInput
	// customerSA is the CrmflowCustomerID search attribute as last upserted;
	// "<unset>" once removed.
	customerSA string
}

func TestAliasLifecycle(t *testing.T) { suite.Run(t, new(aliasSuite)) }

func (s *aliasSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartTime(aliasT0)
	s.env.SetStartWorkflowOptions(clientStartOptions(aliasWorkflowID))
	s.env.RegisterWorkflow(workflows.AliasLifecycle)
	s.env.RegisterActivity(aliasStore)
	s.env.RegisterActivity(simpleLogin)
	s.env.RegisterActivity(dl)
	s.calls, s.recorded, s.created, s.toggles, s.deleted, s.decided, s.customerSA = nil, nil, nil, nil, nil, nil, ""
}

func (s *aliasSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

// defaults registers the happy-path mocks after a test's own, because the
// first matching expectation wins.
func (s *aliasSuite) defaults() {
	s.env.OnActivity(aliasStore.RecordAliasCreating, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordAliasCreatingInput) (*activities.AliasRecord, error) {
			s.recorded = append(s.recorded, in)
			s.calls = append(s.calls, "RecordAliasCreating "+in.AliasID)
			return &activities.AliasRecord{ID: in.AliasID, CustomerID: in.CustomerID, State: "creating"}, nil
		}).Maybe()
	s.env.OnActivity(simpleLogin.CreateAlias, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateAliasInput) (*activities.AliasOutput, error) {
			s.created = append(s.created, in)
			s.calls = append(s.calls, "CreateAlias "+in.AliasID)
			return &activities.AliasOutput{SimpleLoginID: aliasSLID, Email: aliasAddress, Enabled: true}, nil
		}).Maybe()
	s.env.OnActivity(aliasStore.MarkAliasActive, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MarkAliasActiveInput) (*activities.AliasRecord, error) {
			s.Equal(activities.MarkAliasActiveInput{AliasID: "al-1", SimpleLoginID: aliasSLID, AliasEmail: aliasAddress}, in)
			s.calls = append(s.calls, "MarkAliasActive "+in.AliasEmail)
			return &activities.AliasRecord{ID: in.AliasID, State: "active"}, nil
		}).Maybe()
	s.env.OnActivity(simpleLogin.SetAliasEnabled, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetAliasEnabledInput) (*activities.AliasOutput, error) {
			s.toggles = append(s.toggles, in)
			return &activities.AliasOutput{SimpleLoginID: in.SimpleLoginID, Email: aliasAddress, Enabled: in.Enabled}, nil
		}).Maybe()
	s.env.OnActivity(aliasStore.SetAliasState, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetAliasStateInput) (*activities.AliasRecord, error) {
			s.calls = append(s.calls, "SetAliasState "+in.State)
			return &activities.AliasRecord{ID: in.AliasID, State: in.State}, nil
		}).Maybe()
	s.env.OnActivity(aliasStore.ClaimAlias, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ClaimAliasInput) (*activities.AliasRecord, error) {
			s.calls = append(s.calls, "ClaimAlias "+in.CustomerID)
			return &activities.AliasRecord{ID: in.AliasID, CustomerID: in.CustomerID, State: "active"}, nil
		}).Maybe()
	s.env.OnActivity(simpleLogin.DeleteAlias, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeleteAliasInput) error {
			s.Equal(aliasSLID, in.SimpleLoginID)
			s.deleted = append(s.deleted, s.env.Now().Sub(aliasT0))
			s.calls = append(s.calls, "DeleteAlias")
			return nil
		}).Maybe()
	s.env.OnActivity(aliasStore.MarkAliasDeleted, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MarkAliasDeletedInput) (*activities.AliasRecord, error) {
			s.calls = append(s.calls, "MarkAliasDeleted "+in.State)
			return &activities.AliasRecord{ID: in.AliasID, State: in.State}, nil
		}).Maybe()
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 5}, nil).Maybe()
	s.env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DecideDeadLetterInput) error {
			s.decided = append(s.decided, in)
			return nil
		}).Maybe()
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if v, ok := sa.GetKeyword(contract.CustomerIDKey); ok {
			s.customerSA = v
		}
		// An unset value is invisible to the getters; compare the whole upsert.
		if reflect.DeepEqual(sa, temporal.NewSearchAttributes(contract.CustomerIDKey.ValueUnset())) {
			s.customerSA = "<unset>"
		}
	}).Return(nil).Maybe()
}

func owned() contract.AliasLifecycleInput {
	return contract.AliasLifecycleInput{AliasID: "al-1", CustomerID: "cus_1", Mode: "random", Hostname: "shop.example"}
}

func shadow(ttl time.Duration) contract.AliasLifecycleInput {
	return contract.AliasLifecycleInput{AliasID: "al-1", Email: "pre@example.com", Mode: "custom", Prefix: "shop", ShadowTTL: ttl}
}

// signal sends cmd on the named signal at offset at.
func (s *aliasSuite) signal(at time.Duration, name, eventID string) {
	s.signalCmd(at, name, contract.AliasCommand{EventID: eventID})
}

func (s *aliasSuite) signalCmd(at time.Duration, name string, cmd contract.AliasCommand) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(name, cmd) }, at)
}

func (s *aliasSuite) status() contract.Status {
	v, err := s.env.QueryWorkflow(contract.StatusQuery)
	s.Require().NoError(err)
	var st contract.Status
	s.Require().NoError(v.Get(&st))
	return st
}

// expectStatus checks the status query at offset at.
func (s *aliasSuite) expectStatus(at time.Duration, step, state, detail string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(step, st.Step, "step at %s", at)
		s.Equal(state, st.State, "state at %s", at)
		s.Equal(detail, st.Detail, "detail at %s", at)
	}, at)
}

// run runs the entity until it ends by itself and returns its result.
func (s *aliasSuite) run(in contract.AliasLifecycleInput) *contract.AliasLifecycleResult {
	s.defaults()
	s.env.ExecuteWorkflow(workflows.AliasLifecycle, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.AliasLifecycleResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return &res
}

// runUntil runs the entity until it is cancelled at offset end.
func (s *aliasSuite) runUntil(end time.Duration, in contract.AliasLifecycleInput) {
	s.defaults()
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, end)
	s.env.ExecuteWorkflow(workflows.AliasLifecycle, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().True(temporal.IsCanceledError(err), "want cancelled, got %v", err)
}

func (s *aliasSuite) TestCreatesRecordsAndLives() {
	s.expectStatus(time.Hour, "await-command", contract.AliasActive, aliasAddress)
	s.runUntil(400*24*time.Hour, owned())
	s.Equal([]activities.RecordAliasCreatingInput{{AliasID: "al-1", CustomerID: "cus_1", Mode: "random"}}, s.recorded,
		"an owned alias has no expiry")
	s.Equal([]activities.CreateAliasInput{{AliasID: "al-1", Mode: "random", Hostname: "shop.example"}}, s.created)
	s.Equal([]string{"RecordAliasCreating al-1", "CreateAlias al-1", "MarkAliasActive " + aliasAddress}, s.calls)
	s.Empty(s.deleted, "an owned alias never expires")
	s.Equal("cus_1", s.customerSA)
}

func (s *aliasSuite) TestDisableThenEnableSetState() {
	s.signal(time.Hour, contract.AliasDisableSignal, "e1")
	s.expectStatus(90*time.Minute, "await-command", contract.AliasDisabled, aliasAddress)
	s.signal(2*time.Hour, contract.AliasEnableSignal, "e2")
	s.expectStatus(3*time.Hour, "await-command", contract.AliasActive, aliasAddress)
	s.runUntil(4*time.Hour, owned())
	s.Equal([]activities.SetAliasEnabledInput{{SimpleLoginID: aliasSLID, Enabled: false}, {SimpleLoginID: aliasSLID, Enabled: true}}, s.toggles)
	s.Equal([]string{"SetAliasState disabled", "SetAliasState active"}, s.calls[3:])
}

func (s *aliasSuite) TestDuplicateEventIDsAreIgnored() {
	s.signal(time.Hour, contract.AliasDisableSignal, "e1")
	s.signal(2*time.Hour, contract.AliasDisableSignal, "e1")
	// The id decides, not the signal: a redelivered id is ignored whatever it says.
	s.signal(3*time.Hour, contract.AliasEnableSignal, "e1")
	s.signal(4*time.Hour, contract.AliasDeleteSignal, "e1")
	s.expectStatus(5*time.Hour, "await-command", contract.AliasDisabled, aliasAddress)
	s.runUntil(6*time.Hour, owned())
	s.Equal([]activities.SetAliasEnabledInput{{SimpleLoginID: aliasSLID, Enabled: false}}, s.toggles)
	s.Empty(s.deleted)
}

func (s *aliasSuite) TestDeleteDeletesAndScrubs() {
	s.signal(time.Hour, contract.AliasDeleteSignal, "e1")
	res := s.run(owned())
	s.Equal(contract.AliasDeleted, res.State)
	s.Equal([]time.Duration{time.Hour}, s.deleted)
	s.Equal([]string{"DeleteAlias", "MarkAliasDeleted deleted"}, s.calls[3:])
	st := s.status()
	s.Equal(contract.Status{Step: "done", State: contract.AliasDeleted}, st, "a closed run names no address")
	s.Equal("<unset>", s.customerSA, "the customer is no longer searchable on the run")
}

func (s *aliasSuite) TestShadowAliasExpires() {
	s.expectStatus(time.Hour, "await-command", contract.AliasActive, aliasAddress+"; unclaimed, expires at 2026-03-04T09:00:00Z")
	res := s.run(shadow(48 * time.Hour))
	s.Equal(contract.AliasExpired, res.State)
	s.Require().Len(s.recorded, 1)
	s.Equal("pre@example.com", s.recorded[0].Email)
	s.Empty(s.recorded[0].CustomerID)
	s.True(s.recorded[0].ExpiresAt.Equal(aliasT0.Add(48*time.Hour)), "expires at %s", s.recorded[0].ExpiresAt)
	s.Equal([]activities.CreateAliasInput{{AliasID: "al-1", Mode: "custom", Prefix: "shop"}}, s.created)
	s.Equal([]time.Duration{48 * time.Hour}, s.deleted)
	s.Equal([]string{"DeleteAlias", "MarkAliasDeleted expired"}, s.calls[3:])
	s.Equal(contract.AliasExpired, s.status().State)
}

func (s *aliasSuite) TestShadowAliasDefaultTTL() {
	res := s.run(shadow(0))
	s.Equal(contract.AliasExpired, res.State)
	s.Equal([]time.Duration{contract.DefaultShadowTTL}, s.deleted)
}

func (s *aliasSuite) TestClaimBeforeExpiryKeepsIt() {
	s.signalCmd(time.Hour, contract.AliasClaimSignal, contract.AliasCommand{EventID: "c1", CustomerID: "cus_9"})
	// Already claimed: another customer's claim is refused without a call.
	s.signalCmd(2*time.Hour, contract.AliasClaimSignal, contract.AliasCommand{EventID: "c2", CustomerID: "cus_other"})
	s.signalCmd(3*time.Hour, contract.AliasClaimSignal, contract.AliasCommand{EventID: "c3", CustomerID: "cus_9"})
	s.expectStatus(4*time.Hour, "await-command", contract.AliasActive, aliasAddress)
	s.runUntil(60*24*time.Hour, shadow(48*time.Hour))
	s.Equal([]string{"ClaimAlias cus_9"}, s.calls[3:], "claimed once, never expired")
	s.Empty(s.deleted)
	s.Equal("cus_9", s.customerSA)
}

func (s *aliasSuite) TestClaimWaitingBehindAStepBeatsExpiryDueMeanwhile() {
	// The expiry falls due while a disable runs; the claim delivered during
	// that step is taken first and cancels it.
	s.env.OnActivity(simpleLogin.SetAliasEnabled, mock.Anything, mock.Anything).After(2*time.Minute).
		Return(&activities.AliasOutput{SimpleLoginID: aliasSLID, Email: aliasAddress}, nil).Once()
	s.signal(48*time.Hour-time.Minute, contract.AliasDisableSignal, "e1")
	s.signalCmd(48*time.Hour-30*time.Second, contract.AliasClaimSignal, contract.AliasCommand{EventID: "c1", CustomerID: "cus_9"})
	s.expectStatus(49*time.Hour, "await-command", contract.AliasDisabled, aliasAddress)
	s.runUntil(60*24*time.Hour, shadow(48*time.Hour))
	s.Equal([]string{"SetAliasState disabled", "ClaimAlias cus_9"}, s.calls[3:])
	s.Empty(s.deleted)
}

func (s *aliasSuite) TestDeleteDuringCreationDeletesTheCreatedAlias() {
	s.env.OnActivity(simpleLogin.CreateAlias, mock.Anything, mock.Anything).After(time.Minute).Return(
		func(_ context.Context, in activities.CreateAliasInput) (*activities.AliasOutput, error) {
			s.calls = append(s.calls, "CreateAlias "+in.AliasID)
			return &activities.AliasOutput{SimpleLoginID: aliasSLID, Email: aliasAddress, Enabled: true}, nil
		}).Once()
	s.expectStatus(10*time.Second, "create-alias", contract.AliasCreating, "")
	s.signal(20*time.Second, contract.AliasDeleteSignal, "d1")
	res := s.run(owned())
	s.Equal(contract.AliasDeleted, res.State)
	s.Equal([]string{
		"RecordAliasCreating al-1", "CreateAlias al-1", "MarkAliasActive " + aliasAddress,
		"DeleteAlias", "MarkAliasDeleted deleted",
	}, s.calls, "created first, then deleted: no orphan at SimpleLogin")
}

// decide sends an operator decision once the run is parked on step.
func (s *aliasSuite) decide(at time.Duration, step, action string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "parked")
		s.Equal(step, st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("rejected", err.Error()) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 5, Action: action, Operator: "ops"})
	}, at)
}

func (s *aliasSuite) TestSimpleLoginFailureParksThenRetryCreates() {
	s.env.OnActivity(simpleLogin.CreateAlias, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("SimpleLogin: bad key", "SimpleLoginAuthFailed", errors.New("401"))).Once()
	s.decide(time.Hour, "create-alias", "retry")
	s.expectStatus(2*time.Hour, "await-command", contract.AliasActive, aliasAddress)
	s.signal(3*time.Hour, contract.AliasDeleteSignal, "d1")
	res := s.run(owned())
	s.Equal(contract.AliasDeleted, res.State)
	s.Len(s.created, 1, "the retried creation succeeded once")
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 5, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 5, Status: "resolved"},
	}, s.decided)
}

func (s *aliasSuite) TestSkippedCreationEndsTheRow() {
	s.env.OnActivity(simpleLogin.CreateAlias, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("SimpleLogin: quota", "SimpleLoginInvalidRequest", errors.New("400"))).Once()
	s.decide(time.Hour, "create-alias", "skip")
	res := s.run(shadow(48 * time.Hour))
	s.Equal(contract.AliasSkipped, res.State)
	s.Equal([]string{"RecordAliasCreating al-1", "MarkAliasDeleted deleted"}, s.calls)
	s.Empty(s.deleted, "nothing to delete at SimpleLogin")
}

// runToContinueAsNew runs until the entity continues as new and returns
// the next run's input.
func (s *aliasSuite) runToContinueAsNew(in contract.AliasLifecycleInput) contract.AliasLifecycleInput {
	s.defaults()
	s.env.ExecuteWorkflow(workflows.AliasLifecycle, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().True(workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can))
	s.Equal(contract.AliasLifecycleType, can.WorkflowType.Name)
	var next contract.AliasLifecycleInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

func (s *aliasSuite) TestContinueAsNewCarriesState() {
	in := shadow(48 * time.Hour)
	in.MaxHistoryEvents = 50
	s.signal(time.Hour, contract.AliasDisableSignal, "e1")
	s.env.RegisterDelayedCallback(func() {
		s.env.SetCurrentHistoryLength(51)
		// Delivered together: the first wakes the run, which then continues
		// as new and must carry the others, not lose them.
		s.env.SignalWorkflow(contract.AliasEnableSignal, contract.AliasCommand{EventID: "e2"})
		s.env.SignalWorkflow(contract.AliasDisableSignal, contract.AliasCommand{EventID: "e1"})
		s.env.SignalWorkflow(contract.AliasClaimSignal, contract.AliasCommand{EventID: "c1", CustomerID: "cus_9"})
	}, 2*time.Hour)
	next := s.runToContinueAsNew(in)
	s.Equal(50, next.MaxHistoryEvents)
	s.Equal("al-1", next.AliasID)
	s.Equal("pre@example.com", next.Email)
	s.Require().NotNil(next.State)
	st := *next.State
	s.True(st.ExpiresAt.Equal(aliasT0.Add(48*time.Hour)), "expires at %s", st.ExpiresAt)
	st.ExpiresAt = time.Time{}
	s.Equal(contract.AliasState{
		State: contract.AliasActive, SimpleLoginID: aliasSLID, AliasEmail: aliasAddress,
		Seen: []string{"e1", "e2"},
		Pending: []contract.AliasPendingCommand{
			{Signal: contract.AliasClaimSignal, Command: contract.AliasCommand{EventID: "c1", CustomerID: "cus_9"}},
			{Signal: contract.AliasDisableSignal, Command: contract.AliasCommand{EventID: "e1"}},
		},
	}, st)
}

func (s *aliasSuite) TestResumesFromCarriedState() {
	in := shadow(48 * time.Hour)
	in.State = &contract.AliasState{
		State: contract.AliasDisabled, SimpleLoginID: aliasSLID, AliasEmail: aliasAddress,
		ExpiresAt: aliasT0.Add(time.Hour), Seen: []string{"e1"},
		Pending: []contract.AliasPendingCommand{
			{Signal: contract.AliasClaimSignal, Command: contract.AliasCommand{EventID: "c1", CustomerID: "cus_9"}},
			{Signal: contract.AliasDisableSignal, Command: contract.AliasCommand{EventID: "e1"}},
		},
	}
	s.signal(2*time.Hour, contract.AliasDeleteSignal, "d1")
	res := s.run(in)
	s.Equal(contract.AliasDeleted, res.State, "claimed from the carried command, so it never expired")
	s.Empty(s.created, "a continued run creates nothing")
	s.Equal([]string{"ClaimAlias cus_9", "DeleteAlias", "MarkAliasDeleted deleted"}, s.calls,
		"the carried claim ran first; the carried e1 was seen before")
	s.Equal([]time.Duration{2 * time.Hour}, s.deleted)
}

func (s *aliasSuite) TestContinueAsNewWhenSuggested() {
	s.env.RegisterDelayedCallback(func() {
		s.env.SetContinueAsNewSuggested(true)
		s.env.SignalWorkflow(contract.AliasDisableSignal, contract.AliasCommand{EventID: "e1"})
	}, time.Hour)
	next := s.runToContinueAsNew(owned())
	s.Zero(next.MaxHistoryEvents, "the default is not frozen into the chain")
	s.Equal("cus_1", next.CustomerID)
	s.Require().NotNil(next.State)
	s.Equal(contract.AliasDisabled, next.State.State)
	s.Equal("cus_1", next.State.CustomerID)
	s.True(next.State.ExpiresAt.IsZero())
	s.Empty(next.State.Pending)
}

func (s *aliasSuite) TestInvalidInputFailsAtOnce() {
	for _, in := range []contract.AliasLifecycleInput{
		{AliasID: "a/b", CustomerID: "cus_1"},
		{AliasID: "al-1", CustomerID: "cus_1", Mode: "fancy"},
		{AliasID: "al-1", CustomerID: "cus_1", Mode: "custom"},
		{AliasID: "al-1", CustomerID: "cus_1", Prefix: "shop"},
		{AliasID: "al-1"},
	} {
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(workflows.AliasLifecycle)
		env.ExecuteWorkflow(workflows.AliasLifecycle, in)
		s.Require().True(env.IsWorkflowCompleted())
		var appErr *temporal.ApplicationError
		s.Require().True(errors.As(env.GetWorkflowError(), &appErr), "%+v", in)
		s.Equal("InvalidInput", appErr.Type())
	}
	s.defaults()
}
