package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// An alias parked on a command's step continues as new when its history
// reaches its bound; the next run takes the dead letter over and handles
// the command again, applying the operator's decision to that step.

func (s *aliasSuite) TestContinuesAsNewWhileParkedOnACommand() {
	s.env.OnActivity(simpleLogin.SetAliasEnabled, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("SimpleLogin: bad key", "SimpleLoginAuthFailed", errors.New("401"))).Once()
	in := owned()
	in.MaxHistoryEvents = 50
	s.signal(time.Hour, contract.AliasDisableSignal, "e1")
	s.signal(2*time.Hour, contract.AliasEnableSignal, "e2")
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked)
		s.Equal("disable-alias", st.Step)
		s.env.SetCurrentHistoryLength(51)
	}, 3*time.Hour)
	next := s.runToContinueAsNew(in)
	s.Equal(&contract.ParkedStep{DeadLetterID: 5, Step: "disable-alias"}, next.Parked)
	s.Require().NotNil(next.State)
	s.Equal(contract.AliasState{
		State: contract.AliasActive, SimpleLoginID: aliasSLID, AliasEmail: aliasAddress, CustomerID: "cus_1",
		Pending: []contract.AliasPendingCommand{
			{Signal: contract.AliasDisableSignal, Command: contract.AliasCommand{EventID: "e1"}},
			{Signal: contract.AliasEnableSignal, Command: contract.AliasCommand{EventID: "e2"}},
		},
	}, *next.State, "the parked command goes first, not yet seen, for the next run to handle again")
	s.Empty(s.decided, "the dead letter stays parked for the next run")
}

func (s *aliasSuite) TestNextRunHandlesTheParkedCommandOnDecision() {
	var moved []activities.MoveDeadLetterInput
	s.env.OnActivity(dl.MoveDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MoveDeadLetterInput) (*activities.MoveDeadLetterOutput, error) {
			moved = append(moved, in)
			return &activities.MoveDeadLetterOutput{Moved: true}, nil
		}).Once()
	in := owned()
	in.State = &contract.AliasState{State: contract.AliasActive, SimpleLoginID: aliasSLID, AliasEmail: aliasAddress,
		CustomerID: "cus_1", Pending: []contract.AliasPendingCommand{
			{Signal: contract.AliasDisableSignal, Command: contract.AliasCommand{EventID: "e1"}}}}
	in.Parked = &contract.ParkedStep{DeadLetterID: 5, Step: "disable-alias"}
	s.decide(time.Hour, "disable-alias", contract.DecisionRetry)
	s.expectStatus(2*time.Hour, "await-command", contract.AliasDisabled, aliasAddress)
	s.signal(3*time.Hour, contract.AliasDisableSignal, "e1")
	s.runUntil(4*time.Hour, in)
	s.Equal([]activities.MoveDeadLetterInput{{DeadLetterID: 5, WorkflowID: aliasWorkflowID, RunID: "default-test-run-id"}}, moved)
	s.Equal([]activities.SetAliasEnabledInput{{SimpleLoginID: aliasSLID, Enabled: false}}, s.toggles,
		"disabled once decided; the redelivered e1 is seen")
	s.Equal([]string{"SetAliasState disabled"}, s.calls)
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 5, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 5, Status: "resolved"},
	}, s.decided)
}

// TestCreationStaysParked: an alias that does not exist yet waits for its
// creation's decision in the run it is in, whatever its history: a
// continued run carries a live alias only.
func (s *aliasSuite) TestCreationStaysParked() {
	s.env.OnActivity(simpleLogin.CreateAlias, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("SimpleLogin: bad key", "SimpleLoginAuthFailed", errors.New("401"))).Once()
	in := owned()
	in.MaxHistoryEvents = 50
	s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(51) }, 30*time.Minute)
	s.decide(time.Hour, "create-alias", contract.DecisionRetry)
	next := s.runToContinueAsNew(in)
	s.Len(s.created, 1, "created once decided, in the same run")
	s.Nil(next.Parked)
	s.Equal(contract.AliasActive, next.State.State)
}
